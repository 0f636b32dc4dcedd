"""The forward stage (lco_embedding.pipeline.backbone): right padding without a mask, and the shared prefix run once.

Each path is compared with the same batch run the plain way (left padding, a padding mask, no cache) on the same
checkpoint, to float32 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lco_embedding import LCOEmbedder
from lco_embedding.pipeline.backbone import MIN_PREFIX, PREFIX_MASK_ELEMENTS, PREFIXES_KEPT
from lco_embedding.pipeline.collate import collate
from lco_embedding.pipeline.pooling import last_token_pool
from lco_embedding.testing import peak_memory_growth

TOL = 1e-5


def plain_forward(model: LCOEmbedder, items: list) -> np.ndarray:
    """The batch run as the reference runs it: left-padded, with the padding mask, no cache."""
    featurized = [model.pipeline().featurizer(0, item, None, None) for item in items]
    backbone = model.parts.backbone
    inputs = backbone.move(collate([features.inputs for features in featurized], backbone.pad_token_id))
    with torch.inference_mode():
        hidden = backbone.hidden_states(inputs)
        pooled = last_token_pool(hidden, inputs["attention_mask"]).float()
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def batch_forward(model: LCOEmbedder, items: list, use_prefix: bool = True) -> np.ndarray:
    """The batch through the pipeline's ``Backbone`` (right padding, the shared prefix if any)."""
    featurized = [model.pipeline().featurizer(0, item, None, None) for item in items]
    with torch.inference_mode():
        pooled = model.parts.backbone.run(model.parts.backbone.prepare(featurized, use_prefix=use_prefix))
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.fixture
def fresh(tiny_omni) -> LCOEmbedder:
    """An embedder of its own: these tests read and fill its kept prefixes."""
    return LCOEmbedder(tiny_omni, device="cpu")


TEXTS = ["short", "a longer sentence about cats and dogs " * 4, "the of and", "x " * 60]


def test_text_batch_with_its_shared_prefix_matches_the_plain_forward(fresh):
    out = batch_forward(fresh, TEXTS)
    assert len(fresh.parts.backbone._prefixes) == 1
    ((prefix, _, _),) = fresh.parts.backbone._prefixes
    assert len(prefix) >= MIN_PREFIX
    np.testing.assert_allclose(out, plain_forward(fresh, TEXTS), atol=TOL, rtol=0)
    np.testing.assert_allclose(out, batch_forward(fresh, TEXTS, use_prefix=False), atol=TOL, rtol=0)


def test_media_batches_share_only_the_text_before_the_first_media_token(fresh, media):
    items = [{"image": media["png"]}, {"text": "a caption", "image": media["jpg"]}, {"audio": media["wav"]}]
    featurized = [fresh.pipeline().featurizer(0, item, None, None) for item in items]
    prepared = fresh.parts.backbone.prepare(featurized)
    assert prepared.prefix
    media_ids = set(fresh.parts.backbone._media_ids.tolist())
    assert not media_ids & set(prepared.prefix)
    assert set(prepared.inputs["input_ids"][:, 0].tolist()) & media_ids  # the rows' own part starts at the media
    np.testing.assert_allclose(batch_forward(fresh, items), plain_forward(fresh, items), atol=TOL, rtol=0)


def test_a_kept_prefix_is_reused_and_a_lone_row_makes_none(fresh):
    calls = []
    hook = fresh.parts.backbone.inner.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(kwargs.get("use_cache")), with_kwargs=True
    )
    try:
        batch_forward(fresh, ["one text"])  # a lone row and nothing kept: no prefix
        assert not fresh.parts.backbone._prefixes and calls == [False]
        batch_forward(fresh, TEXTS[:2])
        batch_forward(fresh, TEXTS[2:])
        lone = batch_forward(fresh, ["one text"])  # a lone row reuses the kept prefix
    finally:
        hook.remove()
    assert calls.count(True) == 1  # the prefix was run once
    np.testing.assert_allclose(lone, plain_forward(fresh, ["one text"]), atol=TOL, rtol=0)


def test_a_long_row_runs_whole_even_with_a_kept_prefix(tiny_omni):
    """A cached prefix needs an explicit attention mask (rows x own tokens x all tokens); a long row runs whole."""
    model = LCOEmbedder(tiny_omni, device="cpu", max_length=None)
    batch_forward(model, TEXTS)  # keeps the template's prefix
    long = model.pipeline().featurizer(0, "word " * 4000, None, None)
    assert long.length**2 > PREFIX_MASK_ELEMENTS
    short = model.pipeline().featurizer(0, "one text", None, None)
    assert model.parts.backbone.prepare([short]).prefix  # small: it is used
    assert not model.parts.backbone.prepare([long]).prefix
    outcome, grown = peak_memory_growth(lambda: model.parts.backbone.forward([long]))
    assert grown < long.length**2, grown  # the float mask of 4,000 x 4,000 it once built was 64 MB
    np.testing.assert_allclose(torch.nn.functional.normalize(outcome, dim=-1).numpy(),
                               plain_forward(model, ["word " * 4000]), atol=TOL, rtol=0)  # fmt: skip


def test_every_row_keeps_at_least_its_last_token(fresh):
    # Identical rows share everything; the forward still runs each row's last token.
    items = ["the same text"] * 3
    prepared = fresh.parts.backbone.prepare([fresh.pipeline().featurizer(0, item, None, None) for item in items])
    assert prepared.inputs["input_ids"].shape[1] >= 1
    assert len(prepared.prefix) == int(prepared.lengths.min()) - 1
    np.testing.assert_allclose(batch_forward(fresh, items), plain_forward(fresh, items), atol=TOL, rtol=0)


def test_kept_prefixes_are_bounded_and_follow_the_model_dtype(fresh):
    for index in range(PREFIXES_KEPT + 3):
        prompt = f"Instruction number {index} for this run of texts: "
        fresh.encode(TEXTS, prompt=prompt)
    assert len(fresh.parts.backbone._prefixes) == PREFIXES_KEPT
    fresh.bfloat16()
    out = fresh.encode(TEXTS)
    assert all(key[2] == torch.bfloat16 for key in list(fresh.parts.backbone._prefixes)[-1:])
    fresh.float()
    np.testing.assert_allclose(fresh.encode(TEXTS), plain_forward(fresh, TEXTS), atol=TOL, rtol=0)
    assert np.isfinite(out).all()


def test_token_embeddings_cover_the_whole_row(fresh):
    """output_value="token_embeddings" returns every real token's state, the shared prefix's too."""
    rows = fresh.encode(TEXTS[:2], output_value="token_embeddings")
    lengths = [fresh.pipeline().featurizer(0, text, None, None).length for text in TEXTS[:2]]
    assert [len(row) for row in rows] == lengths


def test_qwen2_5_vl_text_and_media_batches_in_turn_match_the_plain_forward(tiny_vl, media):
    """Qwen2.5-VL keeps rotary state between calls (``rope_deltas``) and gives no positions for text alone: text
    batches after media batches, each with the kept prefix, still match the plain forward."""
    model = LCOEmbedder(tiny_vl, device="cpu")
    images = [{"image": media["png"]}, {"text": "a caption", "image": media["jpg"]}]
    for items in (TEXTS, images, TEXTS[:2], images, TEXTS[2:]):
        np.testing.assert_allclose(batch_forward(model, items), plain_forward(model, items), atol=TOL, rtol=0)
    assert model.parts.backbone._prefixes
