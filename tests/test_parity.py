"""LCOEmbedder.encode equals the model-card reference pipeline (float32, within 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lco_embedding.testing.reference import media_content, mixed_content, text_content

TOL = 1e-5


def _cases(media):
    return {
        "text": ("a cat on a mat", text_content("a cat on a mat")),
        "image_png": (media["png"], media_content("image", media["png"])),
        "image_jpg_dict": ({"image": media["jpg"]}, media_content("image", media["jpg"])),
        "image_rgba": ({"image": media["png_rgba"]}, media_content("image", media["png_rgba"])),
        "audio_wav": ({"audio": media["wav"]}, media_content("audio", media["wav"])),
        "audio_stereo_22k": (
            {"audio": media["wav_22k_stereo"]},
            media_content("audio", media["wav_22k_stereo"]),
        ),
        "audio_flac": (media["flac"], media_content("audio", media["flac"])),
        "video": ({"video": media["mp4"]}, media_content("video", media["mp4"])),
        "mixed_text_image": (
            {"text": "a gradient", "image": media["png"]},
            mixed_content([("image", media["png"]), ("text", "a gradient")]),
        ),
        "mixed_audio_video_text": (
            {"text": "a clip", "video": media["mp4_short"], "audio": media["wav"]},
            mixed_content([("video", media["mp4_short"]), ("audio", media["wav"]), ("text", "a clip")]),
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "text",
        "image_png",
        "image_jpg_dict",
        "image_rgba",
        "audio_wav",
        "audio_stereo_22k",
        "audio_flac",
        "video",
        "mixed_text_image",
        "mixed_audio_video_text",
    ],
)
def test_single_item_matches_reference(embedder, reference, media, case):
    item, content = _cases(media)[case]
    ours = embedder.encode(item)
    ref = reference.embed([content])[0]
    assert ours.shape == (64,)
    np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)


def test_mixed_batch_matches_reference_item_by_item_and_batched(embedder, reference, media):
    cases = _cases(media)
    names = ["text", "image_png", "audio_wav", "video", "mixed_text_image", "audio_flac"]
    ours = embedder.encode([cases[n][0] for n in names], batch_size=len(names))
    ref_batch = reference.embed([cases[n][1] for n in names])
    np.testing.assert_allclose(ours, ref_batch, atol=TOL, rtol=0)
    for row, name in zip(ours, names, strict=True):
        np.testing.assert_allclose(row, reference.embed([cases[name][1]])[0], atol=TOL, rtol=0)


def test_text_batch_of_different_lengths_matches_reference(embedder, reference):
    texts = ["a", "the quick brown fox jumps over the lazy dog " * 5, "a dog in the fog"]
    ours = embedder.encode(texts, batch_size=3)
    ref = reference.embed([text_content(t) for t in texts])
    np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)


def test_pil_image_and_array_inputs_match_the_file(embedder, media):
    from_path = embedder.encode(media["png"])
    image = Image.open(media["png"])
    np.testing.assert_allclose(embedder.encode(image), from_path, atol=TOL, rtol=0)
    np.testing.assert_allclose(embedder.encode(np.asarray(image.convert("RGB"))), from_path, atol=TOL, rtol=0)


def test_parity_is_discriminating(embedder, media):
    """Different inputs give clearly different embeddings, so the tolerance above means something."""
    emb = embedder.encode(["a cat on a mat", "a dog in the fog", media["png"], {"audio": media["wav"]}])
    sims = emb @ emb.T
    off_diagonal = sims[~np.eye(len(emb), dtype=bool)]
    assert off_diagonal.max() < 0.99
