"""The Ray side of ``lco-embed encode --ray``: :class:`RayRunner`, a corpus job's runner, whose :class:`RayJob`
embeds the job's records on :class:`~.dataset.EmbedBatch` actors while the driver plans, orders and commits."""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lco_embedding.core.require import require
from lco_embedding.corpus.job_options import CorpusOptions, ModelSpec
from lco_embedding.corpus.records import Record
from lco_embedding.distributed.dataset import EmbedBatch, PickledItems, compute_strategy, worker_kwargs

__all__ = ["RayJob", "RayOptions", "RayRunner"]


# ------------------------------------------------------------------------------------ lco-embed encode --ray
@dataclass
class RayOptions:
    """How ``lco-embed encode --ray`` runs.

    Attributes:
        address: A Ray cluster's address; None starts a local Ray, or joins the cluster ``RAY_ADDRESS`` names.
        workers: Actors; default: one per GPU of the cluster when ``gpus_per_worker`` is not 0, else 1.
        gpus_per_worker: GPUs per actor; default 1 when the cluster has GPUs, else 0.
        cpus_per_worker: CPUs per actor.
        batch_size: Rows per actor call.
        chunk_rows: Records the driver hands to Ray at a time (one actor pool per chunk: bounds the driver's
            memory).
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None
    cpus_per_worker: float = 1.0
    batch_size: int = 256
    chunk_rows: int = 100_000
    ray_init_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RayRunner:
    """Runs a corpus job's embedding on Ray actors: ``encode_corpus(..., runner=RayRunner(RayOptions(...)))``, what
    ``lco-embed encode --ray`` passes (a :class:`lco_embedding.corpus.runners.Runner`)."""

    options: RayOptions = field(default_factory=RayOptions)

    def start(self, spec: ModelSpec) -> RayJob:
        """The job's Ray side; the spec's model must be a name (each actor loads it).

        Raises:
            TypeError: The spec holds a loaded embedder.
        """
        if spec.is_loaded:
            raise TypeError("with Ray, model must be a hub id or folder: each Ray actor loads it.")
        return RayJob(spec.name, spec.load_kwargs(), self.options)


class RayJob:
    """The Ray side of a corpus job: describe the model on a worker, then embed the records on actors.

    The driver keeps planning, ordering and committing (:mod:`lco_embedding.corpus.job`); it never loads the model.
    """

    def __init__(self, model: str, embedder_kwargs: dict[str, Any], options: RayOptions) -> None:
        require("ray.data", "ray")
        import ray

        if not ray.is_initialized():
            ray.init(address=options.address, log_to_driver=False, **options.ray_init_kwargs)
        resources = ray.cluster_resources()
        gpus = options.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        workers = options.workers or (max(1, int(resources.get("GPU", 0) // gpus)) if gpus else 1)
        self.model, self.options, self.gpus, self.workers = model, options, gpus, workers
        self.embedder_kwargs = worker_kwargs(embedder_kwargs, gpus)

    def describe(self, options: CorpusOptions) -> dict[str, Any]:
        """The model's manifest description, made on a worker with the actors' resources."""
        import ray

        task = ray.remote(num_gpus=self.gpus or None, num_cpus=self.options.cpus_per_worker)(_describe)
        call = (options.prompt_name, options.prompt, options.use_audio_in_video)
        return ray.get(task.remote(self.model, self.embedder_kwargs, *call))

    def outcomes(self, records: Iterable[Record], **encode_kwargs: Any) -> Iterator[tuple[Record, Any, Any]]:
        """``(record, embedding, None)`` or ``(record, None, reason)`` for every record, in order."""
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results come back in position order
        chunk: list[Record] = []
        for record in records:
            chunk.append(record)
            if len(chunk) >= self.options.chunk_rows:
                yield from self._chunk(chunk, encode_kwargs)
                chunk = []
        yield from self._chunk(chunk, encode_kwargs)

    def _chunk(self, chunk: list[Record], encode_kwargs: dict[str, Any]) -> Iterator[tuple[Record, Any, Any]]:
        import ray.data

        encode_kwargs = dict(encode_kwargs)
        segment = encode_kwargs.pop("segment", None)
        rows = [{"position": r.position, "item": pickle.dumps(r.item)} for r in chunk if r.error is None]
        pending = iter(chunk)
        if rows:
            # At least a few blocks per actor, so that every actor works and results stream back in order.
            blocks = max(min(len(rows), 4 * self.workers), -(-len(rows) // self.options.batch_size))
            ds = ray.data.from_items(rows, override_num_blocks=blocks)
            embedded = ds.map_batches(
                EmbedBatch,
                fn_constructor_kwargs={
                    "model": self.model,
                    "embedder_kwargs": self.embedder_kwargs,
                    "read": PickledItems(),
                    "output_column": "embedding",
                    "error_column": "error",
                    "on_error": "skip",
                    "encode_kwargs": encode_kwargs,
                    "segment": segment,
                },
                batch_size=self.options.batch_size,
                batch_format="pyarrow",
                compute=compute_strategy(self.workers),
                num_gpus=self.gpus or None,
                num_cpus=self.options.cpus_per_worker,
            )
            results = _row_results(embedded) if segment is None else _segment_results(embedded)
            for position, result, error in results:
                record = next(pending)
                while record.error is not None:  # made by the driver; never sent
                    yield record, None, record.error
                    record = next(pending)
                if record.position != position:
                    raise RuntimeError(f"Ray returned position {position} where {record.position} was due.")
                yield record, None if error else result, error
        for record in pending:
            if record.error is None:
                raise RuntimeError(f"Ray returned no result for position {record.position}.")
            yield record, None, record.error


def _row_results(embedded: Any) -> Iterator[tuple[int, Any, str | None]]:
    """``(position, embedding, error)`` of each row Ray returns."""
    for batch in embedded.iter_batches(batch_format="pyarrow", batch_size=None):
        columns = (batch.column(name).to_pylist() for name in ("position", "embedding", "error"))
        for position, vector, error in zip(*columns, strict=True):
            yield position, None if error else np.asarray(vector, dtype=np.float32), error


def _segment_results(embedded: Any) -> Iterator[tuple[int, Any, str | None]]:
    """``(position, SourceSegments, error)`` of each record, from the rows of its segments Ray returns in order."""
    from lco_embedding.segments import SourceSegments

    def grouped() -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
        current: list[tuple[Any, ...]] = []
        for batch in embedded.iter_batches(batch_format="pyarrow", batch_size=None):
            names = ("position", "embedding", "error", "start", "end")
            for row in zip(*(batch.column(name).to_pylist() for name in names), strict=True):
                if current and current[0][0] != row[0]:
                    yield current[0][0], current
                    current = []
                current.append(row)
        if current:
            yield current[0][0], current

    for position, rows in grouped():
        kept = [row for row in rows if row[2] is None]
        if not kept:
            yield position, None, rows[0][2]
            continue
        places = [{"start": row[3], "end": row[4]} for row in kept]
        failed_pages = {int(row[3]): row[2] for row in rows if row[2] is not None}  # a document's failed pages
        yield position, SourceSegments.from_places(position, [row[1] for row in kept], places, "", failed_pages), None


def _describe(
    model: str, embedder_kwargs: dict[str, Any], prompt_name: str | None, prompt: str | None, use_audio_in_video: Any
) -> dict:
    from lco_embedding.corpus.description import describe_embedder
    from lco_embedding.embedder import LCOEmbedder

    return describe_embedder(LCOEmbedder(model, **embedder_kwargs), prompt_name, prompt, use_audio_in_video)
