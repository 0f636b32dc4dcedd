"""Scale-out on Ray Data: :func:`embed_dataset`, and the Ray side of ``lco-embed encode --ray``.

Both run ``map_batches`` with a callable class, :class:`EmbedBatch`, so that each actor loads the model once and
embeds batch after batch; Ray Data streams the blocks, applies back-pressure, and re-runs the tasks of an actor
that dies (a task's output is kept only when the whole task succeeds, so every row comes out exactly once).

``pip install 'lco-embedding[ray]'``. On a cluster, every worker must be able to read the media: shared storage,
URLs, or bytes in the dataset.

Does not choose the number of actors for you on :func:`embed_dataset`: give ``concurrency`` (and
``num_gpus_per_worker`` on GPUs).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lco_embedding.core.modalities import MODALITIES
from lco_embedding.core.outcomes import check_on_error
from lco_embedding.core.require import require
from lco_embedding.corpus.job_options import CorpusOptions, ModelSpec
from lco_embedding.corpus.records import Record, row_item
from lco_embedding.segments.spec import SegmentSpec

__all__ = ["EmbedBatch", "RayJob", "RayOptions", "RayRunner", "embed_dataset"]


# ------------------------------------------------------------------------------------------- reading items
@dataclass
class ColumnItems:
    """Builds items from columns named by modality (several filled in a row = one mixed item).

    Attributes:
        columns: Modality -> column name.
        folder: Relative media paths are resolved against it.
    """

    columns: dict[str, str]
    folder: str | None = None

    def __call__(self, batch: Any) -> list[tuple[Any, str | None]]:
        rows = batch.select(list(self.columns.values())).to_pylist()
        return [(item, error) for item, _, error in (row_item(row, self.folder, self.columns) for row in rows)]


@dataclass
class PickledItems:
    """Reads items that the driver built and pickled into one binary column (``lco-embed encode --ray``)."""

    column: str = "item"

    def __call__(self, batch: Any) -> list[tuple[Any, str | None]]:
        return [(pickle.loads(value), None) for value in batch.column(self.column).to_pylist()]


# ----------------------------------------------------------------------------------------------- the actor
class EmbedBatch:
    """The callable class of ``map_batches``: one :class:`LCOEmbedder` per actor, loaded in ``__init__``.

    Each call embeds one batch (a ``pyarrow.Table``) and returns it with two more columns: ``output_column``
    (``fixed_size_list<float>[d]``, null for a failed row) and ``error_column`` (null, or why the row failed).

    Args:
        model: Hub id or folder.
        embedder_kwargs: ``LCOEmbedder`` arguments (device, dtype, settings, ...).
        read: Turns a batch into ``(item, error)`` pairs (:class:`ColumnItems` or :class:`PickledItems`).
        output_column, error_column: Names of the columns added.
        on_error: ``"skip"``: bad rows get an error and no embedding; ``"raise"``: the task fails.
        encode_kwargs: The pipeline's options (``encode``'s keywords: prompt, normalize_embeddings, ...).
        segment: Cut each row's long media or text into segments (:class:`~lco_embedding.segments.SegmentSpec`):
            a row becomes one row per segment, with ``segment``, ``start`` and ``end`` columns (a failed row stays
            one row, with its error).
    """

    def __init__(
        self,
        model: str,
        embedder_kwargs: dict[str, Any],
        read: ColumnItems | PickledItems,
        output_column: str,
        error_column: str,
        on_error: str,
        encode_kwargs: dict[str, Any],
        segment: SegmentSpec | None = None,
    ) -> None:
        from lco_embedding.embedder import LCOEmbedder

        self.embedder = LCOEmbedder(model, **embedder_kwargs)
        self.segment = segment
        self.read, self.on_error, self.encode_kwargs = read, on_error, encode_kwargs
        self.output_column, self.error_column = output_column, error_column

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from lco_embedding.core.errors import EncodeReport, LCOInputError
        from lco_embedding.core.outcomes import Outcome, apply_on_error

        prepared = self.read(batch)
        errors = [error for _, error in prepared]
        unread = [Outcome(i, None, LCOInputError(error, i)) for i, error in enumerate(errors) if error]
        list(apply_on_error(unread, self.on_error))  # rows that could not be read: raised, or kept with their error
        wanted = [i for i, error in enumerate(errors) if error is None]
        dimension = self.encode_kwargs.get("truncate_dim") or self.embedder.get_embedding_dimension()
        if self.segment is not None:
            return self._segments(batch, prepared, errors, wanted, dimension)
        values = np.zeros((len(prepared), dimension), dtype=np.float32)
        report = EncodeReport()
        pipeline = self.embedder.pipeline(**self.encode_kwargs)
        for outcome in apply_on_error(pipeline.outcomes([prepared[i][0] for i in wanted]), self.on_error, report):
            values[wanted[outcome.index]] = outcome.embedding
        for index, reason in report.errors.items():
            errors[wanted[index]] = reason
        failed = np.array([error is not None for error in errors], dtype=bool)
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dimension, mask=pa.array(failed))
        return batch.append_column(self.output_column, column).append_column(
            self.error_column, pa.array(errors, pa.string())
        )

    def _segments(
        self,
        batch: Any,
        prepared: list[tuple[Any, str | None]],
        errors: list[str | None],
        wanted: list[int],
        dimension: int,
    ) -> Any:
        """The batch with a row per segment of each row (a failed row once, with its error)."""
        import pyarrow as pa

        from lco_embedding.core.outcomes import Outcome, apply_on_error

        found: dict[int, Any] = {}
        items = [prepared[i][0] for i in wanted]
        pipeline = self.embedder.pipeline(segment=self.segment, **self.encode_kwargs)
        for part in pipeline.segment_outcomes(items):
            if part.error is not None:  # raised, or kept as the row's error
                list(apply_on_error([Outcome(part.index, None, part.error)], self.on_error))
            found[wanted[part.index]] = part
        take: list[int] = []
        vectors: list[np.ndarray] = []
        numbers: list[int | None] = []
        starts: list[float | None] = []
        ends: list[float | None] = []
        reasons: list[str | None] = []
        for row in range(len(prepared)):
            part = found.get(row)
            if part is None or part.error is not None:
                take.append(row)
                vectors.append(np.zeros(dimension, np.float32))
                for column in (numbers, starts, ends):
                    column.append(None)
                reasons.append(errors[row] if part is None else part.error.reason)
                continue
            for number, place in enumerate(part.places()):
                take.append(row)
                vectors.append(part.embeddings[number])
                numbers.append(place["segment"])
                starts.append(place["start"])
                ends.append(place["end"])
                reasons.append(None)
        values = np.stack(vectors) if vectors else np.zeros((0, dimension), np.float32)
        failed = pa.array([reason is not None for reason in reasons], pa.bool_())
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dimension, mask=failed)
        table = batch.take(pa.array(take, pa.int64()))
        for name, values_ in (
            (self.output_column, column),
            (self.error_column, pa.array(reasons, pa.string())),
            ("segment", pa.array(numbers, pa.int64())),
            ("start", pa.array(starts, pa.float64())),
            ("end", pa.array(ends, pa.float64())),
        ):
            table = table.append_column(name, values_)
        return table


def _compute(concurrency: int | tuple[int, int]) -> Any:
    import ray.data

    if isinstance(concurrency, tuple):
        return ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    return ray.data.ActorPoolStrategy(size=concurrency)


def _worker_kwargs(embedder_kwargs: dict[str, Any] | None, num_gpus: float) -> dict[str, Any]:
    kwargs = dict(embedder_kwargs or {})
    kwargs.setdefault("device", "cuda" if num_gpus > 0 else "cpu")
    return kwargs


def _resolve_columns(names: Sequence[str], columns: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    if columns is None:
        found = {m: m for m in MODALITIES if m in names}
    elif isinstance(columns, Mapping):
        found = dict(columns)
    else:
        found = {m: m for m in columns}
    unknown = sorted(set(found) - set(MODALITIES))
    missing = sorted(c for c in found.values() if c not in names)
    if unknown or missing or not found:
        raise ValueError(
            f"columns must map modalities ({', '.join(MODALITIES)}) to columns of the dataset ({', '.join(names)}); "
            f"got {columns!r}"
            + (f" (unknown modalities {unknown})" if unknown else "")
            + (f" (no such columns {missing})" if missing else "")
            + "."
        )
    return found


# ------------------------------------------------------------------------------------------- embed_dataset
def embed_dataset(
    ds: Any,
    model: str,
    *,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    output_column: str = "embedding",
    error_column: str = "error",
    batch_size: int = 256,
    concurrency: int | tuple[int, int] = 1,
    num_gpus_per_worker: float = 0.0,
    num_cpus_per_worker: float | None = None,
    on_error: Literal["skip", "raise"] = "skip",
    base_dir: str | os.PathLike[str] | None = None,
    embedder_kwargs: dict[str, Any] | None = None,
    segment: SegmentSpec | None = None,
    **encode_kwargs: Any,
) -> Any:
    """Add embeddings to a Ray dataset: ``map_batches`` over actors that each load ``model`` once.

    Args:
        ds: A ``ray.data.Dataset`` with columns of text, or of media as paths, URLs, data URIs or bytes.
        model: Hub id or folder of the checkpoint (each actor loads it).
        columns: Which columns hold what: a list of modality-named columns, or ``{"image": "path", "text":
            "caption"}``; several in a row make one mixed item. Default: the columns named ``text``, ``image``,
            ``audio``, ``video``.
        output_column: The embeddings, ``fixed_size_list<float>[d]``, null for a failed row.
        error_column: Null, or why the row failed (its embedding is then null).
        batch_size: Rows handed to an actor per call; inside a call, forward passes are planned by tokens.
        concurrency: Actors (an int), or ``(min, max)`` for an autoscaling pool.
        num_gpus_per_worker: GPUs per actor (fractions share a GPU); > 0 puts the model on ``cuda``.
        num_cpus_per_worker: CPUs per actor (Ray's default: 1).
        on_error: ``"skip"`` (default): bad rows are kept with an error and no embedding; ``"raise"``: the job
            fails on the first bad row.
        base_dir: Relative media paths are resolved against it (default: this process's working folder; Ray's
            workers run elsewhere).
        embedder_kwargs: ``LCOEmbedder`` arguments (dtype, settings, prompts, ...); ``device`` defaults to
            ``cuda`` with GPUs, else ``cpu``.
        segment: Cut long media and text into segments (:class:`~lco_embedding.segments.SegmentSpec`): one output
            row per segment (the row's other columns repeated), with ``segment``, ``start`` and ``end`` columns
            (seconds for audio and video, character offsets for text, null for a row embedded whole).
        **encode_kwargs: Passed to ``encode`` (``prompt``, ``prompt_name``, ``normalize_embeddings``,
            ``max_tokens_per_batch``, ``use_audio_in_video``, ...; ``forward_batch_size`` is ``encode``'s
            ``batch_size``).

    Returns:
        The lazy dataset with both columns added; rows keep their other columns (ids included). Ray Data does
        not keep the order of rows across blocks unless ``DataContext.get_current().execution_options
        .preserve_order = True``.

    Raises:
        ValueError: Unknown columns, or output column names already taken.
    """
    require("ray.data", "ray")
    if not isinstance(model, str | os.PathLike):
        raise TypeError(
            f"model must be a hub id or folder (each Ray actor loads it), got {type(model).__name__}; pass "
            "model.model_name_or_path for a loaded LCOEmbedder."
        )
    check_on_error(on_error)
    if "forward_batch_size" in encode_kwargs:  # batch_size is taken: rows per actor call
        encode_kwargs["batch_size"] = encode_kwargs.pop("forward_batch_size")
    names = list(ds.schema().names)
    added = {output_column, error_column} | ({"segment", "start", "end"} if segment is not None else set())
    taken = sorted(added & set(names))
    if taken:
        raise ValueError(
            f"the dataset already has columns {taken}; choose other output_column / error_column (segment= adds "
            "segment, start and end)."
        )
    read = ColumnItems(_resolve_columns(names, columns), os.path.abspath(base_dir or os.getcwd()))
    return ds.map_batches(
        EmbedBatch,
        fn_constructor_kwargs={
            "model": str(model),
            "embedder_kwargs": _worker_kwargs(embedder_kwargs, num_gpus_per_worker),
            "read": read,
            "output_column": output_column,
            "error_column": error_column,
            "on_error": on_error,
            "encode_kwargs": encode_kwargs,
            "segment": segment,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=_compute(concurrency),
        num_gpus=num_gpus_per_worker or None,
        num_cpus=num_cpus_per_worker,
    )


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
        self.embedder_kwargs = _worker_kwargs(embedder_kwargs, gpus)

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
                compute=_compute(self.workers),
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
        error = rows[0][2]
        if error is not None:
            yield position, None, error
            continue
        places = [{"start": row[3], "end": row[4]} for row in rows]
        yield position, SourceSegments.from_places(position, [row[1] for row in rows], places), None


def _describe(
    model: str, embedder_kwargs: dict[str, Any], prompt_name: str | None, prompt: str | None, use_audio_in_video: Any
) -> dict:
    from lco_embedding.corpus.description import describe_embedder
    from lco_embedding.embedder import LCOEmbedder

    return describe_embedder(LCOEmbedder(model, **embedder_kwargs), prompt_name, prompt, use_audio_in_video)
