"""The forward stage: featurized items -> one padded batch -> the model's backbone -> last-token pooled rows.

:class:`Backbone` owns what touches the model: :func:`~lco_embedding.pipeline.collate.collate`, the copy to the device
(floating media tensors in the model's dtype; on CUDA from pinned host memory, without blocking), the backbone's
forward (no vocabulary head, no hidden states of other layers unless asked), pooling on the device, and one
device-to-host copy of the pooled rows per batch. On CUDA a batch is prepared (:meth:`Backbone.prepare`:
collated, pinned and copied on a side stream) right before it runs: the engine calls ``prepare`` then ``run``, so
the copy does not yet overlap the previous batch's forward.

Every item starts with the chat template's system turn and the user turn's header ("You are Qwen, a virtual human
developed by ...": a few dozen tokens, 79 with the tiny test checkpoint's tokenizer): for short texts more than
half of each row. A batch's rows
share that prefix, so its keys and values are computed once, kept (:data:`PREFIXES_KEPT`, most recently used) and
broadcast over the batch, and the forward runs only the rows' own tokens. Causal attention makes this exact: the
prefix's states never depend on what follows them. It stops before the first media token (media positions and
features are per item) and leaves every row at least its last token. Long batches run whole: attention from a
cached prefix needs an explicit mask, whose size grows with the square of the row (:data:`PREFIX_MASK_ELEMENTS`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from lco_embedding.core.modalities import MODALITY_TABLE
from lco_embedding.pipeline.collate import collate
from lco_embedding.pipeline.pooling import last_token_pool, rows_at

__all__ = ["FLOAT_INPUTS", "Backbone", "Prepared"]

FLOAT_INPUTS = tuple(key for spec in MODALITY_TABLE.values() for key in spec.value_keys)
"""Processor outputs that hold media values (the modality table's): cast to the model's dtype."""


_PER_MEDIA_KEYS = tuple(key for spec in MODALITY_TABLE.values() for key in spec.per_media_keys)
"""Processor outputs with one row per medium of an item (the modality table's: what its rotary positions depend on)."""

MIN_PREFIX = 8
"""The fewest shared leading tokens worth running once and keeping (see the module's docstring)."""
PREFIXES_KEPT = 8
"""Prefixes whose keys and values are kept between batches (the least recently used is dropped first)."""
PREFIX_MASK_ELEMENTS = 2**23
"""The largest batch (rows x own tokens x all tokens) run from a shared prefix. With the prefix's cache, the model
builds an explicit causal mask of that size (the causal kernels cannot offset the diagonal); above it the batch runs
whole, through the causal kernel with no mask: a row of 7,600 tokens would otherwise build a mask of hundreds of MB."""


@dataclass
class Prepared:
    """A batch on its way to the device: the collated inputs there (right-padded, no padding mask; without the
    shared prefix when there is one), the event its copy completes at (CUDA), each row's real length, and the
    shared prefix's token ids."""

    inputs: dict[str, Any]
    ready: Any = None
    lengths: torch.Tensor | None = None
    prefix: tuple[int, ...] = ()


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
        compute = getattr(backbone, "compute_3d_position_ids", None)
        self._positions = compute if callable(compute) else None
        self._position_params = set(inspect.signature(compute).parameters) if self._positions else set()
        self._media_ids = torch.tensor(sorted(_media_token_ids(model.config)), dtype=torch.long)
        forward_params = inspect.signature(backbone.forward).parameters
        # The keyword a cache is passed by: ``cache`` in recent transformers, ``past_key_values`` before.
        self.cache_keyword = next((name for name in ("cache", "past_key_values") if name in forward_params), None)
        self._prefixes: dict[Any, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def _position_ids(
        self, inputs: dict[str, Any], real: torch.Tensor, audio_in_video: bool = False
    ) -> torch.Tensor | None:
        """The model's own (3-D rotary) positions of a right-padded batch, computed as its forward would from a
        padding mask; the forward then needs no mask. ``audio_in_video``: the rows' videos interleave their sound
        tracks (the model's ``use_audio_in_video``)."""
        audio = inputs.get("feature_attention_mask")
        given = {
            "input_ids": inputs["input_ids"],
            "image_grid_thw": inputs.get("image_grid_thw"),
            "video_grid_thw": inputs.get("video_grid_thw"),
            "inputs_embeds": None,
            "attention_mask": real,
            "cache": None,
            "use_audio_in_video": audio_in_video,
            "audio_feature_lengths": None if audio is None else audio.sum(dim=1),
            "video_second_per_grid": inputs.get("video_second_per_grid"),
            "second_per_grid_ts": inputs.get("second_per_grid_ts"),
            "mm_token_type_ids": inputs.get("mm_token_type_ids"),
        }
        assert self._positions is not None
        positions = self._positions(**{key: value for key, value in given.items() if key in self._position_params})
        if positions is None:  # no media (Qwen2.5-VL says so): every row's text positions 0, 1, ... on each axis
            batch, width = inputs["input_ids"].shape
            positions = _text_positions(width, batch)
        return positions

    @property
    def computes_positions(self) -> bool:
        """True when the model can be given its rotary positions (:meth:`positions`)."""
        return self._positions is not None

    def positions(self, batch: list[Any], inputs: dict[str, Any], real: torch.Tensor) -> torch.Tensor | None:
        """The model's own rotary positions of collated ``inputs`` (padded either side; ``real`` marks the real
        tokens) of featurized items ``batch``, whose rows may differ in ``audio_in_video``: the model takes that
        flag once per call, so rows with and without it are given their positions in one call each."""
        flags = [features.audio_in_video for features in batch]
        if len(set(flags)) == 1:
            return self._position_ids(inputs, real, flags[0])
        positions = _text_positions(inputs["input_ids"].shape[1], len(batch)).clone()
        for flag in (False, True):
            rows = [i for i, f in enumerate(flags) if f == flag]
            group = {"input_ids": inputs["input_ids"][rows]}
            for key in _PER_MEDIA_KEYS:
                parts = [batch[i].inputs[key] for i in rows if batch[i].inputs.get(key) is not None]
                if len({tuple(part.shape[1:]) for part in parts}) > 1:  # masks of other widths: only sums matter
                    width = max(part.shape[1] for part in parts)
                    parts = [torch.nn.functional.pad(part, (0, width - part.shape[1])) for part in parts]
                if parts:
                    group[key] = torch.cat([torch.as_tensor(part) for part in parts])
            found = self._position_ids(group, real[rows], flag)
            assert found is not None
            positions[:, rows] = found
        return positions

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

    def collate(self, batch: list[Any]) -> dict[str, Any]:
        """Featurized items as one batch on the CPU, as :meth:`prepare` runs them without a shared prefix: padded on
        the right with the model's own positions (``position_ids``), and ``attention_mask`` marking the real tokens
        (left padding with its mask for a model that cannot be given positions). What a sentence-transformers
        module's ``preprocess`` returns; :meth:`states` runs it."""
        lengths = torch.tensor([features.length for features in batch])
        if self._positions is None:
            return collate([features.inputs for features in batch], self.pad_token_id)
        inputs = collate([features.inputs for features in batch], self.pad_token_id, padding_side="right")
        real = (torch.arange(inputs["input_ids"].shape[1])[None, :] < lengths[:, None]).long()
        inputs["position_ids"] = self.positions(batch, inputs, real)
        inputs["attention_mask"] = real
        return inputs

    def states(self, collated: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hidden states [n, seq, d], pooled rows [n, d])`` in float32 of a :meth:`collate` batch already on the
        device: the same forward as :meth:`run` (no mask where positions are given), gradients kept unless the
        caller turned them off."""
        inputs = dict(collated)
        real = inputs["attention_mask"]
        if "position_ids" in inputs:
            inputs["attention_mask"] = None  # causal attention: the padding after a row is never seen
        hidden = self.hidden_states(inputs)
        return hidden.float(), last_token_pool(hidden, real).float()

    def prepare(self, batch: list[Any], use_prefix: bool = True) -> Prepared:
        """Collate featurized items and start their copy to the device (on CUDA: from pinned memory, on a side
        stream, so it overlaps the batch before it).

        The rows are padded on the right and run without a padding mask: attention is causal, so no real token
        ever sees the padding after it, and every row keeps positions 0, 1, ... as with left padding — the same
        hidden states for the real tokens (to float rounding), without building a padding mask, and through the
        attention kernels' fast causal path.
        """
        lengths = torch.tensor([features.length for features in batch])
        prefix: tuple[int, ...] = ()
        inputs = self.collate(batch)
        if self._positions is not None:
            inputs["attention_mask"] = None
            batch_size, width = inputs["input_ids"].shape
            use_prefix = use_prefix and self.cache_keyword and batch_size * width * width <= PREFIX_MASK_ELEMENTS
            prefix = self._prefix_of(inputs["input_ids"], lengths) if use_prefix else ()
            if prefix:
                shared = len(prefix)
                inputs["input_ids"] = inputs["input_ids"][:, shared:]
                inputs["position_ids"] = inputs["position_ids"][..., shared:]
                # No padding mask here either: the model builds the causal mask of the rows' own tokens over the
                # prefix and themselves from the cache's length (a padding mask would only add work: 8 % of short
                # texts' time on the tiny model; the same states to float rounding).
                if "mm_token_type_ids" in inputs:
                    inputs["mm_token_type_ids"] = inputs["mm_token_type_ids"][:, shared:]
        if self.device.type != "cuda":
            return Prepared(self.move(inputs), lengths=lengths, prefix=prefix)
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
        return Prepared(moved, ready, lengths, prefix)

    def hidden_states(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """The backbone's final (normed) hidden states of collated inputs: ``[batch, seq, d]``, or
        ``[batch, len(layers), seq, d]`` with ``layers``; on the model's device, in its dtype, padding included."""
        cache = inputs.pop("cache", None)
        if cache is not None:
            inputs[self.cache_keyword] = cache  # the prefix's keys and values, extended by this batch only
        outputs = self.inner(
            **inputs,
            use_cache=False,
            output_hidden_states=layers is not None,
            return_dict=True,
        )
        if layers is None:
            return outputs.last_hidden_state
        return torch.stack([outputs.hidden_states[i] for i in layers], dim=1)

    def embed(self, inputs: dict[str, Any], layers: list[int] | None = None) -> torch.Tensor:
        """Pooled last-token states of collated inputs already on the device: ``[batch, d]`` (or per layer)."""
        return last_token_pool(self.hidden_states(inputs, layers), inputs["attention_mask"])

    def run(
        self,
        prepared: Prepared,
        layers: list[int] | None = None,
        tokens: bool = False,
        *,
        grad: bool = False,
        on_device: bool = False,
    ) -> torch.Tensor | list[dict[str, torch.Tensor]]:
        """Forward a prepared batch; one copy back: float32 rows on the CPU (or each item's real-token states).

        ``grad`` keeps the graph where the caller's grad mode records one (a trainer's forward; otherwise it runs
        under ``torch.inference_mode()``);
        ``on_device`` returns the pooled rows where the model is, in its dtype, without the copy back.
        """
        if grad:  # the caller's grad mode stands (a trainer's torch.no_grad() pass records nothing)
            return self._run(prepared, layers, tokens, on_device)
        with torch.inference_mode():
            return self._run(prepared, layers, tokens, on_device)

    def _run(
        self, prepared: Prepared, layers: list[int] | None, tokens: bool, on_device: bool
    ) -> torch.Tensor | list[dict[str, torch.Tensor]]:
        if prepared.ready is not None:
            torch.cuda.current_stream(self.device).wait_event(prepared.ready)
        inputs, lengths = dict(prepared.inputs), prepared.lengths
        assert lengths is not None
        width = inputs["input_ids"].shape[1]
        left = inputs.get("attention_mask") is not None and not prepared.prefix  # the fallback: left padding
        if prepared.prefix:
            inputs["cache"] = self._prefix_cache(prepared.prefix, len(lengths))
        if not tokens:
            last = torch.full_like(lengths, width - 1) if left else lengths - 1 - len(prepared.prefix)
            rows = rows_at(self.hidden_states(inputs, layers), last)
            return rows if on_device else rows.float().cpu()
        hidden = self.hidden_states(inputs).float().cpu()
        ids = inputs["input_ids"].cpu()
        spans = [slice(width - n, width) if left else slice(0, n) for n in lengths.tolist()]
        return [{"token_embeddings": hidden[i, span], "input_ids": ids[i, span]} for i, span in enumerate(spans)]

    def forward(
        self, batch: list[Any], layers: list[int] | None = None, tokens: bool = False
    ) -> torch.Tensor | list[dict[str, torch.Tensor]]:
        """Prepare and run one batch of featurized items."""
        return self.run(self.prepare(batch, use_prefix=not tokens), layers, tokens)

    # ------------------------------------------------------------------------------------------ shared prefix
    def _prefix_of(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[int, ...]:
        """The prefix a batch runs from: the longest kept prefix its rows all start with, else (for two rows or
        more) their whole shared prefix, kept from now on; a lone row makes no new prefix (it would not be used
        again)."""
        shared = self._shared_prefix(ids, lengths)
        if not shared:
            return ()
        start = tuple(ids[0, :shared].tolist())
        kept = [key[0] for key in self._prefixes if key[1:] == (self.device, self.dtype)]
        matching = [prefix for prefix in kept if start[: len(prefix)] == prefix]
        if matching:
            return max(matching, key=len)
        return start if len(ids) > 1 else ()

    def _shared_prefix(self, ids: torch.Tensor, lengths: torch.Tensor) -> int:
        """How many leading tokens every row shares (the chat template's system turn, mostly), up to the first
        media token and leaving each row at least one token of its own; 0 when fewer than :data:`MIN_PREFIX`."""
        same = (ids == ids[:1]).all(dim=0)
        shared = int(same.long().cumprod(0).sum())
        media = torch.isin(ids[0], self._media_ids).nonzero()
        if len(media):
            shared = min(shared, int(media[0, 0]))
        shared = min(shared, int(lengths.min()) - 1)
        return shared if shared >= MIN_PREFIX else 0

    def _prefix_cache(self, prefix: tuple[int, ...], batch: int) -> Any:
        """A cache holding the keys and values of ``prefix``, run once (and kept for the next batches), for
        ``batch`` rows."""
        from transformers import DynamicCache

        key = (prefix, self.device, self.dtype)
        layers = self._prefixes.pop(key, None)
        if layers is None:
            ids = torch.tensor([prefix], device=self.device)
            filled = DynamicCache()
            given = {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "position_ids": _text_positions(len(prefix), 1, self.device),  # text before any media
                self.cache_keyword: filled,
            }
            self.inner(**given, use_cache=True)
            layers = [(layer.keys, layer.values) for layer in filled.layers]
        self._prefixes[key] = layers  # most recently used last
        while len(self._prefixes) > PREFIXES_KEPT:
            self._prefixes.pop(next(iter(self._prefixes)))
        cache = DynamicCache()
        for index, (keys, values) in enumerate(layers):
            cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), index)
        return cache


def _text_positions(width: int, batch: int, device: Any = None) -> torch.Tensor:
    """The 3-D rotary positions of plain text: ``0, 1, ...`` on the temporal, height and width axes alike."""
    return torch.arange(width, device=device).view(1, 1, -1).expand(3, batch, -1)


def _media_token_ids(config: Any) -> set[int]:
    """Every token id the config names for media (image, video, audio placeholders and their boundaries: the words
    of the modality table's ``token_words``)."""
    words = {word for spec in MODALITY_TABLE.values() for word in spec.token_words}
    found = set()
    for source in (config, getattr(config, "get_text_config", lambda: None)()):
        for name, value in (vars(source) if source is not None else {}).items():
            if isinstance(value, int) and name.endswith(("_token_id", "_token_index")):
                if any(word in name for word in words):
                    found.add(value)
    return found
