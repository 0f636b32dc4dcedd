"""What a search hit's row stands for, read back from its source, for a second stage (a reranker) to read: a store
keeps vectors and where each row came from, not the content.

* a folder's or a file input's file: the file's item (a text file's text), and of a segmented corpus the row's
  segment: a PDF's page, a text's characters ``start:end``, an audio's seconds ``start-end``;
* a table's row (``source`` is ``table:line``, a Parquet table's row number): the row's item, read again;
* a window of a video and a line of stdin cannot be read back: they are errors that say so.

A source that changed since it was embedded gives its content now.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import MODALITY_TABLE, PDF
from lco_embedding.corpus.input_plan import TABLE_FORMATS
from lco_embedding.corpus.records import file_record, row_item
from lco_embedding.corpus.table_rows import parquet_rows, text_rows

__all__ = ["hit_items"]

_RATE = 16000
"""The sampling rate an audio window is read at (the models' feature extractors')."""


def hit_items(hits: list[Any]) -> list[Any]:
    """Each hit's item, or the :class:`~lco_embedding.LCOInputError` that says why it cannot be read back (see the
    module); a table is read once for all its hits."""
    rows = _table_rows(hits)
    found: list[Any] = []
    for hit in hits:
        try:
            found.append(_item(hit, rows))
        except LCOInputError as e:
            found.append(e)
    return found


def _item(hit: Any, rows: dict[tuple[str, int], Any]) -> Any:
    source = hit.source
    table = _table_place(source)
    if table is not None:
        if table not in rows:
            raise LCOInputError(f"row {table[1]} of {table[0]!r} is no longer in the table.")
        item, _, problem = row_item(rows[table], os.path.dirname(table[0]))
        if problem is not None:
            raise LCOInputError(problem)
        return item
    if not os.path.isfile(source):
        raise LCOInputError(f"{source!r} cannot be read back (not a file now: moved, deleted, or a line of stdin).")
    record = file_record(0, hit.id, source)
    if record.error is not None:
        raise LCOInputError(record.error)
    if hit.start is None:
        return record.item
    if hit.modality == PDF:
        return {PDF: source, "page": int(hit.start)}
    row = MODALITY_TABLE.get(hit.modality)  # type: ignore[call-overload]
    if row is not None and row.window_unit == "tokens":  # a text window: its characters
        return {hit.modality: record.item[hit.modality][int(hit.start) : int(hit.end)]}
    if row is not None and row.sound == "item":  # an audio window: its seconds
        from lco_embedding.preprocessing.stream import audio_windows

        (window,) = audio_windows(source, spans=[(hit.start, hit.end)], sampling_rate=_RATE)
        return {hit.modality: {"array": window.samples, "sampling_rate": _RATE}}
    raise LCOInputError(
        f"a window of a {hit.modality} ({hit.span} of {source!r}) cannot be read back; rerank whole items."
    )


def _table_place(source: str) -> tuple[str, int] | None:
    """``(table path, line)`` of a table row's source, or None."""
    path, _, line = source.rpartition(":")
    if not line.isdigit() or os.path.splitext(path)[1].lower() not in TABLE_FORMATS or not os.path.isfile(path):
        return None
    return path, int(line)


def _table_rows(hits: list[Any]) -> dict[tuple[str, int], Any]:
    """The rows the hits name, each table read once."""
    wanted: dict[str, set[int]] = {}
    for hit in hits:
        place = _table_place(hit.source)
        if place is not None:
            wanted.setdefault(place[0], set()).add(place[1])
    rows: dict[tuple[str, int], Any] = {}
    for path, lines in wanted.items():
        for line, row, problem in _rows(path):
            if line in lines and row is not None and problem is None:
                rows[(path, line)] = row
    return rows


def _rows(path: str) -> Iterator[tuple[int, Any, str | None]]:
    kind = TABLE_FORMATS[os.path.splitext(path)[1].lower()]
    return parquet_rows(path, 0) if kind == "parquet" else text_rows(path, kind, 0)
