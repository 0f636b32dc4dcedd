"""Every bad input gets an LCOInputError naming its index; skip mode embeds the rest unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lco_embedding import EncodeReport, LCOEmbedder, LCOEmbeddingError, LCOInputError


def _bad_items(media, tmp_path):
    junk_video = tmp_path / "junk.mp4"
    junk_video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 10)
    return {
        "missing file": ({"image": str(tmp_path / "nope.png")}, "file not found"),
        "missing media path string": (str(tmp_path / "nope.png"), "no such file exists"),
        "corrupt image": (media["corrupt_png"], "cannot decode the image"),
        "unsupported type": (3.5, "unsupported input of type float"),
        "empty text": ("", "empty text"),
        "empty audio": ({"audio": media["empty_wav"]}, "audio is empty"),
        "corrupt video": ({"video": str(junk_video)}, "cannot decode the video"),
        "zero-frame video": ({"video": []}, "'video' list is empty"),
        "nan audio": ({"audio": {"array": np.full(1600, np.nan), "sampling_rate": 16000}}, "NaN"),
        "bad array": (np.zeros((1, 2, 3, 4, 5)), "5 dimensions"),
        "unreachable url": ({"image": "http://127.0.0.1:9/cat.png"}, "could not fetch"),
        "bad data uri": ({"image": "data:image/png;base64,@@@"}, "invalid base64"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "missing media path string",
        "corrupt image",
        "unsupported type",
        "empty text",
        "empty audio",
        "corrupt video",
        "zero-frame video",
        "nan audio",
        "bad array",
        "unreachable url",
        "bad data uri",
    ],
)
def test_bad_item_raises_naming_its_index(embedder, media, tmp_path, case):
    item, message = _bad_items(media, tmp_path)[case]
    with pytest.raises(LCOInputError, match=message) as info:
        embedder.encode(["fine text", media["png"], item])
    assert info.value.index == 2
    assert str(info.value).startswith("Input 2: ")
    assert isinstance(info.value, ValueError)


def test_skip_mode_reports_and_embeds_the_rest_unchanged(embedder, media, tmp_path):
    bad = _bad_items(media, tmp_path)
    inputs = ["a cat", bad["corrupt image"][0], media["png"], bad["empty text"][0], {"audio": media["wav"]}]
    report = EncodeReport()
    out = embedder.encode(inputs, on_error="skip", batch_size=2, report=report)
    assert report.kept == [0, 2, 4]
    assert set(report.errors) == {1, 3}
    assert "cannot decode the image" in report.errors[1] and "empty text" in report.errors[3]
    clean = embedder.encode(["a cat", media["png"], {"audio": media["wav"]}], batch_size=2)
    np.testing.assert_allclose(out, clean, atol=1e-5, rtol=0)
    again = EncodeReport()
    assert not report.ok and embedder.encode("ok", report=again).shape == (64,) and again.ok


def test_wav_bytes_given_bare_are_audio_and_unknown_bytes_say_how_to_name_them(embedder, media):
    from pathlib import Path

    data = Path(media["wav"]).read_bytes()
    np.testing.assert_allclose(embedder.encode(data), embedder.encode({"audio": data}), atol=1e-6, rtol=0)
    segments = embedder.encode_segments(data)
    assert segments.modality == ["audio"] and segments.end[0] == pytest.approx(1.0)
    with pytest.raises(LCOInputError, match=r"cannot identify image file\); .* \{'audio': data\} or \{'video': data\}"):
        embedder.encode(b"neither an image nor a sound")


def test_modality_the_checkpoint_cannot_embed(tiny_vl, media):
    model = LCOEmbedder(tiny_vl, device="cpu")
    with pytest.raises(LCOInputError, match="no audio encoder") as info:
        model.encode(["x", {"audio": media["wav"]}])
    assert info.value.index == 1


def test_nan_embeddings_never_leave_encode(tiny_omni):
    model = LCOEmbedder(tiny_omni, device="cpu")
    with torch.no_grad():
        model.model.model.language_model.norm.weight.fill_(float("nan"))
    with pytest.raises(LCOEmbeddingError, match="NaN or infinite") as info:
        model.encode(["a", "b"])
    assert info.value.index in (0, 1)
    report = EncodeReport()
    assert model.encode(["a", "b"], on_error="skip", report=report).shape[0] == 0
    assert set(report.errors) == {0, 1}


def test_decompression_bomb_guard_stays_on(embedder, media, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # the 80x60 test image is then a "bomb"
    with pytest.raises(LCOInputError, match="decompression-bomb"):
        embedder.encode([media["png"]])


def test_huge_image_is_downscaled_to_the_pixel_budget(embedder):
    from lco_embedding.preprocessing import preprocess_image

    big = Image.new("RGB", (4000, 3000), (10, 200, 30))
    options = embedder.pipeline().featurizer.image_options
    resized = preprocess_image(big, options)
    assert resized.width * resized.height <= options.max_pixels
    assert resized.width % 28 == 0 and resized.height % 28 == 0
    assert embedder.encode(big).shape == (64,)


def test_bad_arguments(embedder):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        embedder.encode("x", batch_size=0)
    with pytest.raises(ValueError, match="on_error"):
        embedder.encode("x", on_error="ignore")
    with pytest.raises(ValueError, match="prompt_name 'query' is not in prompts"):
        embedder.encode("x", prompt_name="query")
    with pytest.raises(ValueError, match="output_value"):
        embedder.encode("x", output_value="word_embeddings")


def test_only_input_problems_become_per_item_errors_a_bug_raises_even_when_skipping(embedder, media, monkeypatch):
    import lco_embedding.preprocessing.image as image

    class Bug(Exception):
        pass

    def broken(*args, **kwargs):
        raise Bug("a bug in preprocessing")

    monkeypatch.setattr(image, "preprocess_image", broken)  # the loader the modality table names
    with pytest.raises(Bug):
        embedder.encode(["fine", media["png"]], on_error="skip")
    monkeypatch.setattr(image, "preprocess_image", lambda *a, **k: (_ for _ in ()).throw(TimeoutError("yours")))
    with pytest.raises(TimeoutError, match="yours"):
        embedder.encode([media["png"]], on_error="skip")


def test_input_errors_cross_worker_processes_with_their_index(tiny_omni, media):
    import pickle

    error = pickle.loads(pickle.dumps(LCOInputError("file not found: 'x.png'.", 3)))
    assert error.index == 3 and error.reason == "file not found: 'x.png'." and str(error) == "Input 3: " + error.reason
    with LCOEmbedder(tiny_omni, device="cpu", num_workers=1, worker_type="process") as model:
        report = EncodeReport()
        model.encode(["fine", "/no/such.png", media["png"]], on_error="skip", report=report)
        assert report.errors == {1: "'/no/such.png' looks like a path to an image file, but no such "
                                            "file exists. Fix the path, or pass {'text': '/no/such.png'} (or "
                                            "modality='text') to embed the string as text."}  # fmt: skip
