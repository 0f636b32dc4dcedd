"""The shard being filled by a corpus job or an update: its records' rows, failures and catalog entries, as the
store commits them together (:meth:`lco_embedding.corpus.stores.Store.commit_shard`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from lco_embedding.corpus.input_plan import output_name
from lco_embedding.corpus.precision import Precision, to_arrow
from lco_embedding.corpus.records import Record
from lco_embedding.segments.result import PLACE_FIELDS

__all__ = ["SEGMENT_COLUMNS", "Shard", "fingerprinted", "write_outcomes"]

SEGMENT_COLUMNS = dict(zip(PLACE_FIELDS, ("int64", "double", "double"), strict=True))
"""The columns of a segmented run: each row's number within its record, and where it starts and ends."""


def fingerprinted(records: Iterable[Record]) -> Iterator[Record]:
    """The records, each with its catalog entry (:func:`lco_embedding.corpus.catalog.fingerprint`), taken before
    the model reads it."""
    from lco_embedding.corpus.catalog import Keys, fingerprint

    keys = Keys()
    for record in records:
        record.entry = fingerprint(record, keys(record.id))
        yield record


class Shard:
    """The rows and failures of the shard being filled."""

    def __init__(
        self, index: int, start: int, size: int, columns: dict[str, str], segmented: bool = False, row: int = 0
    ) -> None:
        self.index, self.start, self.end = index, start, start + size
        self.row = row  # the number of its first row
        self.columns = columns
        self.segmented = segmented
        self.entries: list[Any] = []
        self.places: dict[str, list[Any]] = {name: [] for name in SEGMENT_COLUMNS} if segmented else {}
        self.ids: list[str] = []
        self.sources: list[str] = []
        self.modalities: list[str] = []
        self.embeddings: list[np.ndarray] = []
        self.extras: dict[str, list[Any]] = {name: [] for name in columns}
        self.errors: list[dict[str, Any]] = []
        self.partial = 0  # failures of documents whose other pages have rows
        self.last = start - 1

    def add(self, record: Record, embedding: Any, reason: str | None) -> None:
        """Add a record's row (its embedding), its rows (its segments: a ``SourceSegments``) or its failure; a
        document some of whose pages failed gets both its rows and a failure naming those pages."""
        if record.position != self.last + 1:
            raise RuntimeError(f"record {record.position} arrived after {self.last}: the stream lost its order.")
        self.last = record.position
        if record.entry is not None:
            self.entries.append(record.entry)
        if embedding is None:
            entry = {"position": record.position, "id": record.id, "source": record.source}
            self.errors.append({**entry, "modality": record.modality, "error": reason})
            if record.entry is not None:
                record.entry.error = reason
            return
        rows = embedding.embeddings if self.segmented else [embedding]
        places = embedding.places() if self.segmented else []
        if record.entry is not None:
            record.entry.row, record.entry.rows = self.row + len(self.ids), len(rows)
        if self.segmented and embedding.failed_pages:  # a document embedded in part: its failed pages recorded
            self._pages_failed(record, embedding.failed_pages, embedding.pages_problem())
        for number, row in enumerate(rows):
            self.ids.append(record.id)
            self.sources.append(record.source)
            self.modalities.append(record.modality)
            self.embeddings.append(row)
            for name, values in self.extras.items():
                values.append(record.extras.get(name))
            for name, value in places[number].items() if self.segmented else ():
                self.places[name].append(value)

    def _pages_failed(self, record: Record, failed_pages: dict[int, str], reason: str) -> None:
        """Record a document's failed pages: one failure entry (naming them, ``pages`` listing them) beside its rows,
        and in its catalog entry."""
        entry = {"position": record.position, "id": record.id, "source": record.source}
        self.errors.append({**entry, "modality": record.modality, "error": reason, "pages": sorted(failed_pages)})
        self.partial += 1
        if record.entry is not None:
            record.entry.error = reason
            document = record.entry.document()
            if document is not None:
                document.failed = dict(failed_pages)
                record.entry.pages = document.to_json()

    @property
    def full(self) -> bool:
        return self.last + 1 >= self.end

    def entry(self) -> dict[str, Any]:
        """The shard's entry in the manifest: its positions, first row, rows and failures (``partial``: failures of
        documents that also have rows)."""
        entry = {"index": self.index, "start": self.start, "end": self.last + 1, "row": self.row}
        entry.update(rows=len(self.ids), failed=len(self.errors))
        if self.partial:
            entry["partial"] = self.partial
        return entry

    def catalog(self) -> Any:
        """The catalog entries of the shard's records (:mod:`.catalog`), or None when they were not fingerprinted."""
        from lco_embedding.corpus.catalog import entries_table

        return entries_table(self.entries) if self.entries else None

    def table(self, precision: Precision, dimension: int, ranges: list[list[float]] | None) -> Any:
        import pyarrow as pa

        vectors = np.stack(self.embeddings) if self.embeddings else np.zeros((0, dimension), np.float32)
        data = {
            "id": pa.array(self.ids, pa.string()),
            "source": pa.array(self.sources, pa.string()),
            "modality": pa.array(self.modalities, pa.string()),
            "embedding": to_arrow(vectors, precision, ranges),
        }
        for name, values in self.places.items():
            data[name] = _extra_array(values, SEGMENT_COLUMNS[name])
        for name, values in self.extras.items():
            data[output_name(name)] = _extra_array(values, self.columns[name])
        return pa.table(data)


_ARROW_KINDS = {"string": "string", "int64": "int64", "double": "float64", "bool": "bool_"}


def _extra_array(values: list[Any], kind: str) -> Any:
    import json

    import pyarrow as pa

    if kind == "json":
        text = [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in values]
        return pa.array(text, pa.string())
    return pa.array(values, getattr(pa, _ARROW_KINDS[kind])())


def write_outcomes(
    outcomes: Iterable[tuple[Record, Any, str | None]],
    current: Any,
    commit: Any,
    events: Any,
    on_failure: Any,
    bar: Any,
) -> None:
    """Add each ``(record, embedding, error)`` to the shard being filled (``current()``), calling ``events("record",
    n)`` after the n-th, ``on_failure`` with each failure's entry, and ``commit()`` whenever the shard is full; the
    last, partly filled shard is the caller's to commit."""
    for count, (record, embedding, reason) in enumerate(outcomes, 1):
        shard = current()
        shard.add(record, embedding, reason)
        events("record", count)
        if reason is not None and on_failure is not None:
            on_failure(shard.errors[-1])
        bar.update(1)
        if shard.full:
            commit()
