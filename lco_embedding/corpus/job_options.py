"""A corpus job's options as two values, made once (by the CLI, or from :func:`~.job.encode_corpus`'s keywords)
and handed whole to the job, its updates and its runner (this process, or Ray's workers):

* :class:`ModelSpec` — which model embeds the corpus and how it is loaded (name or loaded model, revision, device,
  dtype, quantization, settings such as the preset);
* :class:`CorpusOptions` — how the job embeds and writes (precision, normalisation, prompt, shards, segments, the
  call options ``encode`` takes, and what to do with an existing output).

``use_audio_in_video`` is a call option here as in ``encode``: the settings a run records are the model's with the
call's value over them (:meth:`~lco_embedding.pipeline.settings.EmbedderSettings.for_call`, the one place that
rule is written).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lco_embedding.core.precision import Precision, check_precision
from lco_embedding.corpus.description import model_name
from lco_embedding.segments.spec import SegmentSpec

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.inputs.parse import AudioInVideo

__all__ = ["DEFAULT_MODEL", "DEFAULT_SHARD_SIZE", "CorpusOptions", "ModelSpec", "job_values"]

logger = logging.getLogger("lco_embedding.corpus.job")

DEFAULT_MODEL = "LCO-Embedding/LCO-Embedding-Omni-3B"
DEFAULT_SHARD_SIZE = 10_000
"""Input positions per shard: the most work a kill can lose."""
_MODEL_FIELDS = ("revision", "device", "dtype", "quantization", "embedder_kwargs")


@dataclass(frozen=True)
class ModelSpec:
    """Which model embeds a corpus, and how it is loaded.

    Attributes:
        model: A loaded :class:`~lco_embedding.LCOEmbedder`, or a hub id or folder to load.
        revision, device, dtype, quantization: ``LCOEmbedder``'s arguments when ``model`` is a name.
        settings: Its other arguments (``preset``, the media budgets, ...) when ``model`` is a name.
    """

    model: LCOEmbedder | str = DEFAULT_MODEL
    revision: str | None = None
    device: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The model's name as the manifest records it (:func:`~.description.model_name`)."""
        return model_name(self.model)

    @property
    def is_loaded(self) -> bool:
        """True when :attr:`model` is a loaded model."""
        return not isinstance(self.model, str)

    def load_kwargs(self) -> dict[str, Any]:
        """``LCOEmbedder``'s keyword arguments for a name (given values only)."""
        given = {"revision": self.revision, "device": self.device, "dtype": self.dtype}
        given["quantization"] = self.quantization
        return {**{k: v for k, v in given.items() if v is not None}, **self.settings}

    def load(self) -> LCOEmbedder:
        """The model itself, or the one loaded from its name."""
        from lco_embedding.embedder import LCOEmbedder

        if isinstance(self.model, LCOEmbedder):
            return self.model
        return LCOEmbedder(self.model, **self.load_kwargs())

    def known(self, use_audio_in_video: AudioInVideo | None) -> dict[str, Any]:
        """What a manifest records of the model that is known before it loads: its name, revision and
        quantization; all of a loaded model's settings, of a name those given and the given preset's (which win
        over the checkpoint's saved ones); the call's ``use_audio_in_video`` over either."""
        from lco_embedding.pipeline.settings import PRESETS, EmbedderSettings

        if isinstance(self.model, str):
            quantization, revision = self.quantization, self.revision
            given = {name: value for name, value in self.settings.items() if name in EmbedderSettings.SAVED}
            settings = {**PRESETS.get(given.get("preset"), {}), **given}
            if use_audio_in_video is not None:
                settings["use_audio_in_video"] = use_audio_in_video
        else:
            quantization, revision = self.model.quantization, self.model.revision
            settings = self.model.embedder_settings.for_call(use_audio_in_video).saved()
        return {
            "model": {"name": self.name, "revision": revision, "quantization": quantization},
            "settings": settings,
        }


@dataclass(frozen=True)
class CorpusOptions:
    """How a corpus job embeds and writes. Checked when made.

    Attributes:
        precision: ``float32``, ``int8`` or ``binary`` (:mod:`lco_embedding.corpus.precision`; Parquet folders).
        normalize: L2-normalise the embeddings.
        prompt, prompt_name: An instruction put in front of every item, as in ``encode``.
        shard_size: Input positions per shard (failed items included).
        segment: Cut long audio, video and text into segments (one row per segment).
        use_audio_in_video: Embed videos with their sound tracks (None: the model's setting), as in ``encode``.
        batch_size, max_tokens_per_batch, num_workers: As in ``encode``; they do not change the embeddings, so a
            resumed run may use other values.
        overwrite: Delete a previous run's output and start over.
        allow_duplicate_ids: Keep records whose id another record has (default: refuse the job).
        dry_run: On a store that holds a run: plan the update and return it, writing nothing.
        keep_deleted: On such a store: keep the rows of items the inputs no longer have.
        show_progress_bar: None: shown when the job logs at INFO or lower.
    """

    precision: Precision = "float32"
    normalize: bool = True
    prompt: str | None = None
    prompt_name: str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    segment: SegmentSpec | None = None
    use_audio_in_video: AudioInVideo | None = None
    batch_size: int = 32
    max_tokens_per_batch: int | None = None
    num_workers: int | None = None
    overwrite: bool = False
    allow_duplicate_ids: bool = False
    dry_run: bool = False
    keep_deleted: bool = False
    show_progress_bar: bool | None = None

    def __post_init__(self) -> None:
        check_precision(self.precision, "stored-range")
        if not isinstance(self.shard_size, int) or isinstance(self.shard_size, bool) or self.shard_size < 1:
            raise ValueError(f"shard_size must be a positive integer, got {self.shard_size}.")
        if self.show_progress_bar is None:
            object.__setattr__(self, "show_progress_bar", logger.getEffectiveLevel() <= logging.INFO)

    def replace(self, **changes: Any) -> CorpusOptions:
        """A copy with ``changes`` (checked)."""
        return dataclasses.replace(self, **changes)

    def manifest_entry(self) -> dict[str, Any]:
        """The options a manifest records: those that decide the output."""
        entry: dict[str, Any] = {"precision": self.precision, "normalize": self.normalize}
        entry["shard_size"] = self.shard_size
        if self.segment is not None:
            entry["segment"] = self.segment.to_dict()
        return entry

    def encode_keywords(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """``encode``'s keywords for a run on ``manifest``'s output: its prompt, normalisation and segments (a
        resumed run or an update embeds as the first run did), and this call's batching and sound-track option."""
        segment = manifest["options"].get("segment")
        return {
            "prompt": manifest["prompts"]["instruction"],
            "normalize_embeddings": manifest["options"]["normalize"],
            "batch_size": self.batch_size,
            "max_tokens_per_batch": self.max_tokens_per_batch,
            "num_workers": self.num_workers,
            **({"use_audio_in_video": self.use_audio_in_video} if self.use_audio_in_video is not None else {}),
            **({"segment": SegmentSpec(**segment)} if segment is not None else {}),
        }


def job_values(
    model: ModelSpec | LCOEmbedder | str, options: CorpusOptions | None, keywords: dict[str, Any]
) -> tuple[ModelSpec, CorpusOptions]:
    """The job's two values from :func:`~.job.encode_corpus`'s arguments: ``model`` (a spec, a loaded model or a
    name), ``options``, and keywords naming fields of either (``embedder_kwargs`` are the spec's ``settings``).

    Raises:
        TypeError: Keywords beside a ``ModelSpec`` or ``CorpusOptions`` they would override.
        ValueError: A keyword neither value has (naming the closest one), or a bad option value.
    """
    given = {name: keywords.pop(name) for name in _MODEL_FIELDS if name in keywords}
    if isinstance(model, ModelSpec):
        if given:
            raise TypeError(f"give {', '.join(given)} in the ModelSpec, not beside it.")
        spec = model
    else:
        settings = given.pop("embedder_kwargs", None) or {}
        spec = ModelSpec(model, settings=dict(settings), **given)
    if options is not None:
        if keywords:
            raise TypeError(f"give {', '.join(keywords)} in the CorpusOptions, not beside them.")
        return spec, options
    names = {f.name for f in dataclasses.fields(CorpusOptions)}
    unknown = sorted(set(keywords) - names)
    if unknown:
        from lco_embedding.core.keywords import check_unknown_keywords

        check_unknown_keywords("encode_corpus", {name: keywords[name] for name in unknown}, (*names, *_MODEL_FIELDS))
    return spec, CorpusOptions(**keywords)
