"""Reading training data: the authors' JSONL format, plain text pairs/triplets, generative lines, and errors that
name the line."""

from __future__ import annotations

import json
import shutil

import pytest

from lco_embedding.training import ContrastiveExample, read_contrastive_data, read_generative_data


def _write(path, *lines) -> str:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return str(path)


def test_authors_format_and_plain_pairs(tmp_path, media):
    shutil.copy(media["png"], tmp_path / "cat.png")
    path = _write(
        tmp_path / "train.jsonl",
        {"anchor": {"text": "a cat", "image_path": ""}, "positive": {"text": "", "image_path": "cat.png"}},
        {"anchor": {"image_path": "cat.png", "text": "what is it?"}, "positive": "a cat", "negative": "a dog"},
        "",
        ["premise", "entailment", "contradiction"],
        ["query", "document"],
        {"anchor": "q", "positive": {"text": "p"}, "negatives": [{"text": "n1"}, "n2"]},
        {"anchor": {"audio": media["wav"]}, "positive": {"video_path": media["mp4"]}, "negative": None},
    )
    examples = read_contrastive_data(path)
    image = str(tmp_path / "cat.png")
    assert examples == [
        ContrastiveExample({"text": "a cat"}, {"image": image}, (), 1),
        ContrastiveExample({"text": "what is it?", "image": image}, {"text": "a cat"}, ({"text": "a dog"},), 2),
        ContrastiveExample({"text": "premise"}, {"text": "entailment"}, ({"text": "contradiction"},), 4),
        ContrastiveExample({"text": "query"}, {"text": "document"}, (), 5),
        ContrastiveExample({"text": "q"}, {"text": "p"}, ({"text": "n1"}, {"text": "n2"}), 6),
        ContrastiveExample({"audio": media["wav"]}, {"video": media["mp4"]}, (), 7),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ({"anchor": "a"}, "missing 'positive'"),
        ({"anchor": "a", "positive": "b", "label": 1}, "unknown keys ['label']"),
        ({"anchor": "a", "positive": {"caption": "b"}}, "the positive has unknown keys ['caption']"),
        ({"anchor": {"image_path": "missing.png"}, "positive": "b"}, "image file not found"),
        ({"anchor": {"image": "x.png", "image_path": "y.png"}, "positive": "b"}, "gives image twice"),
        ({"anchor": {"text": "", "image_path": ""}, "positive": "b"}, "the anchor: the row has no text"),
        (["only one"], "a list line must be 2 or 3 strings"),
        ({"anchor": "a", "positive": "b", "negative": "c", "negatives": ["d"]}, 'either "negative"'),
        ({"anchor": "a", "positive": {"text": 3}}, "must be a string"),
        (42, "expected"),
    ],
)
def test_malformed_lines_name_the_line_and_reason(tmp_path, line, reason):
    path = _write(tmp_path / "bad.jsonl", ["fine", "pair"], line)
    with pytest.raises(ValueError) as error:
        read_contrastive_data(path)
    assert "bad.jsonl, line 2: " in str(error.value)
    assert reason in str(error.value)


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="holds no examples"):
        read_contrastive_data(_write(tmp_path / "empty.jsonl", ""))


def test_generative_lines(tmp_path, media):
    path = _write(
        tmp_path / "gen.jsonl",
        {"text": "a long document about cats"},
        {"text": "a gradient", "image_path": media["png"]},
        {"text": "a tone", "audio": media["wav"]},
    )
    examples = read_generative_data(path)
    assert [(e.text, e.media, e.line) for e in examples] == [
        ("a long document about cats", {}, 1),
        ("a gradient", {"image": media["png"]}, 2),
        ("a tone", {"audio": media["wav"]}, 3),
    ]
    with pytest.raises(ValueError, match=r"gen.jsonl, line 1: the line has no \"text\""):
        read_generative_data(_write(tmp_path / "gen.jsonl", {"image": media["png"]}))
    with pytest.raises(ValueError, match="at most one media item"):
        two = {"text": "t", "image": media["png"], "audio": media["wav"]}
        read_generative_data(_write(tmp_path / "gen.jsonl", two))
