"""The one pipeline: settings -> featurize -> plan -> forward -> post-process, as a value every caller shares.

:meth:`LCOEmbedder.pipeline <lco_embedding.LCOEmbedder.pipeline>` is its only factory; ``encode`` and its streams,
the corpus job, the Ray actors, the server's batcher, the sentence-transformers module and the trainer all embed
through a :class:`Pipeline`, so each stage exists once:

* **settings** (:class:`~.settings.EmbedderSettings`): what decides an embedding; a caller may lend its own (the
  trainer's ``max_length``), never by changing the model's;
* **featurize** (:class:`~.featurize.Featurizer`, kept per settings by :class:`ModelParts`): items to tensors;
* **plan** (:class:`~.engine.Engine`): windows, batches by tokens, out-of-memory splits;
* **forward** (:class:`~.backbone.Backbone`): collate, device, the backbone, last-token pooling — with gradients
  where the trainer asks;
* **post-process** (:mod:`.postprocess`): truncate, normalise, quantize; :class:`~lco_embedding.core.outcomes.Outcome`
  from end to end, failures included (the caller's ``on_error`` applies through
  :func:`~lco_embedding.core.outcomes.apply_on_error`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from lco_embedding.core.errors import EncodeReport
from lco_embedding.core.modalities import Modality
from lco_embedding.core.outcomes import Outcome, apply_on_error
from lco_embedding.pipeline.backbone import Backbone
from lco_embedding.pipeline.batching import default_batch_overhead, default_max_tokens
from lco_embedding.pipeline.engine import Engine, EngineStats, ForwardCosts
from lco_embedding.pipeline.features import Features
from lco_embedding.pipeline.featurize import Featurizer, featurize_in_worker
from lco_embedding.pipeline.options import EncodeOptions
from lco_embedding.pipeline.postprocess import finish, finish_row, token_output
from lco_embedding.pipeline.settings import EmbedderSettings
from lco_embedding.pipeline.workers import FeaturizeWorkers, WorkerType
from lco_embedding.segments.grouping import grouped_segments
from lco_embedding.segments.result import SourceSegments

__all__ = ["ModelParts", "Pipeline"]

logger = logging.getLogger("lco_embedding.embedder")

FEATURIZERS_KEPT = 4
"""Featurizers a model keeps (one per settings in use: the model's, a trainer's, ...), least recently used first out."""


@dataclass
class ModelParts:
    """What the pipeline needs of a loaded model, held by its :class:`~lco_embedding.LCOEmbedder` and shared by
    every pipeline made from it: the processor, the forward stage, what the model is, the forward passes' measured
    costs, the featurize workers and the featurizers already built (with what they learned).

    Attributes:
        processor: The checkpoint's processor.
        backbone: The forward stage.
        modalities: What the checkpoint embeds.
        model_type: The checkpoint's ``model_type`` (for messages).
        dimension: The embedding size.
        patch_size: The vision encoder's patch size.
        max_tokens_per_batch: The constructor's token budget (None: the device's).
        num_workers: The constructor's featurize workers (None: 0 on CPU, ``min(4, cores - 1)`` on GPUs).
        worker_type: ``"thread"`` or ``"process"``.
        fault: Run before every forward pass (tests inject out-of-memory errors with it:
            :func:`lco_embedding.testing.simulate_oom`).
    """

    processor: Any
    backbone: Backbone
    modalities: tuple[Modality, ...]
    model_type: str
    dimension: int
    patch_size: int
    max_tokens_per_batch: int | None = None
    num_workers: int | None = None
    worker_type: WorkerType = "thread"
    fault: Callable[[list[Features]], None] | None = None
    costs: ForwardCosts = field(default_factory=ForwardCosts)
    workers: FeaturizeWorkers = field(default_factory=FeaturizeWorkers)
    _featurizers: dict[Any, Featurizer] = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        """Where the model is."""
        return self.backbone.device

    @property
    def sampling_rate(self) -> int:
        """The feature extractor's audio rate (16 kHz for Whisper-style encoders)."""
        return getattr(getattr(self.processor, "feature_extractor", None), "sampling_rate", 16000)

    def default_workers(self) -> int:
        """Featurize workers when a call names none: the constructor's, else 0 on CPU (the forward pass already
        uses every core) and ``min(4, cores - 1)`` on GPUs."""
        import os

        if self.num_workers is not None:
            return self.num_workers
        return 0 if self.device.type == "cpu" else max(0, min(4, (os.cpu_count() or 1) - 1))

    def default_max_tokens(self) -> int:
        """The token budget when a call names none: the constructor's, else the device's."""
        if self.max_tokens_per_batch is not None:
            return self.max_tokens_per_batch
        text = self.backbone.model.config.get_text_config()
        return default_max_tokens(self.device, text.hidden_size, text.intermediate_size, self.backbone.dtype)

    def featurizer(self, settings: EmbedderSettings) -> Featurizer:
        """The featurizer of ``settings`` (kept while they are in use, with what it has learned: the text
        template, the tokenizer copies)."""
        device = self.device if self.device.type == "cuda" and self.worker_type == "thread" else None
        key = (settings, str(device), id(self.processor))
        found = self._featurizers.pop(key, None)
        if found is None:
            found = Featurizer(
                self.processor,
                settings,
                modalities=self.modalities,
                model_type=self.model_type,
                patch_size=self.patch_size,
                sampling_rate=self.sampling_rate,
                processor_device=device,
            )
        self._featurizers[key] = found  # most recently used last
        while len(self._featurizers) > FEATURIZERS_KEPT:
            self._featurizers.pop(next(iter(self._featurizers)))
        return found


class Pipeline:
    """One call's pipeline (see the module). Made by ``LCOEmbedder.pipeline``.

    Args:
        parts: The model's parts.
        settings: The settings that decide the embeddings (the model's, or a caller's own).
        options: The call's options.
    """

    def __init__(self, parts: ModelParts, settings: EmbedderSettings, options: EncodeOptions) -> None:
        self.parts, self.options = parts, options
        self.settings = settings.for_call(options.use_audio_in_video)
        self.featurizer = parts.featurizer(self.settings)
        self.stats = EngineStats()

    # ------------------------------------------------------------------------------------------------ stages
    def featurize(self, index: int, item: Any) -> Features:
        """One item's features, with the call's prompt and forced modality.

        Raises:
            LCOInputError: The item cannot be embedded (bound to ``index``).
        """
        return self.featurizer(index, item, self.options.modality, self.options.prompt)

    def featurize_batch(self, items: list[tuple[int, Any]]) -> list[Any]:
        """``(index, item)`` pairs featurized together (runs of text in one tokenizer call): each item's features or
        its ``LCOInputError``, in order."""
        return self.featurizer.featurize_batch(items, self.options.modality, self.options.prompt)

    def engine(self, executor: Any = None, progress: Callable[[int], None] | None = None) -> Engine:
        """The plan-and-forward stage over this model (its token budget, measured costs and fault hook)."""
        options = self.options
        workers = self.workers()
        if self.parts.worker_type == "process" and executor is not None:
            featurize: Callable[[int, Any], Features] = partial(
                featurize_in_worker, modality=options.modality, prompt=options.prompt
            )
        else:
            featurize = self.featurize
        layers = list(options.output_layers) if options.output_layers is not None else None
        engine = Engine(
            featurize,
            partial(self.parts.backbone.forward, layers=layers, tokens=options.tokens),
            max_tokens=options.max_tokens_per_batch or self.parts.default_max_tokens(),
            batch_size=options.batch_size,
            batch_overhead=default_batch_overhead(self.parts.device),
            executor=executor,
            lookahead=max(2 * options.batch_size, 2 * workers),
            fault=self.parts.fault,
            progress=progress,
            costs=self.parts.costs,
            featurize_batch=self.featurize_batch,
            batchable=partial(self.featurizer.batchable, modality=options.modality),
        )
        self.stats = engine.stats
        return engine

    def workers(self) -> int:
        """Featurize workers of this call."""
        return self.options.num_workers if self.options.num_workers is not None else self.parts.default_workers()

    def embed(self, batch: list[Features], *, grad: bool = False) -> torch.Tensor:
        """Pooled rows of featurized items, ``[n, d]`` on the model's device in its dtype, through the same forward
        as every call (right padding, the model's own positions, last-token pooling; no shared-prefix cache, whose
        states would not carry gradients); with ``grad``, the graph is kept for a backward pass (the trainer)."""
        backbone = self.parts.backbone
        return backbone.run(backbone.prepare(batch, use_prefix=False), grad=grad, on_device=True)

    def collate(self, batch: list[Features]) -> dict[str, Any]:
        """Featurized items as one right-padded batch on the CPU, with the model's positions and the real tokens'
        ``attention_mask`` (what a sentence-transformers module's ``preprocess`` returns; see :meth:`states`)."""
        return self.parts.backbone.collate(batch)

    def states(self, collated: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(token states [n, seq, d], pooled rows [n, d])`` of a :meth:`collate` batch moved to the device, both
        in float32; padding included in the first (after each row's real tokens)."""
        return self.parts.backbone.states(collated)

    def execute(self, batch: list[Features], engine: Engine) -> list[Outcome]:
        """One batch of featurized items through ``engine`` (split on out-of-memory): each item's raw outcome, in
        batch order (the server's batcher gathers batches itself)."""
        return engine.execute(batch)

    # ------------------------------------------------------------------------------------------------ streams
    def raw_outcomes(self, items: Iterable[Any], progress: Callable[[int], None] | None = None) -> Iterator[Outcome]:
        """Every item's outcome in input order, raw float32 rows (or token states), as batches finish."""
        executor = self.parts.workers.executor(self.workers(), self.parts.worker_type, self.featurizer)
        try:
            yield from self.engine(executor, progress).run(items)
        finally:
            self.parts.workers.release(executor)

    def outcomes(self, items: Iterable[Any]) -> Iterator[Outcome]:
        """Every item's outcome in input order, its row post-processed (truncated, normalised, quantized as a
        stream can: float32, binary, ubinary), failures included."""
        options = self.options.for_stream()
        for outcome in self.raw_outcomes(items):
            if outcome.error is not None:
                yield outcome
                continue
            row = finish_row(
                outcome.embedding,
                normalize=options.normalize_embeddings,
                truncate_dim=options.truncate_dim,
                precision=options.precision,  # type: ignore[arg-type]
                layered=options.output_layers is not None,
            )
            yield Outcome(outcome.index, row, None)

    def segment_outcomes(self, items: Iterable[Any]) -> Iterator[SourceSegments]:
        """Each source's segments (:class:`~lco_embedding.segments.SourceSegments`) in input order, as its last
        segment is embedded; the segments stream through this pipeline as ordinary items."""
        assert self.options.segment is not None, "segment_outcomes needs options with a segment spec"
        rows = Pipeline(self.parts, self.settings, self.options.replace(segment=None))
        # On the CPU, where memory is short and the forward dominates, freed windows go back to the system at once.
        return grouped_segments(
            items,
            self.options.segment,
            self.featurizer.cut_context,
            rows.outcomes,
            map_large_allocations=self.parts.device.type == "cpu",
        )

    def encode(self, items: Iterable[Any], single: bool, report: EncodeReport | None = None) -> Any:
        """What ``encode`` returns for ``items``: the rows of the kept items stacked and post-processed as a set
        (int8/uint8 calibrated on them), or each item's token outputs; failures per ``on_error``."""
        options = self.options
        total = len(items) if isinstance(items, Sized) else None
        if options.show_progress_bar is None:
            shown = logger.getEffectiveLevel() <= logging.INFO
        else:
            shown = options.show_progress_bar
        from tqdm.auto import tqdm

        report = report if report is not None else EncodeReport()
        with tqdm(total=total, desc="Encoding", unit="item", disable=not shown) as bar:
            kept = list(apply_on_error(self.raw_outcomes(items, bar.update), options.on_error, report))
        report.kept, report.stats = [outcome.index for outcome in kept], self.stats
        results = [outcome.embedding for outcome in kept]
        if options.tokens:
            outputs = [
                token_output(row, options.output_value, options.normalize_embeddings, options.truncate_dim)
                for row in results
            ]
            return outputs[0] if single else outputs
        return finish(
            results,
            dimension=self.parts.dimension,
            single=single,
            normalize=options.normalize_embeddings,
            truncate_dim=options.truncate_dim,
            precision=options.precision,
            convert_to_numpy=options.convert_to_numpy,
            convert_to_tensor=options.convert_to_tensor,
            layered=options.output_layers is not None,
        )
