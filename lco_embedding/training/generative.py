"""Continual generative pre-training: next-token loss on captions and documents, optionally conditioned on media.

* A document (text only) is the plain token sequence of its text, and every token is predicted.
* A caption with an image, audio or video is a chat: the user turn holds the media alone (no instruction), the
  assistant turn is the caption ending in ``<|im_end|>``; only the caption's tokens are predicted.

The paper's finding is that more generative pre-training before the contrastive stage raises the ceiling (its
low-resource visual-document result); train this stage first, merge it, then run the contrastive stage on the
merged checkpoint (``docs/training.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lco_embedding.core.modalities import MODALITY_TABLE
from lco_embedding.inputs.parse import parse_item
from lco_embedding.pipeline.collate import collate
from lco_embedding.pipeline.featurize import Featurizer
from lco_embedding.training.data import GenerativeExample

__all__ = ["GenerativeFeatures", "featurize_generative", "generative_loss"]

IGNORE_INDEX = -100
_TEXT_KEYS_EXTENDED = {"input_ids": None, "attention_mask": 1, "mm_token_type_ids": 0, "token_type_ids": 0}


@dataclass
class GenerativeFeatures:
    """One example's processor outputs and how many of its leading tokens are not predicted."""

    inputs: dict[str, torch.Tensor]
    prompt_tokens: int


def featurize_generative(featurizer: Featurizer, example: GenerativeExample) -> GenerativeFeatures:
    """Tokenize one generative example (media loaded and processed as ``LCOEmbedder`` does); the text is cut to
    ``featurizer.max_length`` tokens."""
    tokenizer = featurizer.processor.tokenizer
    text = featurizer.truncate(example.text)
    if not example.media:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return GenerativeFeatures({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, 0)
    (modality, value), *_ = example.media.items()
    conversation = [{"role": "user", "content": [{"type": modality, modality: value}]}]
    prompt, media = featurizer.render(parse_item(conversation), None)
    given = {MODALITY_TABLE[name].processor_keyword: values or None for name, values in media.items()}
    inputs = dict(featurizer.processor(text=[prompt], return_tensors="pt", **given))
    target = tokenizer(text + "<|im_end|>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    prompt_tokens = int(inputs["input_ids"].shape[1])
    for key, fill in _TEXT_KEYS_EXTENDED.items():
        if key in inputs:
            tail = target if fill is None else torch.full_like(target, fill, dtype=inputs[key].dtype)
            inputs[key] = torch.cat([inputs[key], tail.to(inputs[key].dtype)], dim=1)
    return GenerativeFeatures(inputs, prompt_tokens)


def _labels(batch: Sequence[GenerativeFeatures], input_ids: torch.Tensor) -> torch.Tensor:
    """Targets of a left-padded batch: the input ids, ignoring padding and each example's prompt."""
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    width = input_ids.shape[1]
    for row, features in enumerate(batch):
        length = int(features.inputs["input_ids"].shape[1])
        start = width - length + max(features.prompt_tokens, 1)
        labels[row, start:] = input_ids[row, start:]
    return labels


def target_tokens(batch: Sequence[GenerativeFeatures]) -> int:
    """Tokens predicted in ``batch`` (each sequence's first token is never a target)."""
    return sum(int(f.inputs["input_ids"].shape[1]) - max(f.prompt_tokens, 1) for f in batch)


def generative_loss(pipeline, batch: Sequence[GenerativeFeatures], *, normalizer: int | None = None) -> torch.Tensor:
    """Summed next-token cross-entropy of ``batch`` divided by ``normalizer`` (default: its target tokens).

    Args:
        pipeline: The trained model's :class:`~lco_embedding.pipeline.pipeline.Pipeline` (its backbone's language
            model head predicts the tokens).
        batch: Featurized examples.
        normalizer: Target tokens of the global batch, so that summing over mini-batches and processes gives
            the global per-token mean.
    """
    backbone = pipeline.parts.backbone
    inputs = backbone.move(collate([f.inputs for f in batch], backbone.pad_token_id))
    logits = backbone.model(**inputs, use_cache=False, return_dict=True).logits
    labels = _labels(batch, inputs["input_ids"])
    loss = F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(),
        labels[:, 1:].flatten(),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return loss / (normalizer or max(target_tokens(batch), 1))
