"""Items to model-ready tensors, away from the model (lco_embedding.pipeline.featurize)."""

from __future__ import annotations

import pickle

import pytest
import torch

from lco_embedding import LCOInputError
from lco_embedding.inputs.parse import parse_item
from lco_embedding.pipeline.featurize import AUDIO_TAIL


def same_features(a, b) -> bool:
    return (
        a.index == b.index
        and a.length == b.length
        and set(a.inputs) == set(b.inputs)
        and all(torch.equal(a.inputs[key], b.inputs[key]) for key in a.inputs)
    )


def test_a_featurizer_survives_pickling_with_the_same_output(embedder, media):
    """What a worker process receives featurizes exactly as the original."""
    featurizer = embedder.pipeline().featurizer
    copy = pickle.loads(pickle.dumps(featurizer))
    for index, item in enumerate(["a text", {"image": media["png"]}, {"audio": media["wav"], "text": "speech"}]):
        assert same_features(copy(index, item, None, None), featurizer(index, item, None, None))


@pytest.mark.parametrize(
    ("item", "batchable"),
    [
        ("plain text", True),
        ({"text": "plain text"}, True),
        ("https://example.com/cat.png", False),
        ("data:image/png;base64,AAAA", False),
        ("photo.jpg", False),
        ({"text": "a caption", "image": "photo.jpg"}, False),
        (["a", "list"], False),
    ],
)
def test_only_surely_plain_text_is_batched(embedder, item, batchable):
    assert embedder.pipeline().featurizer.batchable(item) is batchable


def test_a_window_keeps_its_order_and_each_item_s_error(embedder, media):
    featurizer = embedder.pipeline().featurizer
    items = [(0, "first text"), (1, "/no/such/file.png"), (2, {"image": media["png"]}), (3, "last text")]
    out = featurizer.featurize_batch(items, None, None)
    assert isinstance(out[1], LCOInputError) and out[1].index == 1 and "no such file exists" in out[1].reason
    for (index, item), got in zip(items, out, strict=True):
        if index != 1:
            assert same_features(got, featurizer(index, item, None, None))


def test_audio_is_padded_to_the_item_s_longest_clip_not_to_300_s(embedder, media):
    features = embedder.pipeline().featurizer(0, {"audio": media["wav"]}, None, None)
    real = int(features.inputs["feature_attention_mask"].sum())
    frames = features.inputs["input_features"].shape[-1]
    assert real < frames <= real + AUDIO_TAIL // 160 + 2  # hop 160: the tail adds 3 frames, not 29,000


def test_a_modality_the_checkpoint_lacks_is_an_input_error(tiny_vl, media):
    from lco_embedding import LCOEmbedder

    featurizer = LCOEmbedder(tiny_vl, device="cpu").pipeline().featurizer
    with pytest.raises(LCOInputError, match="no audio encoder") as info:
        featurizer(4, {"audio": media["wav"]}, None, None)
    assert info.value.index == 4
    assert featurizer.featurize(0, parse_item("text works"), None).length > 0


def test_the_featurizer_is_kept_while_the_settings_stay_and_renewed_when_they_change(tiny_omni):
    from lco_embedding import LCOEmbedder

    model = LCOEmbedder(tiny_omni, device="cpu")
    first = model.pipeline().featurizer
    assert model.pipeline().featurizer is first
    model.max_length = 10
    renewed = model.pipeline().featurizer
    assert renewed is not first and renewed.max_length == 10
    assert renewed.config_key() != first.config_key()
