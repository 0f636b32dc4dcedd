"""One search, as a value: the queries and everything that decides their hits, made and checked once by
:meth:`SearchRequest.make` and handed as one object to every store's own search and to the exact scan.

Also the part of a store's own search that every store shares: keeping only the rows a reader sees, of the wanted
modalities, best first (:meth:`SearchRequest.kept`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GROUP_BY", "Scored", "SearchRequest", "in_order"]

GROUP_BY = ("source", "id")
"""Columns a search may group its hits by (one hit per value)."""
Scored = list[tuple[float, int]]
"""One query's hits: ``(score, row)``, best first; equal scores: the lower row first."""


@dataclass(frozen=True)
class SearchRequest:
    """What a search asks of a store.

    Attributes:
        queries: ``[q, d]`` unit vectors (checked: finite, the store's dimension).
        k: Hits per query (at most the store's rows).
        exact: True: exact search; False: the store's approximate index; None: the index when it is current and
            can answer, else exact.
        modalities: Keep only rows of these modalities (None: all).
        where: A filter expression in the store's language (LanceDB's SQL, Milvus's boolean expressions).
        group_by: ``"source"`` or ``"id"``: the best row of each value, ``k`` values a query.
    """

    queries: np.ndarray
    k: int
    exact: bool | None = None
    modalities: frozenset[str] | None = None
    where: str | None = None
    group_by: str | None = None

    @classmethod
    def make(
        cls,
        queries: Any,
        k: int,
        *,
        dimension: int,
        rows: int,
        exact: bool | None = None,
        modalities: Iterable[str] | None = None,
        where: str | None = None,
        group_by: str | None = None,
    ) -> SearchRequest:
        """A checked request: the queries normalised, ``k`` cut to the ``rows`` there are.

        Raises:
            ValueError: ``k`` not a positive integer, a bad ``group_by``, a query that is not a finite vector, or
                one of another ``dimension`` than the store's.
        """
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}.")
        if group_by not in (None, *GROUP_BY):
            raise ValueError(f"group_by must be 'source', 'id' or None, got {group_by!r}.")
        given = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if given.ndim != 2:
            raise ValueError(f"queries must be one vector [d] or a matrix [q, d], got shape {given.shape}.")
        broken = np.flatnonzero(~np.isfinite(given).all(axis=1))
        if broken.size:
            raise ValueError(
                f"query {int(broken[0])} has a value that is not a finite number (NaN or infinity): embed the query "
                "again, or check the vector it came from."
            )
        if given.shape[1] != dimension:
            raise ValueError(
                f"the queries have {given.shape[1]} dimensions, the store's embeddings {dimension}: embed the queries "
                "with the store's model."
            )
        unit = given / np.maximum(np.linalg.norm(given, axis=1, keepdims=True), np.float32(1e-12))
        wanted = frozenset(modalities) if modalities else None
        return cls(unit, min(k, max(1, int(rows))), exact, wanted, where, group_by)

    def only(self, modality: str) -> SearchRequest:
        """The same request for the rows of one modality."""
        return dataclasses.replace(self, modalities=frozenset({modality}))

    def refuse_unindexed(self, indexed: bool, location: str) -> None:
        """Refuse an approximate search (``exact=False``) of a store without an index.

        Raises:
            ValueError: ``exact`` is False and ``indexed`` is not.
        """
        if self.exact is False and not indexed:
            raise ValueError(f"{location!r} has no current index: build it with lco-embed index.")

    def kept(self, rows: np.ndarray, scores: Any, modalities: list[Any], seen: Any) -> Scored:
        """One query's hits from a store's own search, kept as a reader sees them: rows ``seen`` keeps (committed,
        not dropped by an update: :class:`~lco_embedding.corpus.visibility.Visible`), of the wanted modalities,
        best first, ``k`` at most. The guard no filter string can widen."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = seen.keep(rows) if len(rows) else np.zeros(0, bool)
        hits = [
            (float(score), int(row))
            for row, score, modality, ok in zip(rows, scores, modalities, keep, strict=True)
            if ok and (not self.modalities or modality in self.modalities)
        ]
        return sorted(hits, key=lambda hit: (-hit[0], hit[1]))[: self.k]


def in_order(numbers: list[int], by_row: dict[int, Any], location: str) -> list[Any]:
    """The values of rows ``numbers`` in that order, from the rows a store returned keyed by number.

    Raises:
        IndexError: A row the store did not return.
    """
    missing = [n for n in numbers if n not in by_row]
    if missing:
        raise IndexError(f"rows {missing[:5]} are not in {location!r}.")
    return [by_row[n] for n in numbers]
