"""Padding per-item processor outputs into one batch (lco_embedding.pipeline.collate)."""

from __future__ import annotations

import pytest
import torch

from lco_embedding.inputs.parse import parse_item
from lco_embedding.pipeline.collate import collate


def test_collate_pads_like_one_processor_call(embedder, media):
    """Per-item processor outputs, collated, equal the processor run on the whole batch (left padding)."""
    featurizer = embedder.pipeline().featurizer
    items = ["a short text", {"image": media["png"]}, {"text": "caption", "image": media["jpg"]}]
    features = [featurizer(i, item, None, None) for i, item in enumerate(items)]
    batch = collate([f.inputs for f in features], embedder.parts.backbone.pad_token_id)
    texts, images = [], []
    for item in items:
        text, loaded = featurizer.render(parse_item(item), None)
        texts.append(text)
        images += loaded["image"]
    tokenizer = embedder.processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        whole = embedder.processor(text=texts, images=images, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = side
    assert set(batch) == set(whole)
    for key in whole:
        torch.testing.assert_close(batch[key], whole[key], rtol=0, atol=0)
    assert [f.length for f in features] == whole["attention_mask"].sum(1).tolist()
    with pytest.raises(ValueError, match="does not know"):
        collate([{"surprise": torch.zeros(1)}], 0)


def test_right_padding_keeps_each_row_s_tokens_first(embedder):
    """padding_side="right" (the backbone's, run without a mask): the same rows, real tokens first."""
    featurizer = embedder.pipeline().featurizer
    features = [featurizer(i, text, None, None) for i, text in enumerate(["a short text", "a longer text " * 5])]
    left = collate([f.inputs for f in features], embedder.parts.backbone.pad_token_id)
    right = collate([f.inputs for f in features], embedder.parts.backbone.pad_token_id, padding_side="right")
    for row, f in enumerate(features):
        n = f.length
        assert torch.equal(right["input_ids"][row, :n], left["input_ids"][row, -n:])
        assert (right["input_ids"][row, n:] == embedder.parts.backbone.pad_token_id).all()
        assert right["attention_mask"][row].tolist() == [1] * n + [0] * (right["input_ids"].shape[1] - n)
