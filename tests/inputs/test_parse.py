"""Input parsing and the message builder (pure functions, no model)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lco_embedding.core.errors import LCOInputError
from lco_embedding.inputs.parse import build_messages, infer_modality, parse_item, split_inputs
from lco_embedding.inputs.prompts import MIXED_SUFFIX, SUFFIXES, suffix_for
from lco_embedding.inputs.sniff import sniff_modality


def test_strings(media, tmp_path):
    assert infer_modality("a cat on a mat") == "text"
    assert infer_modality(media["png"]) == "image"
    assert infer_modality(media["wav"]) == "audio"
    assert infer_modality(media["mp4"]) == "video"
    assert infer_modality("file://" + media["png"]) == "image"
    assert infer_modality("https://example.com/cat.jpg?x=1") == "image"
    assert infer_modality("https://example.com/page") == "text"
    assert infer_modality("data:audio/wav;base64,AAAA") == "audio"
    assert infer_modality("data:text/plain;base64,AAAA") == "text"
    assert infer_modality("see my holiday photo.jpg") == "text"  # whitespace: a sentence, not a path


def test_missing_media_path_is_refused_with_the_fix():
    with pytest.raises(LCOInputError, match=r"no such file exists.*\{'text': 'ct\.jpg'\}"):
        infer_modality("ct.jpg")
    assert parse_item("ct.jpg", modality="text").parts[0].value == "ct.jpg"
    assert parse_item({"text": "ct.jpg"}).kind == "text"


def test_a_folder_named_like_a_media_file_is_said_to_be_a_folder(tmp_path):
    folder = tmp_path / "photos.png"
    folder.mkdir()
    with pytest.raises(LCOInputError, match=r"photos\.png' is a folder, not an image file: pass the files in it"):
        infer_modality(str(folder))


def test_bare_bytes_and_unnamed_file_objects_are_sniffed_by_their_container(media, tmp_path):
    import soundfile as sf

    from lco_embedding.testing import write_clip_with_silent_track

    sf.write(tmp_path / "tone.ogg", np.zeros(1600, np.float32), 16000, format="OGG", subtype="VORBIS")
    files = {name: Path(media[name]) for name in ("png", "jpg", "wav", "flac", "mp4")}
    files["ogg"] = tmp_path / "tone.ogg"
    files["mkv"] = write_clip_with_silent_track(tmp_path / "clip.mkv")
    expected = {"png": "image", "jpg": "image", "wav": "audio", "flac": "audio", "ogg": "audio", "mp4": "video",
                "mkv": "video"}  # fmt: skip
    for name, path in files.items():
        data = path.read_bytes()
        assert infer_modality(data) == expected[name] == sniff_modality(data[:32]), name
        unnamed = io.BytesIO(data)
        unnamed.seek(0)
        assert infer_modality(unnamed) == expected[name] and unnamed.tell() == 0, name
    assert infer_modality(b"no known signature") == "image"  # the image decoder then says how to name others


def test_non_string_forms():
    assert infer_modality(Image.new("RGB", (4, 4))) == "image"
    assert infer_modality(b"\x89PNG") == "image"
    assert infer_modality(np.zeros((8, 8, 3), np.uint8)) == "image"
    assert infer_modality(np.zeros((8, 8), np.uint8)) == "image"
    assert infer_modality(np.zeros(1600, np.float32)) == "audio"
    assert infer_modality(torch.zeros(3, 8, 8)) == "image"
    assert infer_modality(np.zeros((4, 8, 8, 3), np.uint8)) == "video"
    assert infer_modality({"array": np.zeros(10), "sampling_rate": 8000}) == "audio"
    assert infer_modality([Image.new("RGB", (4, 4))] * 3) == "video"
    assert infer_modality({"text": "x", "image": "y.png"}) == "mixed"
    assert infer_modality({"image": "y.png"}) == "image"
    assert infer_modality([{"type": "text", "text": "x"}]) == "parts"
    assert infer_modality([{"role": "user", "content": "x"}]) == "conversation"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"picture": "x.png"}, "not understood"),
        ({}, "not understood"),
        ({"array": np.zeros(3)}, "sampling_rate"),
        (3.5, "unsupported input of type float"),
        (np.zeros((1, 2, 3, 4, 5)), "5 dimensions"),
        ("   ", "empty text"),
        ({"text": ""}, "empty text"),
        ([{"type": "sticker", "sticker": 1}], "'sticker' is not understood"),
    ],
)
def test_malformed_items(item, message):
    with pytest.raises(LCOInputError, match=message):
        parse_item(item)


def test_mixed_dict_orders_media_first_then_text():
    item = parse_item({"text": "t", "image": ["a.png", "b.png"], "audio": "c.wav", "video": "d.mp4"})
    assert [p.modality for p in item.parts] == ["video", "audio", "image", "image", "text"]
    content = build_messages(item)[0]["content"]
    assert [c["type"] for c in content] == ["video", "audio", "image", "image", "text"]
    assert content[-1]["text"] == "t" + MIXED_SUFFIX


def test_parts_keep_their_order_and_conversations_are_used_as_given():
    parts = [{"type": "text", "text": "caption "}, {"type": "image", "image": "a.png"}]
    content = build_messages(parse_item(parts))[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "text"]
    assert content[-1]["text"] == MIXED_SUFFIX
    conversation = [{"role": "user", "content": [{"type": "image", "image": "a.png"}, {"type": "text", "text": "hi"}]}]
    item = parse_item(conversation)
    assert build_messages(item, prompt="ignored") == conversation
    assert [p.modality for p in item.media] == ["image"]


def test_prompt_goes_first_and_truncation_touches_user_text_only():
    item = parse_item("one two three")
    content = build_messages(item, prompt="Query: ", truncate=lambda t: t[:3])[0]["content"]
    assert content == [{"type": "text", "text": "Query: one" + SUFFIXES["text"]}]
    image = build_messages(parse_item({"image": "a.png"}), prompt="Find: ")[0]["content"]
    assert image[0] == {"type": "text", "text": "Find: "} and image[-1]["text"] == SUFFIXES["image"]


def test_suffix_rules():
    assert suffix_for(["image"]) == SUFFIXES["image"]
    assert suffix_for(["image", "text"]) == MIXED_SUFFIX
    assert suffix_for(["audio", "text"], "dominant") == SUFFIXES["audio"]
    assert suffix_for(["audio", "video", "text"], "dominant") == SUFFIXES["video"]
    assert suffix_for(["audio", "video", "image"], "dominant") == SUFFIXES["image"]
    with pytest.raises(ValueError, match="mixed_suffix"):
        suffix_for(["image", "text"], "other")  # type: ignore[arg-type]


def test_split_inputs():
    assert split_inputs("x") == (["x"], True)
    assert split_inputs(["x", "y"]) == (["x", "y"], False)
    generator = (s for s in "ab")
    items, single = split_inputs(generator)
    assert items is generator and not single  # read lazily, never materialized
    parts = [{"type": "text", "text": "x"}]
    assert split_inputs(parts) == ([parts], True)
    assert split_inputs({"text": "x"}) == ([{"text": "x"}], True)


def test_an_existing_file_is_media_whatever_its_path_holds(media, tmp_path, embedder):
    import shutil

    folder = tmp_path / "My Photos"
    folder.mkdir()
    spaced = folder / "my cat.png"
    shutil.copyfile(media["png"], spaced)
    expected = embedder.encode(media["png"])
    for given in (
        str(spaced),
        str(spaced) + "\n",
        "file://" + str(spaced),
        "file://" + str(spaced).replace(" ", "%20"),
    ):
        assert infer_modality(given) == "image", given
        np.testing.assert_allclose(embedder.encode(given), expected, atol=1e-5, rtol=0)
    m4v = tmp_path / "clip.m4v"
    shutil.copyfile(media["mp4"], m4v)
    np.testing.assert_allclose(embedder.encode(str(m4v)), embedder.encode({"video": media["mp4"]}), atol=1e-5)


def test_an_existing_file_with_an_unknown_extension_is_not_embedded_as_text(tmp_path):
    notes = tmp_path / "photo.heic"
    notes.write_bytes(b"...")
    with pytest.raises(LCOInputError, match=r"existing file with an unknown extension \(\.heic.*\{'image': path\}"):
        infer_modality(str(notes))
    assert parse_item(str(notes), modality="text").parts[0].value == str(notes)
    assert infer_modality("LICENSE") == "text" and infer_modality("a sentence. With dots.") == "text"


def test_text_with_a_lone_surrogate_and_file_objects_get_clear_messages(media):
    import io

    from lco_embedding.inputs.sniff import describe_item

    with pytest.raises(LCOInputError, match=r"lone surrogate \('\\ud800' at character 2\), which is not valid"):
        parse_item("ab\ud800cd")
    with open(media["png"], "rb") as f:
        assert infer_modality(f) == "image" and describe_item({"image": f}) == f"{{'image': <file {media['png']!r}>}}"
    assert describe_item([io.BytesIO(b"x"), b"12345"]) == "[<in-memory file (BytesIO)>, <5 bytes>]"
    assert split_inputs(io.BytesIO(b"a\nb"))[1] is True  # one item, not its lines
    with open(media["png"]) as text_mode, pytest.raises(LCOInputError, match="open media files in binary mode"):
        infer_modality(text_mode)
