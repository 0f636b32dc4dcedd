"""What a corpus job reads: files, folders, tables and stdin turned into one ordered stream of records.

:func:`plan_inputs` looks at every input once before any embedding (counts for the progress bar, the extra
columns of tables, a fingerprint that tells a resumed run whether its inputs changed); :func:`iter_records`
then yields one :class:`Record` per item, numbered from 0 across all inputs in a fixed order, so that a resumed
run can skip exactly the positions already written.

Modality from the extension (folders and files given directly):

=========  =============================================================
text       .txt .md (the whole file is one text item, UTF-8)
image      .jpg .jpeg .png .gif .bmp .tiff .tif .webp .avif .jfif
audio      .mp3 .wav .ogg .flac .aac .m4a .opus .aiff .aif
video      .mp4 .avi .mov .wmv .flv .mkv .webm .m4v .mpg .mpeg .3gp
table      .jsonl .ndjson .csv .tsv .parquet (only as an input of its own)
=========  =============================================================

Folders are walked recursively in sorted order; hidden files and folders (``.name``), tables and files with
other extensions are not embedded, and are counted in the plan as ignored. Symbolic links to folders are not
followed.

Tables have columns ``text``/``image``/``audio``/``video`` (several filled in one row = one mixed item) and an
optional ``id``; every other column is carried to the output. Media values are paths (relative to the table's
folder), ``file://`` paths, http(s) URLs, data URIs, raw bytes (Parquet) or Hugging Face datasets' ``{"bytes":
..., "path": ...}`` structs. Empty or null cells are absent.

Does not read stdin twice: a resumed run must be given the same lines again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from lco_embedding.core.files import file_problem, local_file
from lco_embedding.core.modalities import MODALITIES, MODALITY_TABLE, TEXT, is_text
from lco_embedding.corpus.catalog import stat_of
from lco_embedding.inputs.budgets import AUDIO_IN_VIDEO, ITEM_BUDGETS

__all__ = [
    "TEXT_EXTENSIONS",
    "TABLE_FORMATS",
    "OUTPUT_COLUMNS",
    "InputSpec",
    "Record",
    "duplicate_ids",
    "extra_columns",
    "file_modality",
    "output_name",
    "plan_inputs",
    "iter_records",
    "record_id",
]

TEXT_EXTENSIONS = (".txt", ".md")
TABLE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}
"""Table file extension -> format."""
OUTPUT_COLUMNS = ("id", "source", "modality", "embedding")
"""The columns every output shard has; extra input columns follow."""
_FILE_MODALITIES = {
    **{ext: "text" for ext in TEXT_EXTENSIONS},
    **{ext: name for name, spec in MODALITY_TABLE.items() for ext in spec.extensions},
}
_ITEM_COLUMNS = ("id", *MODALITIES)
_CSV_FIELD_LIMIT = 1 << 30

InputKind = Literal["folder", "table", "file", "stdin"]


def file_modality(path: str | Path) -> str | None:
    """The modality of a file from its extension (see the module's table), or None."""
    return _FILE_MODALITIES.get(os.path.splitext(str(path))[1].lower())


@dataclass
class InputSpec:
    """One input of a job, resolved by :func:`plan_inputs`.

    Attributes:
        argument: The input as given (``"-"`` for stdin).
        kind: ``"folder"``, ``"table"``, ``"file"`` or ``"stdin"``.
        path: Absolute path (``None`` for stdin).
        format: Table format (``jsonl``, ``csv``, ``tsv``, ``parquet``) or None.
        items: Number of items it holds (``None`` for stdin: unknown until read).
        fingerprint: Changes when the input changes in a way that moves positions (``None`` for stdin).
        columns: Extra columns of a table -> their Arrow type (``"string"``, ``"int64"``, ..., or ``"json"`` for
            values stored as JSON text).
        ignored: Files of a folder that are not embedded, counted by extension.
    """

    argument: str
    kind: InputKind
    path: str | None = None
    format: str | None = None
    items: int | None = None
    fingerprint: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    id_hashes: Any = field(default=None, repr=False, compare=False)
    """8-byte hashes of the ids the plan saw (an ``array("Q")``), for :func:`duplicate_ids`; not saved."""
    skipped: list[str] = field(default_factory=list, repr=False, compare=False)
    """A folder's files that are not embedded because no modality reads their type (as given: the input + the
    relative path), for the run's summary; not saved (``ignored`` counts them by extension)."""
    files: Any = field(default=None, repr=False, compare=False)
    """A folder's files as the plan saw them: ``(path relative to the folder, modality, (size, mtime ns) or None)``,
    in order (what an update compares with the store's catalog without walking the folder again); not saved."""

    def to_json(self) -> dict[str, Any]:
        """The spec as written in the manifest."""
        return {
            "argument": self.argument,
            "kind": self.kind,
            "path": self.path,
            "format": self.format,
            "items": self.items,
            "fingerprint": self.fingerprint,
            "columns": self.columns,
            "ignored": self.ignored,
        }


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


# ------------------------------------------------------------------------------------------------------ the plan
def plan_inputs(arguments: Iterable[str]) -> list[InputSpec]:
    """Resolve and count every input, reading tables once (in a stream) to count rows and find their columns.

    Raises:
        ValueError: An input does not exist, has an unknown extension, or ``-`` is given twice.
    """
    specs = []
    for argument in arguments:
        argument = str(argument)
        if argument == "-":
            if any(spec.kind == "stdin" for spec in specs):
                raise ValueError("'-' (stdin) can be given only once.")
            specs.append(InputSpec(argument, "stdin"))
            continue
        path = Path(argument)
        if path.is_dir():
            specs.append(_plan_folder(argument, path))
        elif os.path.lexists(path) and file_problem(str(path)) is not None:
            raise ValueError(f"input {file_problem(str(path))}")
        elif path.is_file():
            extension = path.suffix.lower()
            if extension in TABLE_FORMATS:
                specs.append(_plan_table(argument, path, TABLE_FORMATS[extension]))
            elif file_modality(path) is not None:
                stat = path.stat()
                spec = InputSpec(argument, "file", str(path.resolve()), items=1, fingerprint=f"{stat.st_size}")
                spec.id_hashes = array("Q", [_id_hash(argument)])
                specs.append(spec)
            else:
                raise ValueError(
                    f"{argument!r} has an extension lco-embed does not read ({extension or 'none'}); accepted: "
                    f"{', '.join(sorted(_FILE_MODALITIES))} and tables {', '.join(TABLE_FORMATS)}."
                )
        else:
            raise ValueError(f"input {argument!r} does not exist (give files, folders, tables, or '-' for stdin).")
    return specs


def _walk(root: Path) -> Iterator[tuple[str, str | None]]:
    """Yield ``(relative path, modality or None)`` for every non-hidden file under ``root``, in sorted order."""
    base = len(os.path.join(str(root), ""))
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        prefix = os.path.join(folder, "")[base:]  # the folder relative to root, "" for root itself
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield prefix + name, file_modality(name)


def _plan_folder(argument: str, path: Path) -> InputSpec:
    digest = hashlib.sha256()
    items = 0
    ignored: Counter[str] = Counter()
    hashes = array("Q")
    files: list[tuple[str, str, tuple[int, int] | None]] = []
    skipped: list[str] = []
    root, shown = os.path.join(str(path), ""), os.path.join(argument, "")
    for relative, modality in _walk(path):
        if modality is None:
            ignored[os.path.splitext(relative)[1].lower() or "(none)"] += 1
            skipped.append(shown + relative)
            continue
        items += 1
        stat = stat_of(root + relative)
        files.append((relative, modality, stat))
        digest.update(f"{relative}\0{_size(root + relative, stat)}\n".encode())
        hashes.append(_id_hash(shown + relative))
    spec = InputSpec(
        argument, "folder", str(path.resolve()), items=items, fingerprint=digest.hexdigest(), ignored=dict(ignored)
    )
    spec.id_hashes = hashes
    spec.files = files
    spec.skipped = skipped
    return spec


def _size(path: str, stat: tuple[int, int] | None) -> int:
    """A file's size for the fingerprint: of what a link points to, or of the link itself when it dangles (the
    item then fails, alone, when it is read)."""
    return stat[0] if stat is not None else os.lstat(path).st_size


def _plan_table(argument: str, path: Path, fmt: str) -> InputSpec:
    hashes = array("Q")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        columns = {
            name: _arrow_column_type(schema.field(name).type) for name in schema.names if name not in _ITEM_COLUMNS
        }
        rows = parquet.metadata.num_rows
        _check_media_columns(argument, schema.names)
        hashes.extend(_id_hash(record_id) for record_id, _ in _parquet_ids(argument, str(path)))
        fingerprint = f"{path.stat().st_size}:{rows}:{hashlib.sha256(str(schema).encode()).hexdigest()[:16]}"
        spec = InputSpec(argument, "table", str(path.resolve()), fmt, rows, fingerprint, columns)
        spec.id_hashes = hashes
        return spec
    digest = hashlib.sha256()
    rows = 0
    if fmt == "jsonl":
        types: dict[str, set[type]] = {}
        names: set[str] = set()
        with open(path, "rb") as f:
            for line_number, line in enumerate(f, 1):
                digest.update(line)
                if not line.strip():
                    continue
                rows += 1
                try:
                    row = json.loads(line)
                except ValueError:
                    row = None  # reported as that row's error when the records are read
                if isinstance(row, dict):
                    names.update(row)
                    for key, value in row.items():
                        if key not in _ITEM_COLUMNS:
                            types.setdefault(key, set()).add(type(value))
                raw = row.get("id") if isinstance(row, dict) else None
                hashes.append(_id_hash(record_id(raw, f"{argument}:{line_number}")))
        columns = {key: _json_column_type(seen) for key, seen in types.items()}
    else:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        header, rows = _csv_header_and_rows(path, fmt, argument, hashes)
        columns = {name: "string" for name in header if name not in _ITEM_COLUMNS}
        names = set(header)
    _check_media_columns(argument, names)
    spec = InputSpec(argument, "table", str(path.resolve()), fmt, rows, digest.hexdigest(), columns)
    spec.id_hashes = hashes
    return spec


def record_id(raw: Any, default: str) -> str:
    """A record's id: the table's ``id`` value as text, or ``default`` (where it came from) when there is none."""
    return default if raw is None or raw == "" else str(raw)


def _id_hash(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _csv_ids(argument: str, path: str, fmt: str) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every row of a CSV/TSV table, in order."""
    for line, row, _ in _text_rows(path, fmt, 0):
        yield record_id((row or {}).get("id"), f"{argument}:{line}"), f"{path}:{line}"


def _parquet_ids(argument: str, path: str) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every row of a Parquet table, in order, reading only its ``id`` column."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    number = 0
    if "id" not in parquet.schema_arrow.names:
        for number in range(1, parquet.metadata.num_rows + 1):
            yield f"{argument}:{number}", f"{path}:{number}"
        return
    for batch in parquet.iter_batches(batch_size=8192, columns=["id"]):
        for raw in batch.column(0).to_pylist():
            number += 1
            yield record_id(raw, f"{argument}:{number}"), f"{path}:{number}"


def _jsonl_ids(argument: str, path: str) -> Iterator[tuple[str, str]]:
    for line, row, _ in _text_rows(path, "jsonl", 0):
        yield record_id((row or {}).get("id"), f"{argument}:{line}"), f"{path}:{line}"


def _ids_of(spec: InputSpec) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every record of an input, in order (stdin: none, its ids are its line numbers)."""
    if spec.kind == "folder":
        for relative, modality in _walk(Path(spec.path or spec.argument)):
            if modality is not None:
                yield os.path.join(spec.argument, relative), os.path.join(spec.path or "", relative)
    elif spec.kind == "file":
        yield spec.argument, spec.path or spec.argument
    elif spec.kind == "table" and spec.path is not None:
        if spec.format == "parquet":
            yield from _parquet_ids(spec.argument, spec.path)
        elif spec.format == "jsonl":
            yield from _jsonl_ids(spec.argument, spec.path)
        else:
            yield from _csv_ids(spec.argument, spec.path, spec.format or "csv")


def duplicate_ids(specs: list[InputSpec], limit: int = 10) -> tuple[int, list[tuple[str, list[str]]]]:
    """Ids that more than one record of the inputs has: ``(how many records repeat an earlier id, the first
    ``limit`` repeated ids with the sources that have them)``. Memory: 8 bytes per record (a hash), plus a second
    pass over the inputs only when there are repeats."""
    import numpy as np

    parts = [np.frombuffer(spec.id_hashes, dtype=np.uint64) for spec in specs if spec.id_hashes is not None]
    if not parts:
        return 0, []
    hashes = np.sort(np.concatenate(parts))
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    if not repeated.size:
        return 0, []
    suspects = set(repeated.tolist())
    sources: dict[str, list[str]] = {}
    for spec in specs:
        for value, source in _ids_of(spec):
            if _id_hash(value) in suspects:
                sources.setdefault(value, []).append(source)
    repeats = {value: where for value, where in sources.items() if len(where) > 1}  # not a hash collision
    extra = sum(len(where) - 1 for where in repeats.values())
    return extra, list(repeats.items())[:limit]


def _check_media_columns(argument: str, names: Iterable[str]) -> None:
    if not set(names) & set(MODALITIES):
        raise ValueError(
            f"table {argument!r} has no column named text, image, audio or video (columns: {sorted(names)}); "
            "name the content columns so, e.g. a CSV header 'id,text,image'."
        )


def _json_column_type(seen: set[type]) -> str:
    """Arrow type of an extra JSONL column from the Python types of its values (``json`` = stored as JSON text)."""
    seen = seen - {type(None)}
    if not seen or seen == {str}:
        return "string"
    if seen == {bool}:
        return "bool"
    if seen == {int}:
        return "int64"
    if seen <= {int, float}:
        return "double"
    return "json"


def _arrow_column_type(arrow_type: Any) -> str:
    """The stored type of an extra Parquet column: strings, integers, floats and booleans keep their kind;
    anything else (timestamps, lists, structs, bytes) is stored as JSON text."""
    import pyarrow.types as pt

    if pt.is_string(arrow_type) or pt.is_large_string(arrow_type):
        return "string"
    if pt.is_boolean(arrow_type):
        return "bool"
    if pt.is_integer(arrow_type) and not pt.is_uint64(arrow_type):
        return "int64"
    if pt.is_floating(arrow_type):
        return "double"
    return "json"


def extra_columns(specs: Iterable[InputSpec]) -> dict[str, str]:
    """Extra columns over all inputs -> stored type; a column typed differently by two inputs is stored as JSON
    text (``int64`` and ``double`` make ``double``)."""
    merged: dict[str, str] = {}
    for spec in specs:
        for name, kind in spec.columns.items():
            before = merged.setdefault(name, kind)
            if before != kind:
                merged[name] = "double" if {before, kind} == {"int64", "double"} else "json"
    return merged


def output_name(column: str) -> str:
    """The output column of an extra input column: ``input_<name>`` where it clashes with an output column."""
    return f"input_{column}" if column in OUTPUT_COLUMNS else column


def _csv_reader(f: IO[str], fmt: str) -> Any:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    return csv.reader(f, delimiter="\t" if fmt == "tsv" else ",")


def _csv_header_and_rows(path: Path, fmt: str, argument: str, hashes: array) -> tuple[list[str], int]:
    """The header and the number of rows of a CSV/TSV table, in one pass that also hashes every row's id."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(_csv_reader(f, fmt), [])
        rows = 0
        for record_id, _ in _csv_ids(argument, str(path), fmt):
            rows += 1
            hashes.append(_id_hash(record_id))
    except UnicodeDecodeError as e:
        raise ValueError(f"table {str(path)!r} is not UTF-8 text ({e}); save it as UTF-8.") from e
    except csv.Error as e:
        raise ValueError(f"table {str(path)!r} cannot be read as {fmt.upper()} ({e}).") from e
    if not header:
        raise ValueError(f"table {str(path)!r} is empty: it needs a header row naming its columns.")
    return header, rows


# --------------------------------------------------------------------------------------------------- the records
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
        for entry in _records_of(spec, position, max(0, start - position), stdin or sys.stdin):
            if isinstance(entry, int):
                position += entry
            else:
                yield entry
                position += 1


def _records_of(spec: InputSpec, first: int, skip: int, stdin: IO[str]) -> Iterator[Record | int]:
    """The input's records from its ``skip``-th on; skipped positions come as counts (ints)."""
    if spec.kind == "folder":
        yield from _folder_records(spec, first, skip)
    elif spec.kind == "file":
        yield 1 if skip else _file_record(first, spec.argument, spec.path or spec.argument)
    elif spec.kind == "stdin":
        yield from _stdin_records(stdin, first, skip)
    else:
        yield from _table_records(spec, first, skip)


def _file_record(position: int, display: str, path: str) -> Record:
    modality = file_modality(path) or TEXT.name
    record = Record(position, display, os.path.abspath(path), modality, file=os.path.abspath(path))
    problem = file_problem(path)  # a FIFO would block, a dangling link or a folder has nothing to read
    if problem is not None:
        record.error = problem
    elif is_text(modality):
        try:
            with open(path, encoding="utf-8") as f:
                record.item = {"text": f.read()}
        except (OSError, UnicodeDecodeError) as e:
            record.error = f"cannot read the text file as UTF-8 ({type(e).__name__}: {e})."
    else:
        record.item = {modality: record.source}
    return record


def _folder_records(spec: InputSpec, first: int, skip: int) -> Iterator[Record | int]:
    root = spec.path or spec.argument
    number = 0
    for relative, modality in _walk(Path(root)):
        if modality is None:
            continue
        number += 1
        if number <= skip:
            yield 1
        else:
            yield _file_record(first + number - 1, os.path.join(spec.argument, relative), os.path.join(root, relative))


def _stdin_records(stdin: IO[str], first: int, skip: int) -> Iterator[Record | int]:
    for number, line in enumerate(stdin, 1):
        if number <= skip:
            yield 1
            continue
        name = f"stdin:{number}"
        yield Record(first + number - 1, name, name, "text", item={"text": line.rstrip("\r\n")})


def _table_records(spec: InputSpec, first: int, skip: int) -> Iterator[Record | int]:
    assert spec.path is not None
    rows = _parquet_rows(spec.path, skip) if spec.format == "parquet" else _text_rows(spec.path, spec.format, skip)
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


def _text_rows(path: str, fmt: str | None, skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """``(line number, row, problem)`` of a JSONL, CSV or TSV table's rows (blank lines are not rows); the first
    ``skip`` rows come as ``(line number, None, None)`` without being parsed. A CSV row that spans several lines has
    the number of its first line; the header is line 1."""
    if fmt == "jsonl":
        with open(path, "rb") as f:  # bytes, as the plan counted them; json.loads reads UTF-8 (and names bad bytes)
            number = 0
            for line_number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                number += 1
                if number <= skip:
                    yield line_number, None, None
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    yield line_number, {}, f"not valid JSON ({e})."
                    continue
                if not isinstance(row, dict):
                    yield line_number, {}, f"a JSON {type(row).__name__}, not an object."
                    continue
                yield line_number, row, None
        return
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = _csv_reader(f, fmt or "csv")
        header = next(reader, [])
        number = 0
        last = reader.line_num
        for values in reader:
            line_number, last = last + 1, reader.line_num
            if not values:
                continue
            number += 1
            if number <= skip:
                yield line_number, None, None
                continue
            if len(values) != len(header):
                yield line_number, {}, f"the row has {len(values)} fields, the header has {len(header)}."
                continue
            yield line_number, dict(zip(header, values, strict=True)), None


def _parquet_rows(path: str, skip: int) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path, memory_map=True)
    number = 0
    for index in range(parquet.num_row_groups):
        size = parquet.metadata.row_group(index).num_rows
        if number + size <= skip:
            for _ in range(size):  # a whole row group before the start: not read
                number += 1
                yield number, None, None
            continue
        for batch in parquet.iter_batches(batch_size=1024, row_groups=[index]):
            for row in batch.to_pylist():
                number += 1
                yield number, (row if number > skip else None), None


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

    Several filled columns make one mixed item (``modality="mixed"``); empty strings and nulls are absent.
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
    if not content:
        return None, "text", "the row has no text, image, audio or video value."
    modality = next(iter(content)) if len(content) == 1 else "mixed"
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
