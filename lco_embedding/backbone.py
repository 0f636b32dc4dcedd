"""The forward stage: featurized items -> one padded batch -> the model's backbone -> last-token pooled rows.

:class:`Backbone` owns what touches the model: :func:`~lco_embedding.collate.collate`, the copy to the device
(floating media tensors in the model's dtype; on CUDA from pinned host memory, without blocking), the backbone's
forward (no vocabulary head, no KV cache, no hidden states of other layers unless asked), pooling on the device,
and one device-to-host copy of the pooled rows per batch. On CUDA the next batch can be prepared
(:meth:`Backbone.prepare`: collated, pinned and copied on a side stream) while the current one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from lco_embedding.collate import collate
from lco_embedding.pooling import last_token_pool

__all__ = ["FLOAT_INPUTS", "Backbone", "Prepared"]

FLOAT_INPUTS = ("pixel_values", "pixel_values_videos", "input_features")
"""Processor outputs that hold media values: cast to the model's dtype."""


@dataclass
class Prepared:
    """A batch on its way to the device: the collated inputs there, and the event its copy completes at (CUDA)."""

    inputs: dict[str, Any]
    ready: Any = None


class Backbone:
    """A loaded model's forward pass, from featurized items to pooled rows.

    Args:
        model: The ``...ForConditionalGeneration`` module (holds the weights).
        backbone: Its inner model (``model.model``), whose forward returns hidden states.
        pad_token_id: The id ``input_ids`` are left-padded with.
    """

    def __init__(self, model: torch.nn.Module, backbone: torch.nn.Module, pad_token_id: int) -> None:
        self.model = model
        self.inner = backbone
        self.pad_token_id = pad_token_id
        self._copy_stream: Any = None

    @property
    def device(self) -> torch.device:
        """Where the model is (it may be moved after loading)."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's weights."""
        return next(self.model.parameters()).dtype

    def move(self, inputs: dict[str, Any], *, non_blocking: bool = False) -> dict[str, Any]:
        """Collated inputs on the model's device, floating media tensors in its dtype."""
        device, dtype = self.device, self.dtype
        return {
            key: value.to(device, dtype if key in FLOAT_INPUTS else None, non_blocking=non_blocking)
            if isinstance(value, torch.Tensor)
            else value
            for key, value in inputs.items()
        }

    def prepare(self, batch: list[Any]) -> Prepared:
        """Collate featurized items and start their copy to the device (on CUDA: from pinned memory, on a side
        stream, so it overlaps the batch before it)."""
        inputs = collate([features.inputs for features in batch], self.pad_token_id)
        if self.device.type != "cuda":
            return Prepared(self.move(inputs))
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(self.device)
        pinned = {
            key: v.pin_memory() if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v
            for key, v in inputs.items()
        }
        with torch.cuda.stream(self._copy_stream):
            moved = self.move(pinned, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record(self._copy_stream)
        return Prepared(moved, ready)

    def hidden_states(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """The backbone's final (normed) hidden states of collated inputs: ``[batch, seq, d]``, or
        ``[batch, len(layers), seq, d]`` with ``layers``; on the model's device, in its dtype, padding included."""
        outputs = self.inner(**inputs, use_cache=False, output_hidden_states=layers is not None, return_dict=True)
        if layers is None:
            return outputs.last_hidden_state
        return torch.stack([outputs.hidden_states[i] for i in layers], dim=1)

    def embed(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """Pooled last-token states of collated inputs already on the device: ``[batch, d]`` (or per layer)."""
        return last_token_pool(self.hidden_states(inputs, layers), inputs["attention_mask"])

    @torch.inference_mode()
    def run(
        self, prepared: Prepared, layers: list[int] | None = None, tokens: bool = False
    ) -> torch.Tensor | list[dict[str, torch.Tensor]]:
        """Forward a prepared batch; one copy back: float32 rows on the CPU (or each item's real-token states)."""
        if prepared.ready is not None:
            torch.cuda.current_stream(self.device).wait_event(prepared.ready)
        inputs = prepared.inputs
        if not tokens:
            return self.embed(inputs, layers).float().cpu()
        hidden = self.hidden_states(inputs).float().cpu()
        real = inputs["attention_mask"].bool().cpu()
        ids = inputs["input_ids"].cpu()
        return [{"token_embeddings": hidden[i][real[i]], "input_ids": ids[i][real[i]]} for i in range(len(hidden))]

    def forward(
        self, batch: list[Any], layers: list[int] | None = None, tokens: bool = False
    ) -> torch.Tensor | list[dict[str, torch.Tensor]]:
        """Prepare and run one batch of featurized items."""
        return self.run(self.prepare(batch), layers, tokens)
