"""Which rows and failures of a store a reader sees: the committed ones, less those an update replaced or deleted.

A fresh run commits rows numbered densely from 0 and failures by input position. An update in place
(:mod:`lco_embedding.corpus.update`) never rewrites what is committed: its new rows get the next row numbers and
its records the next positions, and the rows and failures it replaces or deletes are *dropped*, listed in the
manifest as ranges. One manifest write commits both at once, so a reader sees the store before the update or after
it, never half of it::

    manifest["rows"]       = {"next": 1250, "dropped": [[3, 1], [40, 5]]}   # rows below next, less the dropped
    manifest["positions"]  = {"next": 1010, "dropped": [[3, 1], [38, 1]]}   # the same for records and failures

Manifests without these entries (every store before its first update) commit ``counts["embedded"]`` rows and
``counts["done"]`` positions, and drop none. Every reader applies :meth:`Visible.keep` to what it reads, whatever
the store's own query returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Visible", "add_ranges", "ranges_of", "visible", "written"]


def _expand(ranges: list[list[int]]) -> np.ndarray:
    if not ranges:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(start, start + count, dtype=np.int64) for start, count in ranges])


def ranges_of(numbers: Any) -> list[list[int]]:
    """Sorted numbers as ``[[start, count], ...]`` runs."""
    values = np.unique(np.asarray(list(numbers), dtype=np.int64))
    if not values.size:
        return []
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    return [[int(run[0]), int(run.size)] for run in np.split(values, breaks)]


def add_ranges(ranges: list[list[int]], numbers: Any) -> list[list[int]]:
    """``ranges`` with ``numbers`` added (merged into runs)."""
    return ranges_of(np.concatenate([_expand(ranges), np.asarray(list(numbers), dtype=np.int64)]))


@dataclass(frozen=True)
class Visible:
    """The committed part of a store (see the module).

    Attributes:
        next_row: Rows numbered below this are committed (unless dropped); rows at or past it are uncommitted.
        dropped_rows: Committed rows an update dropped, sorted.
        next_position: The same for records and their failures.
        dropped_positions: Committed positions an update dropped, sorted.
    """

    next_row: int
    dropped_rows: np.ndarray
    next_position: int
    dropped_positions: np.ndarray

    def keep(self, rows: np.ndarray) -> np.ndarray:
        """Which of ``rows`` a reader sees."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = rows < self.next_row
        if self.dropped_rows.size:
            keep &= ~np.isin(rows, self.dropped_rows)
        return keep

    def keeps_position(self, position: int) -> bool:
        """True when the record (or failure) at ``position`` is seen."""
        if position >= self.next_position:
            return False
        if not self.dropped_positions.size:
            return True
        at = int(np.searchsorted(self.dropped_positions, position))
        return not (at < self.dropped_positions.size and self.dropped_positions[at] == position)

    @property
    def hidden_rows(self) -> int:
        """Committed row numbers a reader does not see (the dropped ones)."""
        return int(self.dropped_rows.size)

    @property
    def token(self) -> Any:
        """What changes whenever the rows a reader sees change (an index or a calibration records it): the number
        of committed rows for a store never updated, as recorded before updates existed, else
        ``"next_row/dropped rows"``."""
        if not self.updated:
            return self.next_row
        return f"{self.next_row}/{self.dropped_rows.size}"

    updated: bool = False
    """True once an update in place has been committed."""


def visible(manifest: dict[str, Any]) -> Visible:
    """What a reader of the store with ``manifest`` sees."""
    counts = manifest["counts"]
    rows = manifest.get("rows") or {}
    positions = manifest.get("positions") or {}
    return Visible(
        next_row=int(rows.get("next", counts["embedded"])),
        dropped_rows=_expand(rows.get("dropped", [])),
        next_position=int(positions.get("next", counts["done"])),
        dropped_positions=_expand(positions.get("dropped", [])),
        updated="rows" in manifest,
    )


def written(manifest: dict[str, Any]) -> tuple[int, int]:
    """``(rows, positions)`` numbered below these are committed, visible or staged by an update in progress: what a
    resumed run keeps (anything numbered past them was written after the last commit)."""
    update = manifest.get("update")
    if update:
        return int(update["next_row"]), int(update["next_position"])
    seen = visible(manifest)
    return seen.next_row, seen.next_position
