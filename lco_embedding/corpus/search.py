"""Search an output folder: exact cosine search over its shards, or an approximate usearch index.

The exact search reads one Parquet row group (4,096 rows) of memory-mapped shards at a time, scores it against
every query with one matrix product and keeps a running top k, so memory stays flat whatever the folder's size;
ties go to the earlier row. It is the default and the reference the index is checked against.

The approximate index is a usearch HNSW graph (``pip install 'lco-embedding[index]'``), chosen over faiss because
its wheel is small and has no BLAS/OpenMP of its own to clash with torch's, it stores vectors as float16 or int8
inside the index, its files are memory-mapped on load (``view=True``) so a search opens a large index without
reading it into memory, and its 64-bit keys are our row numbers. ``lco-embed index DIR`` builds it; a search uses
it only when it covers every committed row, and falls back to the exact search otherwise.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.core.modalities import MODALITY_TABLE
from lco_embedding.corpus.store import INDEX_FILE, OutputFolder

__all__ = ["Hit", "build_index", "index_is_current", "search_folder"]

logger = logging.getLogger(__name__)

INDEX_DTYPES = ("f32", "f16", "i8")


@dataclass
class Hit:
    """One search result.

    Attributes:
        rank: 1 for the best.
        score: Cosine similarity with the query (approximate for int8 and binary shards).
        row: Row number over all shards, from 0.
        id, source, modality: The row's columns.
        extra: The row's extra input columns.
        segment: In a segmented folder: the row's segment number within its source (else None).
        start, end: Where the segment lies in its source: seconds for audio and video, character offsets for text;
            None for an item embedded whole (and in folders without segments).
    """

    rank: int
    score: float
    row: int
    id: str
    source: str
    modality: str
    extra: dict[str, Any]
    segment: int | None = None
    start: float | None = None
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The hit as a JSON-ready dict."""
        return {
            "rank": self.rank,
            "score": self.score,
            "row": self.row,
            "id": self.id,
            "source": self.source,
            "modality": self.modality,
            **({"segment": self.segment, "start": self.start, "end": self.end} if self.segment is not None else {}),
            **({"extra": self.extra} if self.extra else {}),
        }

    @property
    def span(self) -> str:
        """Where the hit lies in its source, for people: ``1:30-2:00`` (audio, video), ``chars 324-704`` (text), or
        empty for a row that is a whole item."""
        if self.start is None or self.end is None:
            return ""
        row = MODALITY_TABLE.get(self.modality)  # type: ignore[call-overload]
        if row is not None and row.window_unit == "tokens":  # windows of a text: character offsets
            return f"chars {self.start:.0f}-{self.end:.0f}"
        return f"{_clock(self.start)}-{_clock(self.end)}"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = f"{seconds - whole:.1f}"[1:] if seconds != whole else ""
    return f"{hours}:{minutes:02d}:{secs:02d}{fraction}" if hours else f"{minutes}:{secs:02d}{fraction}"


def _normalize(queries: np.ndarray) -> np.ndarray:
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    return queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), np.float32(1e-12))


def _exact(
    folder: OutputFolder, queries: np.ndarray, k: int, modalities: set[str] | None, group_by: str | None = None
) -> list[list[tuple]]:
    """Running top k of every query: lists of ``(score, row)``, best first; with ``group_by``, the best row of
    each value of that column (e.g. each source file's best segment)."""
    if group_by is not None:
        return _exact_grouped(folder, queries, k, modalities, group_by)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    columns = ("modality",) if modalities else ()
    for first, vectors, extra in folder.iter_embeddings(columns):
        scores = queries @ vectors.T  # [queries, rows]
        rows = np.arange(first, first + len(vectors))
        if modalities:
            keep = np.fromiter((m in modalities for m in extra["modality"]), bool, len(vectors))
            scores, rows = scores[:, keep], rows[keep]
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
        # Best first; among equal scores the earlier row (rows are increasing along the merged axis).
        order = np.lexsort((merged_rows, -merged_scores), axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
    return [list(zip(s.tolist(), r.tolist(), strict=True)) for s, r in zip(best_scores, best_rows, strict=True)]


def _exact_grouped(
    folder: OutputFolder, queries: np.ndarray, k: int, modalities: set[str] | None, group_by: str
) -> list[list[tuple]]:
    best: list[dict[Any, tuple[float, int]]] = [{} for _ in queries]
    columns = (group_by, *(("modality",) if modalities else ()))
    for first, vectors, extra in folder.iter_embeddings(columns):
        scores = queries @ vectors.T
        keys = extra[group_by]
        keep = [i for i in range(len(vectors)) if not modalities or extra["modality"][i] in modalities]
        for query, row_scores in zip(best, scores, strict=True):
            for i in keep:
                score, row = float(row_scores[i]), first + i
                held = query.get(keys[i])
                if held is None or score > held[0]:  # the earlier row wins a tie
                    query[keys[i]] = (score, row)
    return [sorted(query.values(), key=lambda hit: (-hit[0], hit[1]))[:k] for query in best]


def index_is_current(folder: OutputFolder) -> bool:
    """True when the folder has an index that covers every committed row."""
    index = folder.manifest.get("index")
    return (
        bool(index)
        and index.get("rows") == folder.manifest["counts"]["embedded"]
        and (folder.path / index["file"]).is_file()
    )


def _approximate(folder: OutputFolder, queries: np.ndarray, k: int) -> list[list[tuple]]:
    from lco_embedding.core.require import require

    require("usearch", "index")
    from usearch.index import Index

    index = Index.restore(str(folder.path / folder.manifest["index"]["file"]), view=True)
    if len(index) == 0:
        return [[] for _ in queries]
    results = []
    for query in queries:
        matches = index.search(query, min(k, len(index)))
        results.append([(1.0 - float(d), int(key)) for key, d in zip(matches.keys, matches.distances, strict=True)])
    return results


def search_folder(
    path: str | os.PathLike[str],
    queries: np.ndarray,
    k: int = 10,
    *,
    exact: bool | None = None,
    modalities: set[str] | None = None,
    group_by: str | None = None,
) -> list[list[Hit]]:
    """The ``k`` rows of an output folder most similar to each query.

    Args:
        path: An ``lco-embed encode`` output folder.
        queries: ``[d]`` or ``[q, d]`` query embeddings (normalised here).
        k: Hits per query.
        exact: True: exact search; False: the index (error if it is missing or stale); None (default): the index
            when it is current and no modality filter is given, else exact.
        modalities: Keep only rows of these modalities (``text``, ``image``, ``audio``, ``video``, ``mixed``).
        group_by: ``"source"`` (or ``"id"``): the best row of each source file (of a segmented folder: each file's
            best segment), ``k`` sources in all; searches exactly.

    Returns:
        One list of :class:`Hit` per query, best first.

    Raises:
        ValueError: Bad ``k``, a query of the wrong dimension, or ``exact=False`` without a current index.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}.")
    folder = OutputFolder(path)
    manifest = folder.manifest
    queries = _normalize(queries)
    if queries.shape[1] != manifest["dimension"]:
        raise ValueError(
            f"the queries have {queries.shape[1]} dimensions, the folder's embeddings {manifest['dimension']}: "
            "embed the queries with the folder's model."
        )
    current = index_is_current(folder)
    if exact is False and not current:
        raise ValueError(f"{str(folder.path)!r} has no current index: build it with lco-embed index.")
    if group_by not in (None, "source", "id"):
        raise ValueError(f"group_by must be 'source', 'id' or None, got {group_by!r}.")
    if exact is False and (modalities or group_by):
        raise ValueError("a modality filter or grouping needs the exact search.")
    use_index = exact is False or (exact is None and current and not modalities and not group_by)
    if exact is None and manifest.get("index") and not current:
        logger.warning("The index does not cover every row (re-run lco-embed index); searching exactly instead.")
    found = _approximate(folder, queries, k) if use_index else _exact(folder, queries, k, modalities, group_by)
    wanted = sorted({row for hits in found for _, row in hits})
    rows = dict(zip(wanted, folder.rows(wanted), strict=True)) if wanted else {}
    results = []
    for hits in found:
        results.append([_hit(rank, score, row, rows[row]) for rank, (score, row) in enumerate(hits, 1)])
    return results


def _hit(rank: int, score: float, row: int, values: dict[str, Any]) -> Hit:
    fixed = ("id", "source", "modality", "segment", "start", "end")
    extra = {key: value for key, value in values.items() if key not in fixed}
    place = {name: values.get(name) for name in ("segment", "start", "end")}
    return Hit(rank, float(score), row, values["id"], values["source"], values["modality"], extra, **place)


def build_index(
    path: str | os.PathLike[str],
    *,
    dtype: str = "f16",
    connectivity: int | None = None,
    show_progress_bar: bool = False,
) -> Path:
    """Build ``DIR/index.usearch`` over every committed row and record it in the manifest.

    Args:
        path: An output folder.
        dtype: How the index stores vectors: ``f32``, ``f16`` (default: half the memory, same ranking to ~1e-3) or
            ``i8``.
        connectivity: HNSW graph degree (usearch's default when None); higher is more accurate and larger.
        show_progress_bar: Show a progress bar over the rows.

    Returns:
        The index file.
    """
    from lco_embedding.core.require import require

    require("usearch", "index")
    from usearch.index import Index

    if dtype not in INDEX_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(INDEX_DTYPES)}, got {dtype!r}.")
    folder = OutputFolder(path)
    folder.lock()
    try:
        return _build(folder, Index, dtype, connectivity, show_progress_bar)
    finally:
        folder.unlock()


def _build(folder: OutputFolder, index_class: Any, dtype: str, connectivity: int | None, show: bool) -> Path:
    from tqdm.auto import tqdm

    manifest = folder.manifest
    if manifest["status"] != "complete":
        logger.warning("%s is not complete yet: the index covers the rows committed so far.", folder.path)
    kwargs = {"connectivity": connectivity} if connectivity else {}
    index = index_class(ndim=manifest["dimension"], metric="cos", dtype=dtype, **kwargs)
    rows = manifest["counts"]["embedded"]
    with tqdm(total=rows, unit="row", desc="Indexing", disable=not show) as bar:
        for first, vectors, _ in folder.iter_embeddings():
            index.add(np.arange(first, first + len(vectors), dtype=np.uint64), vectors)
            bar.update(len(vectors))
    target = folder.path / INDEX_FILE
    temporary = folder.path / f".{INDEX_FILE}.tmp"
    index.save(str(temporary))
    os.replace(temporary, target)
    manifest["index"] = {"file": INDEX_FILE, "rows": len(index), "dtype": dtype, "metric": "cos", **kwargs}
    folder.write_manifest(manifest)
    return target
