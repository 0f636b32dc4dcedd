"""Embedded segments: one source's (:class:`SourceSegments`, as a stream yields them) and a call's
(:class:`Segments`, rows of every source in input order)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lco_embedding.core.errors import ItemError

__all__ = ["PLACE_FIELDS", "Segments", "SourceSegments", "segment_place"]

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
    """

    index: int
    embeddings: np.ndarray | None
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    modality: str
    error: ItemError | None = None

    @property
    def ok(self) -> bool:
        """True when every segment was embedded."""
        return self.error is None

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def from_places(
        cls, index: int, embeddings: np.ndarray, places: Iterable[dict[str, Any]], modality: str = ""
    ) -> SourceSegments:
        """The segments of stored rows (their embeddings and :func:`segment_place` values, ``None`` for NaN)."""
        rows = list(places)
        nan = float("nan")
        return cls(
            index=index,
            embeddings=np.asarray(embeddings, dtype=np.float32),
            start=np.array([nan if p.get("start") is None else p["start"] for p in rows], dtype=np.float64),
            end=np.array([nan if p.get("end") is None else p["end"] for p in rows], dtype=np.float64),
            tokens=np.full(len(rows), -1, np.int64),
            modality=modality,
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
    """

    embeddings: np.ndarray
    source: np.ndarray
    segment: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    modality: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)

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
        )

    @classmethod
    def collect(cls, parts: Iterable[SourceSegments], dimension: int) -> Segments:
        """One table of the sources' segments (failed sources listed in ``errors``)."""
        kept: list[SourceSegments] = []
        errors: dict[int, str] = {}
        for part in parts:
            if part.error is None:
                kept.append(part)
            else:
                errors[part.index] = part.error.reason
        if not kept:
            empty = np.zeros(0)
            return cls(np.zeros((0, dimension), np.float32), empty.astype(np.int64), empty.astype(np.int64),
                       empty, empty, empty.astype(np.int64), empty.astype(str), errors)  # fmt: skip
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
        )
