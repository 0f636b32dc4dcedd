"""What a corpus job embeds: its planned inputs (:mod:`~.input_plan`) turned into one ordered stream of records.

:func:`iter_records` yields one :class:`Record` per item, numbered from 0 across all inputs in a fixed order, so
that a resumed run can skip exactly the positions already written.

Tables have columns ``text``/``image``/``audio``/``video`` (several filled in one row = one mixed item) and an
optional ``id``; every other column is carried to the output. Media values are paths (relative to the table's
folder), ``file://`` paths, http(s) URLs, data URIs, raw bytes (Parquet) or Hugging Face datasets' ``{"bytes":
..., "path": ...}`` structs. Empty or null cells are absent.

Does not read stdin twice: a resumed run must be given the same lines again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lco_embedding.core.files import file_problem, local_file
from lco_embedding.core.modalities import DOCUMENT_KEYS, MODALITIES, PDF, is_text, item_modality, page_modalities
from lco_embedding.corpus.input_plan import TABLE_FORMATS, InputSpec, file_modality, walk
from lco_embedding.corpus.table_rows import parquet_rows, record_id, text_rows
from lco_embedding.inputs.budgets import AUDIO_IN_VIDEO, ITEM_BUDGETS

__all__ = [
    "ITEM_SETTINGS",
    "UNKNOWN",
    "Record",
    "file_record",
    "iter_records",
    "not_taken_reason",
    "records_of",
    "row_item",
]


@dataclass
class Record:
    """One item of the stream.

    Attributes:
        position: Its place in the whole job, from 0.
        id: The table's ``id`` value, else a name made from where it came from.
        source: Where it came from: a file's absolute path, ``<table>:<row>`` or ``stdin:<line>``.
        modality: ``text``, ``image``, ``audio``, ``video`` or ``mixed``.
        item: What ``LCOEmbedder.encode`` gets, or None when ``error`` is set.
        error: Why the record cannot be embedded (malformed row, unreadable text file), else None.
        extras: Extra table columns.
        file: The file it is (for a folder's or a file input's record), else None.
        entry: Its catalog entry (:class:`lco_embedding.corpus.catalog.Entry`), once the job has fingerprinted it.
    """

    position: int
    id: str
    source: str
    modality: str
    item: Any = None
    error: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    entry: Any = None


def iter_records(specs: list[InputSpec], *, start: int = 0, stdin: IO[str] | None = None) -> Iterator[Record]:
    """Yield the records of ``specs`` in order, from position ``start`` on.

    Earlier positions are skipped unread where possible: no media is opened, no JSON parsed, and whole inputs
    and Parquet row groups before ``start`` are passed over by their counts.
    """
    position = 0
    for spec in specs:
        if spec.items is not None and position + spec.items <= start:
            position += spec.items
            continue
        for entry in records_of(spec, position, max(0, start - position), stdin or sys.stdin):
            if isinstance(entry, int):
                position += entry
            else:
                yield entry
                position += 1


def records_of(spec: InputSpec, first: int, skip: int, stdin: IO[str]) -> Iterator[Record | int]:
    """The input's records from its ``skip``-th on; skipped positions come as counts (ints)."""
    if spec.kind == "folder":
        yield from _folder_records(spec, first, skip)
    elif spec.kind == "file":
        yield 1 if skip else file_record(first, spec.argument, spec.path or spec.argument)
    elif spec.kind == "stdin":
        yield from _stdin_records(stdin, first, skip)
    else:
        yield from _table_records(spec, first, skip)


def file_record(position: int, display: str, path: str) -> Record:
    """The record of one file (a folder's or a file input's): its item, or why it cannot be read."""
    modality = file_modality(path) or UNKNOWN
    record = Record(position, display, os.path.abspath(path), modality, file=os.path.abspath(path))
    problem = file_problem(path)  # a FIFO would block, a dangling link or a folder has nothing to read
    if modality == UNKNOWN:
        record.error = not_taken_reason(path)
    elif problem is not None:
        record.error = problem
    elif modality != PDF and is_text(modality):  # a PDF is a container of pages (the job cuts it into them)
        try:
            with open(path, encoding="utf-8") as f:
                record.item = {"text": f.read()}
        except (OSError, UnicodeDecodeError) as e:
            record.error = f"cannot read the text file as UTF-8 ({type(e).__name__}: {e})."
    else:
        record.item = {modality: record.source}
    return record


UNKNOWN = "unknown"
"""The modality recorded for a folder's file that no modality reads (it fails with :func:`not_taken_reason`)."""


def not_taken_reason(path: str) -> str:
    """Why a folder's file is not embedded: no modality reads its type."""
    extension = os.path.splitext(path)[1].lower()
    kind = f"{extension} files" if extension else "files without an extension"
    if extension in TABLE_FORMATS:
        return f"a table inside a folder is not read: give {os.path.basename(path)!r} as an input of its own."
    return (
        f"not taken: no modality reads {kind} (lco-embed reads text, image, audio, video and PDF files: "
        "`lco-embed encode --help` lists the extensions); convert it, or keep it out of the folder."
    )


def _folder_records(spec: InputSpec, first: int, skip: int) -> Iterator[Record | int]:
    root = spec.path or spec.argument
    number = 0
    for relative, _ in walk(Path(root)):
        number += 1
        if number <= skip:
            yield 1
        else:
            yield file_record(first + number - 1, os.path.join(spec.argument, relative), os.path.join(root, relative))


def _stdin_records(stdin: IO[str], first: int, skip: int) -> Iterator[Record | int]:
    for number, line in enumerate(stdin, 1):
        if number <= skip:
            yield 1
            continue
        name = f"stdin:{number}"
        yield Record(first + number - 1, name, name, "text", item={"text": line.rstrip("\r\n")})


def _table_records(spec: InputSpec, first: int, skip: int) -> Iterator[Record | int]:
    assert spec.path is not None
    rows = parquet_rows(spec.path, skip) if spec.format == "parquet" else text_rows(spec.path, spec.format, skip)
    folder = os.path.dirname(spec.path)
    position = first + skip
    for line, row, problem in rows:  # the line number names the row everywhere (Parquet: the row number)
        if row is None:
            yield 1  # skipped
            continue
        source = f"{spec.path}:{line}"
        default_id = f"{spec.argument}:{line}"
        if problem is not None:
            yield Record(position, default_id, source, "text", error=problem)
        else:
            yield _row_record(position, row, source, default_id, folder, spec.columns)
        position += 1


def _row_record(
    position: int, row: dict[str, Any], source: str, default_id: str, folder: str, columns: dict[str, str]
) -> Record:
    item, modality, error = row_item(row, folder)
    extras = {name: row.get(name) for name in columns}
    return Record(
        position, record_id(row.get("id"), default_id), source, modality, item=item, error=error, extras=extras
    )


def row_item(
    row: Mapping[str, Any], folder: str | None = None, columns: Mapping[str, str] | None = None
) -> tuple[dict[str, Any] | None, str, str | None]:
    """The ``encode`` item of a table row: ``(item, modality, None)``, or ``(None, modality, reason)``.

    Args:
        row: The row's values by column.
        folder: Relative media paths are resolved against it (None: used as they are).
        columns: Modality -> column name (default: the columns named ``text``, ``image``, ``audio``, ``video``).

    Several filled columns make one mixed item (``modality="mixed"``); empty strings and nulls are absent. A
    ``pdf`` column with a ``page`` column is a page of that PDF (:mod:`lco_embedding.inputs.documents`: its image,
    ``modality="image"``, mixed with the row's other content; ``pdf_text`` and ``pdf_password`` columns apply).
    """
    content: dict[str, Any] = {}
    problems = []
    for modality in MODALITIES:
        value = row.get(columns.get(modality, "") if columns is not None else modality)
        if value is None or (isinstance(value, str) and value == ""):
            continue
        if is_text(modality):
            content[modality] = value
            continue
        value, problem = _media_value(value, folder, modality)
        if problem:
            problems.append(problem)
        content[modality] = value
    document = row.get(PDF)
    if document is not None and document != "":  # a page of a PDF: its image (and the row's other content)
        value, problem = _media_value(document, folder, PDF)
        if problem:
            problems.append(problem)
        content[PDF] = value
        for key in DOCUMENT_KEYS[1:]:
            setting = _setting_value(row.get(key))
            if setting is not None:
                content[key] = setting
    if not content:
        return None, "text", "the row has no text, image, audio, video or pdf value."
    modality = item_modality([*content, *page_modalities(content)])
    if problems:
        return None, modality, " ".join(problems)
    for key in ITEM_SETTINGS:  # the row's own media settings, as a dict item carries them
        value = _setting_value(row.get(key))
        if value is not None:
            content[key] = value
    return content, modality, None


ITEM_SETTINGS = (*ITEM_BUDGETS, AUDIO_IN_VIDEO)
"""Columns that hold a row's own media settings (``fps``, ``max_frames``, ``min_pixels``, ``max_pixels``,
``use_audio_in_video``): applied to the row's item, checked as ``encode`` checks a dict item's."""


def _setting_value(value: Any) -> Any:
    """A setting cell: None when empty; a CSV's text as the number or boolean it spells (the embedder checks it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return value
    text = value.strip()
    words = {"true": True, "false": False, "auto": "auto"}
    if text.lower() in words:
        return words[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return value


def _media_value(value: Any, folder: str | None, modality: str) -> tuple[Any, str | None]:
    """Resolve a table's media cell: relative paths against ``folder``; datasets' structs to bytes or a path."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        value = value.get("bytes") or value.get("path")
        if value is None:
            return None, f"the {modality} cell has neither bytes nor a path."
    if isinstance(value, bytes | bytearray):
        return bytes(value), None
    if not isinstance(value, str):
        return value, None  # the embedder names what is wrong with it
    if value.startswith(("http://", "https://", "data:")):
        return value, None
    given = local_file(value)
    path = os.path.join(folder, given) if folder else given  # an absolute path stays as it is
    problem = file_problem(path)
    if problem is not None:
        where = f" Relative paths are resolved against {folder!r}." if folder and not os.path.isabs(given) else ""
        return path, f"{modality} {problem}{where}"
    return path, None
