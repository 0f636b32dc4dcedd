"""A stream of segment outcomes regrouped by source: the segments of one source are delivered together, or the
source's error (the first of its segments' errors, naming the segment) and none of them. A document's pages stand
alone: a page that fails is recorded (``failed_pages``) and the other pages are kept."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np

from lco_embedding.core.memory import large_allocations_mapped
from lco_embedding.core.modalities import spec_of
from lco_embedding.core.outcomes import Outcome
from lco_embedding.inputs.documents import PDF
from lco_embedding.segments.context import CutContext
from lco_embedding.segments.result import SourceSegments, pages_problem
from lco_embedding.segments.spec import SegmentSpec
from lco_embedding.segments.split import Segment, split_item

__all__ = ["grouped_segments"]


def grouped_segments(
    items: Iterable[Any],
    spec: SegmentSpec,
    context: CutContext,
    embed: Callable[[Iterable[Any]], Iterator[Outcome]],
    *,
    map_large_allocations: bool = False,
) -> Iterator[SourceSegments]:
    """Cut ``items`` into segments (:func:`~lco_embedding.segments.split.split_item`), embed them all as one
    stream with ``embed`` (e.g. ``encode_outcomes``: segments are ordinary items to its planner), and yield each
    source's :class:`SourceSegments` in input order as its last segment is done.

    ``map_large_allocations``: while the stream runs, give arrays of 1 MiB or more their own mappings
    (:func:`~lco_embedding.core.memory.large_allocations_mapped`), so the resident size stays at what is alive, at the
    price of page faults on each (measured on 2 h of audio, tiny model: peak growth 350 -> 202 MB, 311 -> 3 MB kept
    afterwards, host time 6.5 -> 11.1 s). Worth it where memory is short and the forward pass dominates (CPU).
    """
    places: deque[Segment] = deque()

    def pieces() -> Iterator[Any]:
        for index, item in enumerate(items):
            for segment in split_item(index, item, spec, context):
                places.append(replace(segment, item=None))  # its place; the item may be megabytes
                yield segment.item

    rows: list[np.ndarray] = []
    kept: list[Segment] = []
    failed_pages: dict[int, str] = {}
    error = None
    with large_allocations_mapped(map_large_allocations):
        for outcome in embed(pieces()):
            place = places.popleft()
            if outcome.error is not None and _is_page(place):
                failed_pages[int(place.start)] = outcome.error.reason  # the document's other pages go on
            elif outcome.error is not None and error is None:
                where = "" if np.isnan(place.start) else f"segment {place.number} ({_span(place)}): "
                error = type(outcome.error)(where + outcome.error.reason, place.source)
            elif outcome.error is None:
                rows.append(outcome.embedding)
                kept.append(place)
            if place.last:
                if failed_pages and not kept and error is None:  # every page failed: the document did
                    error = type(outcome.error)(pages_problem(failed_pages), place.source)  # type: ignore[arg-type]
                yield _source(place, rows, kept, error, failed_pages)
                rows, kept, failed_pages, error = [], [], {}, None


def _is_page(place: Segment) -> bool:
    """A document's page (which fails alone), not the document's own failure (which has no page)."""
    return place.modality == PDF and not np.isnan(place.start)


def _span(place: Segment) -> str:
    if place.modality == PDF:
        return f"page {place.start:g}"
    unit = "characters" if spec_of(place.modality).window_unit == "tokens" else "s"
    return f"{place.start:g}-{place.end:g} {unit}"


def _source(
    last: Segment, rows: list[np.ndarray], kept: list[Segment], error: Any, failed_pages: dict[int, str]
) -> SourceSegments:
    def column(values: list[Any], dtype: Any) -> np.ndarray:
        return np.asarray(values, dtype=dtype)

    places = [] if error is not None else kept
    return SourceSegments(
        index=last.source,
        embeddings=None if error is not None else np.stack(rows),
        start=column([p.start for p in places], np.float64),
        end=column([p.end for p in places], np.float64),
        tokens=column([-1 if p.tokens is None else p.tokens for p in places], np.int64),
        modality=last.modality,
        error=error,
        failed_pages={} if error is not None else failed_pages,
    )
