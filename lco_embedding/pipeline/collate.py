"""Pad the per-item processor outputs of several items into one batch, as one processor call would.

* ``input_ids`` / ``attention_mask`` (and Qwen2.5-VL's ``mm_token_type_ids``): left padding (the reference
  pipeline's side) with the pad token, or 0.
* ``input_features`` / ``feature_attention_mask`` (one row per audio): zero padding on the right along time; the
  audio encoder reads only the frames the mask marks, so the values of padded frames never matter.
* Media tensors (``pixel_values``, ``image_grid_thw``, ``pixel_values_videos``, ``video_grid_thw``,
  ``video_second_per_grid``, ...) are concatenated in item order, as the processor concatenates them.

An output key this module does not know raises, rather than being dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["MODEL_INPUT_KEYS", "collate"]

_LEFT_PADDED = {"input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids"}
_TIME_PADDED = {"input_features", "feature_attention_mask"}
_CONCATENATED = {
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "video_second_per_grid",
    "second_per_grid_ts",
}
MODEL_INPUT_KEYS = frozenset(_LEFT_PADDED | _TIME_PADDED | _CONCATENATED)
"""Every processor output that :func:`collate` batches (and the model's forward reads)."""


def collate(items: Sequence[dict[str, Any]], pad_token_id: int, *, padding_side: str = "left") -> dict[str, Any]:
    """Merge single-item processor outputs into one batch (``padding_side="right"`` pads the token rows after the
    real tokens instead, for a forward pass without a padding mask: see :mod:`lco_embedding.pipeline.backbone`).

    Example:
        >>> a = {"input_ids": torch.tensor([[5, 6, 7]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
        >>> b = {"input_ids": torch.tensor([[8]]), "attention_mask": torch.ones(1, 1, dtype=torch.long)}
        >>> collate([a, b], pad_token_id=0)["input_ids"].tolist()
        [[5, 6, 7], [0, 0, 8]]
    """
    if not items:
        raise ValueError("collate needs at least one item.")
    keys = set(items[0])
    for item in items[1:]:
        keys |= set(item)
    batch: dict[str, Any] = {}
    for key in sorted(keys):
        values = [item[key] for item in items if key in item]
        if key in _LEFT_PADDED:
            pad = pad_token_id if key == "input_ids" else 0
            batch[key] = _pad([v[0] for v in values], pad, left=padding_side == "left")
        elif key in _TIME_PADDED:
            # One row per audio (an item may hold several), padded to the longest.
            batch[key] = _pad([row for value in values for row in value], 0, left=False)
        elif key in _CONCATENATED:
            if isinstance(values[0], torch.Tensor):
                batch[key] = torch.cat(values, dim=0)
            else:
                batch[key] = [x for value in values for x in value]
        else:
            raise ValueError(f"collate does not know how to batch the processor output {key!r}.")
    return batch


def _pad(rows: list[torch.Tensor], value: float, *, left: bool) -> torch.Tensor:
    """Stack 1-D or 2-D rows padded along their last dimension to the longest."""
    length = max(row.shape[-1] for row in rows)
    out = rows[0].new_full((len(rows), *rows[0].shape[:-1], length), value)
    for i, row in enumerate(rows):
        if left:
            out[i, ..., length - row.shape[-1] :] = row
        else:
            out[i, ..., : row.shape[-1]] = row
    return out
