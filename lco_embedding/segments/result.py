"""Embedded segments: one source's (:class:`SourceSegments`, as a stream yields them) and a call's
(:class:`Segments`, rows of every source in input order)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lco_embedding.core.errors import ItemError

__all__ = ["PLACE_FIELDS", "Segments", "SourceSegments", "pages_problem", "segment_place"]

PLACE_FIELDS = ("segment", "start", "end")
"""What says where a segment row is in its source: its number, its start and its end (the corpus columns, the
server's fields)."""


def segment_place(number: int, start: float, end: float) -> dict[str, int | float | None]:
    """A segment row's place as rows, columns and JSON carry it: ``{"segment", "start", "end"}``, with ``None`` for
    the NaN of an item embedded whole. The one place this conversion is written.

    Example:
        >>> segment_place(1, 10.0, float("nan"))
        {'segment': 1, 'start': 10.0, 'end': None}
    """
    return {
        "segment": int(number),
        "start": None if np.isnan(start) else float(start),
        "end": None if np.isnan(end) else float(end),
    }


def pages_problem(failed_pages: dict[int, str]) -> str | None:
    """Failed pages (page -> why) in one sentence, each naming its page; None for none.

    Example:
        >>> pages_problem({2: "page 2 cannot be loaded", 5: "too large", 6: "too large"})
        'page 2 cannot be loaded; pages 5, 6: too large'
    """
    if not failed_pages:
        return None
    pages_of: dict[str, list[int]] = {}
    for page, why in sorted(failed_pages.items()):
        pages_of.setdefault(why, []).append(page)
    said = []
    for why, pages in pages_of.items():
        if len(pages) == 1:
            said.append(why if why.startswith(f"page {pages[0]} ") else f"page {pages[0]}: {why}")
        else:
            said.append(f"pages {', '.join(map(str, pages))}: {why}")
    return "; ".join(said)


@dataclass
class SourceSegments:
    """The segments of one source item, embedded together (or its error: then none of them is kept).

    Attributes:
        index: The source's position in the call.
        embeddings: ``[segments, d]`` (None when the source failed).
        start: Each segment's start: seconds (audio, video), character offset (text), NaN (a whole item).
        end: Each segment's end (exclusive), in the same unit.
        tokens: Text windows' token counts (-1 for other segments).
        modality: The source's modality (what ``start`` and ``end`` count: seconds for audio and video,
            characters for text).
        error: Why the source failed, or None.
        failed_pages: A document's pages that failed while its other pages were embedded: page number -> why. A
            page stands alone, so one that does not render costs only itself; a document whose every page fails
            has ``error`` instead.
    """

    index: int
    embeddings: np.ndarray | None
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    modality: str
    error: ItemError | None = None
    failed_pages: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the source was embedded (some of a document's pages may have failed: ``failed_pages``)."""
        return self.error is None

    def pages_problem(self) -> str | None:
        """The failed pages in one sentence (``"page 2 cannot be loaded (...); page 5: ..."``), or None."""
        return pages_problem(self.failed_pages)

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def from_places(
        cls,
        index: int,
        embeddings: np.ndarray,
        places: Iterable[dict[str, Any]],
        modality: str = "",
        failed_pages: dict[int, str] | None = None,
    ) -> SourceSegments:
        """The segments of stored rows (their embeddings and :func:`segment_place` values, ``None`` for NaN), and
        the pages that failed beside them."""
        rows = list(places)
        nan = float("nan")
        return cls(
            index=index,
            embeddings=np.asarray(embeddings, dtype=np.float32),
            start=np.array([nan if p.get("start") is None else p["start"] for p in rows], dtype=np.float64),
            end=np.array([nan if p.get("end") is None else p["end"] for p in rows], dtype=np.float64),
            tokens=np.full(len(rows), -1, np.int64),
            modality=modality,
            failed_pages=dict(failed_pages or {}),
        )

    def places(self) -> list[dict[str, int | float | None]]:
        """Each segment's :func:`segment_place`, in order."""
        return [segment_place(n, start, end) for n, (start, end) in enumerate(zip(self.start, self.end, strict=True))]


@dataclass
class Segments:
    """Segment embeddings of one or more source items, in input order and segment order.

    Attributes:
        embeddings: ``[n, d]`` float32 rows.
        source: ``[n]``: the position of each row's source item in the call.
        segment: ``[n]``: each row's number within its source (0, 1, ...).
        start: ``[n]``: seconds for audio and video, character offsets for text, NaN for items embedded whole.
        end: ``[n]``: where each segment ends (exclusive), in the same unit.
        tokens: ``[n]``: the tokens of text windows, -1 for other rows.
        modality: ``[n]``: each row's source modality (``"audio"``, ``"video"``, ``"text"``, ``"image"``, ...).
        errors: Source position -> why it failed, for sources skipped with ``on_error="skip"``.
        failed_pages: Source position -> the pages of a document that failed while its other pages were kept
            (``on_error="skip"``), in one sentence naming each page.
    """

    embeddings: np.ndarray
    source: np.ndarray
    segment: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    modality: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    failed_pages: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.source)

    def of(self, source: int) -> Segments:
        """The rows of one source item."""
        rows = self.source == source
        return Segments(
            self.embeddings[rows],
            self.source[rows],
            self.segment[rows],
            self.start[rows],
            self.end[rows],
            self.tokens[rows],
            self.modality[rows],
            {source: self.errors[source]} if source in self.errors else {},
            {source: self.failed_pages[source]} if source in self.failed_pages else {},
        )

    @classmethod
    def collect(cls, parts: Iterable[SourceSegments], dimension: int) -> Segments:
        """One table of the sources' segments (failed sources listed in ``errors``)."""
        kept: list[SourceSegments] = []
        errors: dict[int, str] = {}
        failed_pages: dict[int, str] = {}
        for part in parts:
            if part.error is None:
                kept.append(part)
                if part.failed_pages:
                    failed_pages[part.index] = part.pages_problem()  # type: ignore[assignment]
            else:
                errors[part.index] = part.error.reason
        if not kept:
            empty = np.zeros(0)
            return cls(np.zeros((0, dimension), np.float32), empty.astype(np.int64), empty.astype(np.int64),
                       empty, empty, empty.astype(np.int64), empty.astype(str), errors, failed_pages)  # fmt: skip
        assert all(part.embeddings is not None for part in kept)
        return cls(
            np.concatenate([part.embeddings for part in kept]),  # type: ignore[misc]
            np.concatenate([np.full(len(part), part.index, np.int64) for part in kept]),
            np.concatenate([np.arange(len(part), dtype=np.int64) for part in kept]),
            np.concatenate([part.start for part in kept]),
            np.concatenate([part.end for part in kept]),
            np.concatenate([part.tokens for part in kept]),
            np.concatenate([np.full(len(part), part.modality) for part in kept]),
            errors,
            failed_pages,
        )
