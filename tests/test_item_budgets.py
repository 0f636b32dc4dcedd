"""Per-item media settings: an item's own fps / max_frames / min_pixels / max_pixels, for that item only."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lco_embedding import LCOEmbedder, LCOInputError
from lco_embedding.testing import synthetic_image

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
    featurize = embedder.featurizer()
    assert featurize(0, image, None, None).length < featurize(0, {"image": photo}, None, None).length
    assert featurize(0, video, None, None).length == small_budget.featurizer()(0, {"video": media["mp4"]}, None,
                                                                               None).length  # fmt: skip


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
