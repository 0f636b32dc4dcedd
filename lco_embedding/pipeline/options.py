"""One call's options as a value: :class:`EncodeOptions`, built and checked in one place from the keywords of
``encode`` and its streams (sentence-transformers' names), and read by the stage each option concerns.

Adding a per-call option is one field here (with its check in :meth:`EncodeOptions.__post_init__`), the stage that
uses it, and its test: every ``encode*`` method, the corpus job, the Ray actors, the server and the integrations
pass keywords or an ``EncodeOptions`` through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from lco_embedding.core.keywords import check_unknown_keywords
from lco_embedding.core.modalities import MODALITIES, Modality
from lco_embedding.core.outcomes import OnError, check_on_error
from lco_embedding.core.precision import Precision, check_precision
from lco_embedding.inputs.parse import AudioInVideo, check_audio_in_video
from lco_embedding.segments.spec import SegmentSpec

__all__ = ["KEYWORDS", "OUTPUT_VALUES", "EncodeOptions", "ModelDefaults"]

OUTPUT_VALUES: tuple[str | None, ...] = ("sentence_embedding", "token_embeddings", None)
STREAM_PRECISIONS = ("float32", "binary", "ubinary")
"""Precisions a stream can give row by row (int8/uint8 are calibrated over a whole set)."""


class ModelDefaults(Protocol):
    """What a model lends the options it is asked to embed with (an :class:`~lco_embedding.LCOEmbedder`)."""

    prompts: dict[str, str]
    default_prompt_name: str | None
    truncate_dim: int | None

    @property
    def num_layers(self) -> int:
        """Decoder layers (``output_layers`` indexes ``num_layers + 1`` hidden states)."""
        ...


@dataclass(frozen=True)
class EncodeOptions:
    """How one call embeds its items. Build it with :meth:`from_keywords` (the names ``encode`` takes); every
    field is checked when it is made, so a bad value fails before anything is read.

    Attributes:
        prompt: The task instruction put in front of each item's content (resolved from ``prompt`` /
            ``prompt_name`` / the model's default), or None.
        modality: Forces the modality of bare items (``"text"`` for strings that look like file names).
        normalize_embeddings: L2-normalise (after ``truncate_dim``).
        truncate_dim: Keep the first ``truncate_dim`` dimensions.
        precision: ``float32`` or a quantization (``int8``, ``uint8``, ``binary``, ``ubinary``).
        output_value: ``"sentence_embedding"``, ``"token_embeddings"`` or None (sentence-transformers' dicts).
        output_layers: Hidden-state indices to return instead of the final state (resolved: non-negative).
        on_error: ``"raise"`` or ``"skip"`` (:func:`~lco_embedding.core.outcomes.apply_on_error`).
        use_audio_in_video: Embed videos with their sound tracks (None: the model's setting).
        segment: Cut long media and texts into segments (:class:`~lco_embedding.segments.SegmentSpec`).
        batch_size: Most items per forward pass.
        max_tokens_per_batch: Token budget of one forward pass (None: the model's).
        num_workers: Background featurize workers (None: the model's).
        convert_to_numpy: Return numpy arrays (``encode``).
        convert_to_tensor: Return one tensor (``encode``; wins over ``convert_to_numpy``).
        show_progress_bar: None: shown when the embedder logs at INFO or lower.
    """

    prompt: str | None = None
    modality: Modality | None = None
    normalize_embeddings: bool = True
    truncate_dim: int | None = None
    precision: Precision = "float32"
    output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding"
    output_layers: tuple[int, ...] | None = None
    on_error: OnError = "raise"
    use_audio_in_video: AudioInVideo | None = None
    segment: SegmentSpec | None = None
    batch_size: int = 32
    max_tokens_per_batch: int | None = None
    num_workers: int | None = None
    convert_to_numpy: bool = True
    convert_to_tensor: bool = False
    show_progress_bar: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _positive("batch_size", self.batch_size)
        check_on_error(self.on_error)
        check_precision(self.precision, "calibrated")
        if self.output_value not in OUTPUT_VALUES:
            raise ValueError(
                "output_value must be one of 'sentence_embedding', 'token_embeddings' or None, got "
                f"{self.output_value!r}."
            )
        if self.modality is not None and self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES} or None, got {self.modality!r}.")
        for name in ("truncate_dim", "max_tokens_per_batch"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.num_workers is not None and (not _integer(self.num_workers) or self.num_workers < 0):
            raise ValueError(f"num_workers must be a non-negative integer, got {self.num_workers}.")
        if self.use_audio_in_video is not None:
            try:
                check_audio_in_video(self.use_audio_in_video)
            except ValueError as e:
                raise ValueError(f"use_audio_in_video must be True, False or 'auto', got {e}") from None
        if self.segment is not None and not isinstance(self.segment, SegmentSpec):
            raise ValueError(f"segment must be a SegmentSpec, got {type(self.segment).__name__}.")
        if self.tokens and (self.output_layers is not None or self.precision != "float32"):
            raise ValueError(
                f"output_value={self.output_value!r} cannot be combined with output_layers or a precision other "
                "than float32; these apply to sentence embeddings."
            )
        if self.segment is not None and (self.tokens or self.output_layers is not None or self.precision != "float32"):
            raise ValueError(
                "segment= returns sentence embeddings: output_value, output_layers and precision keep their "
                "defaults with it."
            )

    @classmethod
    def from_keywords(
        cls,
        model: ModelDefaults,
        *,
        prompt_name: str | None = None,
        prompt: str | None = None,
        output_layers: Literal["all"] | Iterable[int] | None = None,
        truncate_dim: int | None = None,
        **keywords: Any,
    ) -> EncodeOptions:
        """The options of a call from ``encode``'s keywords: the prompt resolved (``prompt``, else ``prompt_name``,
        else the model's default prompt), ``truncate_dim`` defaulting to the model's, ``output_layers="all"`` and
        negative indices resolved.

        Raises:
            ValueError: A bad value, an unknown prompt name, or an unknown keyword (naming the closest valid one).
        """
        check_unknown_keywords("encode", {k: v for k, v in keywords.items() if k not in _FIELDS}, KEYWORDS)
        return cls(
            prompt=resolve_prompt(model, prompt_name, prompt),
            truncate_dim=truncate_dim if truncate_dim is not None else model.truncate_dim,
            output_layers=layer_indices(output_layers, model.num_layers),
            **keywords,
        )

    def replace(self, **changes: Any) -> EncodeOptions:
        """A copy with ``changes`` (checked)."""
        return dataclasses.replace(self, **changes)

    @property
    def tokens(self) -> bool:
        """True when items give their token states rather than one pooled row."""
        return self.output_value != "sentence_embedding"

    def for_stream(self) -> EncodeOptions:
        """These options, checked for a stream (row-by-row post-processing).

        Raises:
            ValueError: A precision calibrated over a whole set (int8, uint8), or token outputs.
        """
        if self.precision not in STREAM_PRECISIONS:
            raise ValueError(
                f"streams support precision float32, binary or ubinary, not {self.precision!r}: int8/uint8 ranges "
                "are calibrated on the whole set; use encode, or quantize afterwards with calibration embeddings."
            )
        if self.tokens:
            raise ValueError("streams give sentence embeddings; use encode for output_value.")
        return self


def resolve_prompt(model: ModelDefaults, prompt_name: str | None, prompt: str | None) -> str | None:
    """The instruction put in front of the content: ``prompt``, else the prompt named ``prompt_name``, else the
    model's default prompt, else None.

    Raises:
        ValueError: ``prompt_name`` is not one of the model's prompts.
    """
    if prompt is not None:
        return prompt
    name = prompt_name if prompt_name is not None else model.default_prompt_name
    if name is None:
        return None
    if name not in model.prompts:
        raise ValueError(
            f"prompt_name {name!r} is not in prompts ({sorted(model.prompts)}); pass prompts={{...}} to the "
            "constructor or use prompt=..."
        )
    return model.prompts[name] or None


def layer_indices(output_layers: Literal["all"] | Iterable[int] | None, num_layers: int) -> tuple[int, ...] | None:
    """``output_layers`` as non-negative hidden-state indices (``"all"``: ``0 .. num_layers``).

    Raises:
        ValueError: An index out of range.
    """
    if output_layers is None:
        return None
    count = num_layers + 1
    if output_layers == "all":
        return tuple(range(count))
    layers = [int(i) for i in output_layers]  # type: ignore[union-attr]
    for i in layers:
        if not -count <= i < count:
            raise ValueError(f"output_layers index {i} is out of range: the model has {count} hidden states.")
    return tuple(i % count for i in layers)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(name: str, value: Any) -> None:
    if not _integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}.")


_FIELDS = {f.name for f in dataclasses.fields(EncodeOptions)}
KEYWORDS: tuple[str, ...] = tuple(sorted(_FIELDS | {"prompt_name", "device", "report"}))
"""The keywords ``encode`` takes: the options' fields, ``prompt_name`` (resolved into ``prompt``), ``device`` (moves
the model first) and ``report`` (an :class:`~lco_embedding.EncodeReport` to fill)."""
