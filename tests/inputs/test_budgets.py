"""Per-item media settings: an item's own fps / max_frames / min_pixels / max_pixels, for that item only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lco_embedding import LCOEmbedder, LCOInputError
from lco_embedding.testing import peak_memory_growth, synthetic_image

TOL = 1e-5
SMALL = 8 * 28 * 28  # eight visual tokens' worth of pixels
VIDEO_SMALL = 128 * 28 * 28  # a frame's smallest budget


@pytest.fixture(scope="module")
def small_budget(tiny_omni) -> LCOEmbedder:
    """The same checkpoint with a small image and video pixel budget and a low frame rate, for every item."""
    return LCOEmbedder(tiny_omni, device="cpu", max_pixels=SMALL, video_max_pixels=VIDEO_SMALL, video_fps=1.0,
                       video_max_frames=4)  # fmt: skip


def test_an_items_budget_equals_the_models_setting_for_that_item_only(embedder, small_budget, media, tmp_path):
    photo = str(tmp_path / "photo.png")  # large enough for the small budget to shrink it
    Image.fromarray(synthetic_image(240, 320, np.random.default_rng(0))).save(photo)
    image = {"image": photo, "max_pixels": SMALL}
    video = {"video": media["mp4"], "max_pixels": VIDEO_SMALL, "fps": 1.0, "max_frames": 4}
    mixed = {"text": "a caption", "image": photo, "max_pixels": SMALL}
    got = embedder.encode([image, video, mixed, {"image": photo}])
    want = small_budget.encode([{"image": photo}, {"video": media["mp4"]}, {"text": "a caption", "image": photo}])
    np.testing.assert_allclose(got[:3], want, atol=TOL, rtol=0)
    np.testing.assert_allclose(got[3], embedder.encode({"image": photo}), atol=TOL, rtol=0)  # others untouched
    assert not np.allclose(got[0], got[3], atol=1e-3)
    featurize = embedder.pipeline().featurizer
    assert featurize(0, image, None, None).length < featurize(0, {"image": photo}, None, None).length
    small = small_budget.pipeline().featurizer
    assert featurize(0, video, None, None).length == small(0, {"video": media["mp4"]}, None, None).length


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"image": "x.jpg", "max_pixels": 0}, "'max_pixels' must be a positive integer, got 0"),
        ({"image": "x.jpg", "max_pixels": 100.5}, "'max_pixels' must be a positive integer"),
        ({"video": "x.mp4", "fps": "2"}, "'fps' must be a positive finite number, got '2'"),
        ({"video": "x.mp4", "max_frames": True}, "'max_frames' must be a positive integer"),
        ({"text": "words", "fps": 2}, "'fps' applies to video and this item has none"),
        ({"audio": "x.wav", "max_pixels": 1000}, "'max_pixels' applies to image and video and this item has none"),
        ({"image": "x.jpg", "quality": 3}, "dict keys \\['quality'\\] are not understood"),
    ],
)
def test_bad_budgets_name_the_item_and_the_fix(embedder, item, message):
    with pytest.raises(LCOInputError, match=message):
        embedder.encode([item])


def test_budgets_that_contradict_the_model_are_an_input_error(embedder, media):
    with pytest.raises(LCOInputError, match=r"Input 0: the item's image settings .* min_pixels <= max_pixels"):
        embedder.encode([{"image": media["jpg"], "max_pixels": 100}])  # below the model's min_pixels


HUGE = {"min_pixels": 10**9, "max_pixels": 10**9}
"""What once upsampled a 64x64 image to a billion pixels (3.5 GB within 19 s)."""


@pytest.mark.parametrize("modality", ["image", "video"])
def test_a_budget_above_the_ceiling_is_refused_before_anything_is_resized(embedder, media, modality):
    item = {modality: media["png" if modality == "image" else "mp4"], **HUGE}
    outcome, grown = peak_memory_growth(lambda: embedder.encode([item]))
    assert isinstance(outcome, LCOInputError), outcome
    limit = f"{1280 * 28 * 28:,} pixels per image" if modality == "image" else f"{768 * 28 * 28:,} pixels per video"
    assert str(outcome).startswith("Input 0: 'min_pixels' of 1,000,000,000 is above the " + limit)
    assert "raise max_item_pixels" in str(outcome)
    assert grown < 100 * 2**20, grown


def test_max_item_pixels_lets_items_ask_for_more_and_never_passes_max_image_pixels(tiny_omni, tmp_path):
    photo = str(tmp_path / "large.png")
    Image.fromarray(synthetic_image(1400, 1400, np.random.default_rng(1))).save(photo)
    wide = 2 * 1280 * 28 * 28
    roomy = LCOEmbedder(tiny_omni, device="cpu", max_item_pixels=wide)
    built = LCOEmbedder(tiny_omni, device="cpu", max_pixels=wide)
    got = roomy.encode({"image": photo, "max_pixels": wide})
    np.testing.assert_allclose(got, built.encode({"image": photo}), atol=TOL, rtol=0)
    with pytest.raises(LCOInputError, match=f"above the {wide:,} pixels per image"):
        roomy.encode({"image": photo, "max_pixels": wide + 1})
    with pytest.raises(ValueError, match="max_item_pixels must be a positive integer at most max_image_pixels"):
        LCOEmbedder(tiny_omni, device="cpu", max_item_pixels=10**9, max_image_pixels=10**8)


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"fps": float("inf")}, "'fps' must be a positive finite number, got inf"),
        ({"fps": float("nan")}, "'fps' must be a positive finite number, got nan"),
        ({"fps": 61}, "'fps' must be at most 60 frames per second, got 61"),
        ({"max_frames": 1}, "'max_frames' must be at least 2"),
        ({"max_frames": 770}, "'max_frames' of 770 is above the 768 video frames an item's own budget may ask for"),
    ],
)
def test_video_budgets_outside_their_ranges_name_the_limit(embedder, media, budget, message):
    with pytest.raises(LCOInputError, match=message):
        embedder.encode([{"video": media["mp4"], **budget}])


def test_a_video_above_max_video_tokens_is_refused_from_its_header(tiny_omni, media):
    tight = LCOEmbedder(tiny_omni, device="cpu", max_video_tokens=100)
    with pytest.raises(LCOInputError, match=r"would be \d[\d,]* visual tokens \(4 frames of \d+x\d+\), above the "
                                            r"limit of 100 \(max_video_tokens\)"):  # fmt: skip
        tight.encode({"video": media["mp4"]})
    with pytest.raises(LCOInputError, match="max_video_tokens"):  # a frame list is checked on its first frame
        tight.encode({"video": [np.zeros((48, 64, 3), np.uint8)] * 4})


@pytest.mark.parametrize("reader", ["_read_pyav", "_read_decord"])
def test_videos_resized_a_chunk_at_a_time_equal_the_whole_stack_resized(media, monkeypatch, reader):
    from lco_embedding.preprocessing import video

    if reader == "_read_decord":
        pytest.importorskip("decord")
    options = video.VideoOptions(fps=4.0)
    decoded = video.read_video_frames(media["mp4"], options)  # as stored
    size = video.frame_size(len(decoded), *decoded.shape[-2:], options)
    whole = video._resized(decoded, size)
    monkeypatch.setattr(video, "DECODE_CHUNK_PIXELS", 3 * 64 * 48)  # three frames at a time
    chunked = getattr(video, reader)(media["mp4"], options, resize=True)
    assert torch.equal(chunked, whole)
    frames = [frame.permute(1, 2, 0).numpy() for frame in decoded]
    assert torch.equal(video.preprocess_video(frames, options), whole.float())
