"""``lco-embed search`` and ``lco-embed index`` as subprocesses: an item queried with its own content comes first."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import copy_media, run_cli


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, media, tiny_omni):
    root = tmp_path_factory.mktemp("search")
    copy_media(media, root / "media", {"gradient.png": "png", "photo.jpg": "jpg", "tone.wav": "wav", "clip.mp4": "mp4"})
    texts = ["a cat on a mat", "a dog in the fog", "the quick brown fox", "stock prices fell sharply"]
    (root / "texts.jsonl").write_text(
        "".join(json.dumps({"id": f"t{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    out = root / "out"
    run_cli("encode", root / "media", root / "texts.jsonl", "--out", out, "--model", tiny_omni, "-q")
    return root, out, texts


def test_a_text_finds_itself_first(encoded):
    _, out, texts = encoded
    result = run_cli("search", out, *texts[3].split(), "-k", 3)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "id", "modality", "source"]
    assert lines[2].split()[:4] == ["1", "1.0000", "t3", "text"]
    assert len(lines) == 2 + 3


def test_an_image_finds_itself_first_and_json_output(encoded):
    root, out, _ = encoded
    result = run_cli("search", out, "--image", root / "media" / "photo.jpg", "--json", "-k", 8)
    hits = json.loads(result.stdout)
    assert [h["rank"] for h in hits] == list(range(1, 9))
    assert hits[0]["source"] == str(root / "media" / "photo.jpg") and hits[0]["score"] == pytest.approx(1, abs=1e-5)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert {h["modality"] for h in hits} == {"image", "audio", "video", "text"}
    only = json.loads(
        run_cli("search", out, "--image", root / "media" / "photo.jpg", "--only", "text", "--json").stdout
    )
    assert {h["modality"] for h in only} == {"text"} and len(only) == 4


def test_the_index_gives_the_same_top_hit(encoded):
    root, out, texts = encoded
    result = run_cli("index", out, "-q")
    assert "Indexed 8 rows" in result.stdout and (out / "index.usearch").is_file()
    hits = json.loads(run_cli("search", out, *texts[1].split(), "--index", "--json", "-k", 2).stdout)
    assert hits[0]["id"] == "t1" and hits[0]["score"] == pytest.approx(1, abs=2e-3)
    exact = json.loads(run_cli("search", out, *texts[1].split(), "--exact", "--json", "-k", 2).stdout)
    assert exact[0]["id"] == "t1" and exact[0]["score"] == pytest.approx(1, abs=1e-5)


def test_search_errors_say_what_to_do(encoded, tmp_path):
    root, out, _ = encoded
    result = run_cli("search", tmp_path, "hello", check=False)
    assert result.returncode == 1 and "not an output folder of lco-embed encode" in result.stderr
    result = run_cli("search", out, check=False)
    assert result.returncode == 2 and "give a QUERY text, or --image, --audio or --video" in result.stderr
    result = run_cli("search", out, "  ", check=False)
    assert result.returncode == 2 and "the query is empty: give a text with at least one non-blank" in result.stderr
    result = run_cli("search", out, "--image", root / "media" / "tone.wav", check=False)
    assert result.returncode == 1 and "cannot embed the query" in result.stderr


def test_rerank_shows_both_scores_and_ranks_by_the_rerankers(encoded, tiny_reranker):
    from lco_embedding import LCOReranker

    root, out, texts = encoded
    result = run_cli("search", out, "a", "cat", "--rerank", tiny_reranker, "--rerank-k", 4, "--only", "text", "-k", 2)
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["rank", "rerank", "score", "id", "modality", "source"] and len(lines) == 2 + 2
    scores = LCOReranker(tiny_reranker, device="cpu").predict([("a cat", text) for text in texts])
    best = sorted(range(4), key=lambda i: -scores[i])[:2]
    assert [line.split()[3] for line in lines[2:]] == [f"t{i}" for i in best]
    assert [float(line.split()[1]) for line in lines[2:]] == pytest.approx([scores[i] for i in best], abs=1e-4)
