"""Search a corpus in any store (a Parquet folder, LanceDB, Milvus): the exact cosine scan, the store's own search
and index, modality-aware ranking.

The exact scan reads one batch of rows at a time (a Parquet row group of 4,096 rows; a store's scan batches),
scores it against every query with one matrix product and keeps a running top k, so memory stays flat whatever the
corpus's size; ties go to the lower row number. A store's own search (LanceDB's and Milvus's vector search, a
folder's usearch index) is used where it gives the same answer or where an index was built and asked for; grouping
by source on LanceDB, and every search of a Parquet folder without a current index, use the scan.

``calibrate`` ranks by per-modality standardised scores (:mod:`.calibration`): the scan standardises as it goes;
a store's own search runs once per modality and the lists are merged (standardising is increasing within a
modality, so each modality's top k holds every row of the merged top k).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import MODALITY_TABLE, PDF, ROW_MODALITIES
from lco_embedding.corpus.calibration import (
    compute_calibration,
    cosine_of,
    is_current,
    standardised,
    statistics_for,
)
from lco_embedding.corpus.search_request import GROUP_BY, Scored, SearchRequest
from lco_embedding.corpus.stores import SearchableStore, open_store
from lco_embedding.segments.result import PLACE_FIELDS

if TYPE_CHECKING:
    from lco_embedding.rerank import LCOReranker

__all__ = ["GROUP_BY", "Hit", "SearchRequest", "build_index", "rerank_hits", "search_folder", "search_per_modality"]

logger = logging.getLogger(__name__)


@dataclass
class Hit:
    """One search result.

    Attributes:
        rank: 1 for the best.
        score: What the hits are ranked by: the cosine similarity with the query (approximate for int8 and binary
            shards), or with ``calibrate`` the row's standardised score (:mod:`lco_embedding.corpus.calibration`).
        row: The row's number, from 0.
        id, source, modality: The row's columns.
        extra: The row's extra input columns.
        segment: In a segmented corpus: the row's segment number within its source (else None).
        start, end: Where the segment lies in its source: seconds for audio and video, character offsets for text;
            None for an item embedded whole (and in corpora without segments).
        cosine: The cosine similarity with the query (equal to ``score`` without ``calibrate``).
        rerank_score: With a reranker (``search_folder(rerank=...)``): its score of the query and the row's
            content, which the hits are then ranked by; None without one, or for a hit it could not read (those
            come after the reranked hits, in their first-stage order).
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
    cosine: float | None = None
    rerank_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The hit as a JSON-ready dict."""
        return {
            "rank": self.rank,
            "score": self.score,
            **({"cosine": self.cosine} if self.cosine is not None and self.cosine != self.score else {}),
            **({"rerank_score": self.rerank_score} if self.rerank_score is not None else {}),
            "row": self.row,
            "id": self.id,
            "source": self.source,
            "modality": self.modality,
            **({"segment": self.segment, "start": self.start, "end": self.end} if self.segment is not None else {}),
            **({"extra": self.extra} if self.extra else {}),
        }

    @property
    def span(self) -> str:
        """Where the hit lies in its source, for people: ``1:30-2:00`` (audio, video), ``chars 324-704`` (text),
        ``page 12`` (a PDF's page), or empty for a row that is a whole item."""
        if self.start is None or self.end is None:
            return ""
        if self.modality == PDF:
            return f"page {self.start:.0f}"
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


# ------------------------------------------------------------------------------------------------- the exact scan
Adjust = Callable[[np.ndarray, list[str]], np.ndarray]
"""Scores of a batch's rows (one query's) and their modalities -> the scores they are ranked by."""


def _scan(store: SearchableStore, request: SearchRequest, adjust: Adjust | None = None) -> list[Scored]:
    """Running top k of every query over the store's rows (of the request's modalities, matching its filter)."""
    queries, k, modalities = request.queries, request.k, request.modalities
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float64)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    columns = ("modality",) if modalities or adjust else ()
    for rows, vectors, extra in store.iter_embeddings(columns, request.where):
        keep = _kept(extra, modalities, len(rows))
        scores = (queries @ _unit(vectors[keep]).T).astype(np.float64)  # [queries, rows]
        rows = rows[keep]
        if adjust is not None:
            kept_modalities = [m for m, ok in zip(extra["modality"], keep, strict=True) if ok]
            scores = np.stack([adjust(row_scores, kept_modalities) for row_scores in scores]) if len(rows) else scores
        merged_scores = np.concatenate([best_scores, scores], axis=1)
        merged_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
        order = np.lexsort((merged_rows, -merged_scores), axis=1)[:, :k]  # best first; equal scores: lower row
        best_scores = np.take_along_axis(merged_scores, order, axis=1)
        best_rows = np.take_along_axis(merged_rows, order, axis=1)
    return [list(zip(s.tolist(), r.tolist(), strict=True)) for s, r in zip(best_scores, best_rows, strict=True)]


def _scan_grouped(store: SearchableStore, request: SearchRequest, adjust: Adjust | None = None) -> list[Scored]:
    """The best row of each value of the request's ``group_by`` (e.g. each source file's best segment), ``k`` values
    a query."""
    group_by, modalities = str(request.group_by), request.modalities
    best: list[dict[Any, tuple[float, int]]] = [{} for _ in request.queries]
    columns = (group_by, *(("modality",) if modalities or adjust else ()))
    for rows, vectors, extra in store.iter_embeddings(columns, request.where):
        keep = _kept(extra, modalities, len(rows))
        scores = (request.queries @ _unit(vectors[keep]).T).astype(np.float64)
        kept_rows = rows[keep].tolist()
        keys = [key for key, ok in zip(extra[group_by], keep, strict=True) if ok]
        if adjust is not None and kept_rows:
            kept_modalities = [m for m, ok in zip(extra["modality"], keep, strict=True) if ok]
            scores = np.stack([adjust(row_scores, kept_modalities) for row_scores in scores])
        for query, row_scores in zip(best, scores, strict=True):
            for key, row, score in zip(keys, kept_rows, row_scores.tolist(), strict=True):
                held = query.get(key)
                if held is None or score > held[0] or (score == held[0] and row < held[1]):
                    query[key] = (score, row)
    return [sorted(query.values(), key=lambda hit: (-hit[0], hit[1]))[: request.k] for query in best]


def _kept(extra: dict[str, list], modalities: frozenset[str] | None, count: int) -> np.ndarray:
    if not modalities:
        return np.ones(count, dtype=bool)
    return np.fromiter((m in modalities for m in extra["modality"]), bool, count)


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows as unit vectors (a corpus stored without normalisation is still searched by cosine)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.float32(1e-12))


def _raw(store: SearchableStore, request: SearchRequest, adjust: Adjust | None = None) -> list[Scored]:
    """Hits: the store's own search where it answers (cosines), else the exact scan (scores ``adjust``-ed)."""
    native = store.nearest(request) if adjust is None else None
    if native is not None:
        return native
    return (_scan if request.group_by is None else _scan_grouped)(store, request, adjust)


# ------------------------------------------------------------------------------------------------------ search
def search_folder(
    path: str | os.PathLike[str],
    queries: np.ndarray,
    k: int = 10,
    *,
    exact: bool | None = None,
    modalities: set[str] | None = None,
    group_by: str | None = None,
    where: str | None = None,
    calibrate: bool = False,
    query_modality: str = "text",
    rerank: LCOReranker | None = None,
    query_items: Any = None,
    rerank_k: int = 50,
) -> list[list[Hit]]:
    """The ``k`` rows of an output folder or store most similar to each query; with ``rerank``, the first
    ``rerank_k`` (at least ``k``) reranked and the best ``k`` of those.

    Args:
        path: An ``lco-embed encode`` output folder, or a store (``lancedb://...``, ``milvus://...``).
        queries: ``[d]`` or ``[q, d]`` query embeddings (normalised here).
        k: Hits per query.
        exact: True: exact search; False: the store's approximate index (a folder: error if it is missing or stale);
            None (default): the index when it is current and can answer, else exact.
        modalities: Keep only rows of these modalities (``text``, ``image``, ``audio``, ``video``, ``mixed``).
        group_by: ``"source"`` (or ``"id"``): the best row of each source file (of a segmented corpus: each file's
            best segment), ``k`` sources in all.
        where: A filter expression in the store's language (LanceDB's SQL, Milvus's boolean expressions), e.g.
            ``"year >= 2020"``; not for Parquet folders.
        calibrate: Rank by per-modality standardised scores (:mod:`lco_embedding.corpus.calibration`), from the
            statistics ``lco-embed index`` records (computed now, not saved, when they are missing or stale).
        query_modality: The modality of the queries (``calibrate`` standardises by it).
        rerank: A second stage (:class:`~lco_embedding.LCOReranker`): each candidate's content is read back from its
            source (:mod:`.hit_items`) and scored with its query; hits get ``rerank_score`` and are ranked by it.
        query_items: With ``rerank``: the query item of each query (what the reranker reads; one item for one
            query).
        rerank_k: With ``rerank``: how many first-stage hits it reads per query.

    Returns:
        One list of :class:`Hit` per query, best first.

    Raises:
        ValueError: Bad ``k``, a query of the wrong dimension, a bad ``group_by``, ``where`` on a Parquet folder,
            or ``exact=False`` without a current index.
    """
    wanted = k
    if rerank is not None:
        query_items = _query_items(queries, query_items)
        if isinstance(rerank_k, bool) or not isinstance(rerank_k, int) or rerank_k < 1:
            raise ValueError(f"rerank_k must be a positive integer, got {rerank_k!r}.")
        wanted = max(k, rerank_k)
    store = open_store(path)
    try:
        request = _request(store, queries, wanted, exact=exact, modalities=modalities, where=where, group_by=group_by)
        found = _search(store, request, calibrate, query_modality)
    finally:
        store.close()
    if rerank is None:
        return found
    return [rerank_hits(rerank, query, hits, k) for query, hits in zip(query_items, found, strict=True)]


def _query_items(queries: np.ndarray, items: Any) -> list[Any]:
    """One query item per query vector (a single item for one query)."""
    count = 1 if np.asarray(queries).ndim == 1 else len(queries)
    listed = [items] if count == 1 and not isinstance(items, list) else items
    if items is None or not isinstance(listed, list) or len(listed) != count:
        raise ValueError(f"rerank needs the query items the reranker reads: query_items, one per query ({count}).")
    return listed


def rerank_hits(reranker: LCOReranker, query: Any, hits: list[Hit], k: int) -> list[Hit]:
    """``hits`` of ``query`` reranked (see :func:`search_folder`'s ``rerank``): the best ``k`` by ``rerank_score``,
    then the hits the reranker could not read, in their order, with a warning that names them."""
    from lco_embedding.core.errors import EncodeReport
    from lco_embedding.corpus.hit_items import hit_items

    items = hit_items(hits)
    readable = [i for i, item in enumerate(items) if not isinstance(item, LCOInputError)]
    report = EncodeReport()
    scores = reranker.predict([(query, items[i]) for i in readable], on_error="skip", report=report)
    unread = {i: str(item) for i, item in enumerate(items) if isinstance(item, LCOInputError)}
    unread.update({readable[at]: why for at, why in report.errors.items()})
    scored = sorted(((float(s), i) for s, i in zip(scores, readable, strict=True) if not np.isnan(s)),
                    key=lambda pair: (-pair[0], pair[1]))  # fmt: skip
    if unread:
        named = "; ".join(f"{hits[i].id}: {why}" for i, why in sorted(unread.items())[:5])
        logger.warning("The reranker could not read %d hit(s); they follow the reranked ones: %s", len(unread), named)
    order = [(score, i) for score, i in scored] + [(None, i) for i in sorted(unread)]
    return [dataclasses.replace(hits[i], rank=rank, rerank_score=score) for rank, (score, i) in enumerate(order[:k], 1)]


def _request(store: SearchableStore, queries: np.ndarray, k: int, **options: Any) -> SearchRequest:
    """The checked request for ``store`` (its dimension and rows)."""
    manifest = store.manifest
    return SearchRequest.make(
        queries, k, dimension=manifest["dimension"], rows=manifest["counts"]["embedded"], **options
    )


def _search(store: SearchableStore, request: SearchRequest, calibrate: bool, query_modality: str) -> list[list[Hit]]:
    if not calibrate:
        return _hits(store, _raw(store, request))
    calibration = _calibration(store)
    statistics = {
        modality: statistics_for(calibration, query_modality, modality) for modality in calibration["modalities"]
    }

    def adjust(scores: np.ndarray, row_modalities: list[str]) -> np.ndarray:
        mean_std = np.array([statistics.get(m, (0.0, 1.0)) for m in row_modalities], dtype=np.float64).reshape(-1, 2)
        return standardised(scores, mean_std[:, 0], mean_std[:, 1])

    wanted = request.modalities or frozenset(calibration["modalities"])
    if _native_answers(store, request.group_by):
        merged: list[list[tuple[float, int, float]]] = [[] for _ in request.queries]
        for modality in sorted(wanted):
            mean, std = statistics.get(modality, (0.0, 1.0))
            for query, hits in zip(merged, _raw(store, request.only(modality)), strict=True):
                query += [(standardised(score, mean, std), row, score) for score, row in hits]
        found = [sorted(query, key=lambda hit: (-hit[0], hit[1]))[: request.k] for query in merged]
        return _hits(store, [[(z, row) for z, row, _ in query] for query in found], cosines=found)
    scored = _raw(store, dataclasses.replace(request, modalities=wanted), adjust)
    return _hits(store, scored, statistics=statistics)


def search_per_modality(
    path: str | os.PathLike[str],
    queries: np.ndarray,
    k: int = 5,
    *,
    exact: bool | None = None,
    modalities: set[str] | None = None,
    group_by: str | None = None,
    where: str | None = None,
) -> list[dict[str, list[Hit]]]:
    """The ``k`` best rows of each modality for each query (``{modality: hits}``, modalities in table order):
    the side-by-side view that no modality gap can distort. Arguments as :func:`search_folder`'s."""
    store = open_store(path)
    try:
        request = _request(store, queries, k, exact=exact, modalities=modalities, where=where, group_by=group_by)
        results: list[dict[str, list[Hit]]] = [{} for _ in request.queries]
        for modality in _modalities(store):
            if request.modalities and modality not in request.modalities:
                continue
            for query, hits in zip(results, _hits(store, _raw(store, request.only(modality))), strict=True):
                query[modality] = hits
        return results
    finally:
        store.close()


def _native_answers(store: SearchableStore, group_by: str | None) -> bool:
    """True when a store's own search answers a per-modality query (LanceDB and Milvus; not a folder)."""
    return store.capabilities.native_search and (group_by is None or store.capabilities.native_group_by)


def _modalities(store: SearchableStore) -> list[str]:
    """The modalities the store's rows have, in the modality table's order (``mixed`` last)."""
    recorded = store.manifest.get("calibration")
    found = set(recorded["modalities"]) if is_current(recorded, store.manifest) else _distinct(store)
    order = list(ROW_MODALITIES)
    return sorted(found, key=lambda m: order.index(m) if m in order else len(order))


def _distinct(store: SearchableStore) -> set[str]:
    found: set[str] = set()
    for _, _, extra in store.iter_embeddings(("modality",)):
        found.update(extra["modality"])
    return found


def _calibration(store: SearchableStore) -> dict[str, Any]:
    """The store's recorded calibration if it covers every row, else one computed now (not saved)."""
    manifest = store.manifest
    recorded = manifest.get("calibration")
    if is_current(recorded, manifest):
        return recorded
    logger.info(
        "%s has no current calibration (lco-embed index records one); computing it for this search.", store.location
    )
    return compute_calibration(store)


def _hits(
    store: SearchableStore,
    found: list[Scored],
    cosines: list[list[tuple[float, int, float]]] | None = None,
    statistics: dict[str, tuple[float, float]] | None = None,
) -> list[list[Hit]]:
    wanted = sorted({row for hits in found for _, row in hits})
    rows = dict(zip(wanted, store.rows(wanted), strict=True)) if wanted else {}
    results = []
    for number, hits in enumerate(found):
        listed = []
        for rank, (score, row) in enumerate(hits, 1):
            values = rows[row]
            if cosines is not None:
                cosine = cosines[number][rank - 1][2]
            elif statistics is not None:
                mean, std = statistics.get(values["modality"], (0.0, 1.0))
                cosine = cosine_of(score, mean, std)
            else:
                cosine = score
            listed.append(_hit(rank, score, row, values, cosine))
        results.append(listed)
    return results


def _hit(rank: int, score: float, row: int, values: dict[str, Any], cosine: float) -> Hit:
    fixed = ("row", "id", "source", "modality", *PLACE_FIELDS)
    extra = {key: value for key, value in values.items() if key not in fixed}
    place = {name: values.get(name) for name in PLACE_FIELDS}
    return Hit(
        rank, float(score), row, values["id"], values["source"], values["modality"], extra, **place, cosine=cosine
    )


# ------------------------------------------------------------------------------------------------------- index
def build_index(
    path: str | os.PathLike[str],
    *,
    dtype: str = "f16",
    connectivity: int | None = None,
    show_progress_bar: bool = False,
) -> dict[str, Any]:
    """Build the store's approximate index over every committed row and record it, with the per-modality
    calibration (:mod:`lco_embedding.corpus.calibration`), in the manifest.

    Args:
        path: An output folder or a store.
        dtype: A folder's usearch index stores vectors as ``f32``, ``f16`` (default: half the memory, same ranking
            to ~1e-3) or ``i8``.
        connectivity: HNSW graph degree (usearch's or Milvus's default when None); higher is more accurate and
            larger.
        show_progress_bar: Show a progress bar over the rows.

    Returns:
        The manifest's ``index`` entry (what was built: ``file`` for a folder, ``type`` for LanceDB and Milvus,
        ``rows``).
    """
    store = open_store(path)
    store.lock()
    try:
        manifest = store.manifest
        if manifest["status"] != "complete":
            logger.warning("%s is not complete yet: the index covers the rows committed so far.", store.location)
        entry = store.build_index(dtype=dtype, connectivity=connectivity, show_progress_bar=show_progress_bar)
        manifest = store.manifest
        manifest["index"] = entry
        manifest["calibration"] = compute_calibration(store)
        store.write_manifest(manifest)
        return entry
    finally:
        store.close()
