"""Ray Data: :func:`embed_dataset` over a dataset's columns, with :class:`EmbedBatch`, the callable class each actor
runs (the model loaded once per actor, batch after batch). See :mod:`lco_embedding.distributed`."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lco_embedding.core.modalities import MODALITIES
from lco_embedding.core.outcomes import check_on_error
from lco_embedding.core.require import require
from lco_embedding.corpus.records import row_item
from lco_embedding.segments.spec import SegmentSpec

__all__ = ["ColumnItems", "EmbedBatch", "PickledItems", "compute_strategy", "embed_dataset", "worker_kwargs"]


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
        """The batch with a row per segment of each row (a failed row once, with its error; a document's failed
        page once each, after its other pages, with its error and its page as ``start`` and ``end``)."""
        import pyarrow as pa

        from lco_embedding.core.errors import LCOInputError
        from lco_embedding.core.outcomes import Outcome, apply_on_error
        from lco_embedding.segments.result import pages_problem

        found: dict[int, Any] = {}
        items = [prepared[i][0] for i in wanted]
        pipeline = self.embedder.pipeline(segment=self.segment, **self.encode_kwargs)
        for part in pipeline.segment_outcomes(items):
            if part.error is not None:  # raised, or kept as the row's error
                list(apply_on_error([Outcome(part.index, None, part.error)], self.on_error))
            elif part.failed_pages:  # raised, or kept as the failed pages' rows
                problem = LCOInputError(part.pages_problem() or "", part.index)
                list(apply_on_error([Outcome(part.index, None, problem)], self.on_error))
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
            for page, why in part.failed_pages.items():  # after its pages' rows: a row per failed page
                take.append(row)
                vectors.append(np.zeros(dimension, np.float32))
                numbers.append(None)
                starts.append(float(page))
                ends.append(float(page))
                reasons.append(pages_problem({page: why}))
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


def compute_strategy(concurrency: int | tuple[int, int]) -> Any:
    import ray.data

    if isinstance(concurrency, tuple):
        return ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    return ray.data.ActorPoolStrategy(size=concurrency)


def worker_kwargs(embedder_kwargs: dict[str, Any] | None, num_gpus: float) -> dict[str, Any]:
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
            "embedder_kwargs": worker_kwargs(embedder_kwargs, num_gpus_per_worker),
            "read": read,
            "output_column": output_column,
            "error_column": error_column,
            "on_error": on_error,
            "encode_kwargs": encode_kwargs,
            "segment": segment,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=compute_strategy(concurrency),
        num_gpus=num_gpus_per_worker or None,
        num_cpus=num_cpus_per_worker,
    )
