"""What a corpus job reads, resolved before any embedding: :func:`plan_inputs` looks at every input once (counts
for the progress bar, the extra columns of tables, a fingerprint that tells a resumed run whether its inputs
changed, a hash of every record's id for :func:`duplicate_ids`). :mod:`~.records` then reads the records.

Modality from the extension (folders and files given directly):

=========  =============================================================
text       .txt .md (the whole file is one text item, UTF-8)
image      .jpg .jpeg .png .gif .bmp .tiff .tif .webp .avif .jfif
audio      .mp3 .wav .ogg .flac .aac .m4a .opus .aiff .aif
video      .mp4 .avi .mov .wmv .flv .mkv .webm .m4v .mpg .mpeg .3gp
pdf        .pdf (a document: one row per page, its image; the job then runs with segments)
table      .jsonl .ndjson .csv .tsv .parquet (only as an input of its own)
=========  =============================================================

Folders are walked recursively in sorted order; hidden files and folders (``.name``) are passed over. A file no
modality reads (another extension, or a table inside a folder) is an item that fails with the reason, so the run's
summary and errors file name it; the plan also counts such files by extension (``ignored_files``). Symbolic links
to folders are not followed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lco_embedding.core.files import file_problem
from lco_embedding.core.modalities import MODALITIES, MODALITY_TABLE, PDF
from lco_embedding.corpus.catalog import stat_of
from lco_embedding.corpus.table_rows import csv_ids, csv_reader, id_hash, jsonl_ids, parquet_ids, record_id

__all__ = [
    "holds_documents",
    "OUTPUT_COLUMNS",
    "TABLE_FORMATS",
    "TEXT_EXTENSIONS",
    "InputSpec",
    "duplicate_ids",
    "extra_columns",
    "file_modality",
    "output_name",
    "plan_inputs",
    "walk",
]

TEXT_EXTENSIONS = (".txt", ".md")
TABLE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}

OUTPUT_COLUMNS = ("id", "source", "modality", "embedding")

_FILE_MODALITIES = {
    **{ext: "text" for ext in TEXT_EXTENSIONS},
    **{ext: name for name, spec in MODALITY_TABLE.items() for ext in spec.extensions},
    ".pdf": PDF,
}
_ITEM_COLUMNS = ("id", *MODALITIES, PDF)

InputKind = Literal["folder", "table", "file", "stdin"]


def holds_documents(specs: Iterable[InputSpec]) -> bool:
    """True when a folder or file among the inputs is a PDF (each of its pages is then a row of its own)."""
    for spec in specs:
        if spec.kind == "file" and file_modality(spec.path or spec.argument) == PDF:
            return True
        if spec.kind == "folder" and any(modality == PDF for _, modality, _ in spec.files or ()):
            return True
    return False


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
                spec.id_hashes = array("Q", [id_hash(argument)])
                specs.append(spec)
            else:
                raise ValueError(
                    f"{argument!r} has an extension lco-embed does not read ({extension or 'none'}); accepted: "
                    f"{', '.join(sorted(_FILE_MODALITIES))} and tables {', '.join(TABLE_FORMATS)}."
                )
        else:
            raise ValueError(f"input {argument!r} does not exist (give files, folders, tables, or '-' for stdin).")
    return specs


def walk(root: Path) -> Iterator[tuple[str, str | None]]:
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
    files: list[tuple[str, str | None, tuple[int, int] | None]] = []
    skipped: list[str] = []
    root, shown = os.path.join(str(path), ""), os.path.join(argument, "")
    for relative, modality in walk(path):
        if modality is None:  # a failed item of its own: named, with the reason, in the summary and errors.jsonl
            ignored[os.path.splitext(relative)[1].lower() or "(none)"] += 1
            skipped.append(shown + relative)
        items += 1
        stat = stat_of(root + relative)
        files.append((relative, modality, stat))
        digest.update(f"{relative}\0{_size(root + relative, stat)}\n".encode())
        hashes.append(id_hash(shown + relative))
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
        hashes.extend(id_hash(record_id) for record_id, _ in parquet_ids(argument, str(path)))
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
                hashes.append(id_hash(record_id(raw, f"{argument}:{line_number}")))
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


def _ids_of(spec: InputSpec) -> Iterator[tuple[str, str]]:
    """``(id, source)`` of every record of an input, in order (stdin: none, its ids are its line numbers)."""
    if spec.kind == "folder":
        for relative, _ in walk(Path(spec.path or spec.argument)):
            yield os.path.join(spec.argument, relative), os.path.join(spec.path or "", relative)
    elif spec.kind == "file":
        yield spec.argument, spec.path or spec.argument
    elif spec.kind == "table" and spec.path is not None:
        if spec.format == "parquet":
            yield from parquet_ids(spec.argument, spec.path)
        elif spec.format == "jsonl":
            yield from jsonl_ids(spec.argument, spec.path)
        else:
            yield from csv_ids(spec.argument, spec.path, spec.format or "csv")


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
            if id_hash(value) in suspects:
                sources.setdefault(value, []).append(source)
    repeats = {value: where for value, where in sources.items() if len(where) > 1}  # not a hash collision
    extra = sum(len(where) - 1 for where in repeats.values())
    return extra, list(repeats.items())[:limit]


def _check_media_columns(argument: str, names: Iterable[str]) -> None:
    if not set(names) & {*MODALITIES, PDF}:
        raise ValueError(
            f"table {argument!r} has no column named text, image, audio, video or pdf (columns: {sorted(names)}); "
            "name the content columns so, e.g. a CSV header 'id,text,image' (or 'id,pdf,page' for PDF pages)."
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


def _csv_header_and_rows(path: Path, fmt: str, argument: str, hashes: array) -> tuple[list[str], int]:
    """The header and the number of rows of a CSV/TSV table, in one pass that also hashes every row's id."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            header = next(csv_reader(f, fmt), [])
        rows = 0
        for record_id, _ in csv_ids(argument, str(path), fmt):
            rows += 1
            hashes.append(id_hash(record_id))
    except UnicodeDecodeError as e:
        raise ValueError(f"table {str(path)!r} is not UTF-8 text ({e}); save it as UTF-8.") from e
    except csv.Error as e:
        raise ValueError(f"table {str(path)!r} cannot be read as {fmt.upper()} ({e}).") from e
    if not header:
        raise ValueError(f"table {str(path)!r} is empty: it needs a header row naming its columns.")
    return header, rows
