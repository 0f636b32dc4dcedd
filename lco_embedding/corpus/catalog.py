"""What a store knows about each item it holds, so that a re-run on a changed input set embeds only what changed.

Every record a corpus job writes (embedded or failed) gets one catalog entry, committed with its shard:

==========  ========================================================================================================
position    the record's number, unique in the store (a fresh run numbers its inputs from 0; an update goes on
            from the highest)
key         what the item *is*: its id (a file's path as given under its input, a table row's ``id`` or
            ``table:line``), with ``#n`` added to the n-th repeat of an id (``--allow-duplicate-ids``)
content     a hash of what its embedding depends on: a file's bytes; a table row's item (texts, media values, and
            for local media files their size and modification time)
meta        a hash of the row's other columns (id, source, modality, the table's extra columns)
size/mtime  a file's size and modification time (nanoseconds): the fast check, so that an unchanged file is not
            read again
row, rows   its first row number and how many rows it has (segments: one per segment; a failed item: 0)
error       why it failed, or null (a PDF some of whose pages failed has rows *and* an error naming the pages)
pages       a PDF file's pages, as JSON: ``{"digests": [a hash per page], "failed": {"3": why}}``
            (:func:`~lco_embedding.preprocessing.pdf.page_digests`); its rows are its pages that did not fail, in
            order. An update re-embeds only the pages of a changed PDF whose hash it does not hold. Null otherwise.
==========  ========================================================================================================

A shard's entries are kept beside its rows: ``catalog-NNNNN.parquet`` in a Parquet folder and in a LanceDB store's
sidecar folder, chunks of the meta collection in Milvus. Stores written before the catalog existed have none: they
cannot be updated in place (``--overwrite`` starts them over).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from lco_embedding.core.modalities import PDF

__all__ = [
    "CATALOG_COLUMNS",
    "Catalog",
    "DocumentPages",
    "Entry",
    "Keys",
    "content_of",
    "entries_table",
    "fingerprint",
    "meta_of",
    "read_entries",
    "stat_of",
]

CATALOG_COLUMNS = ("position", "key", "content", "meta", "size", "mtime", "row", "rows", "error", "pages")


@dataclass
class Entry:
    """One record's catalog entry (see the module)."""

    position: int
    key: str
    content: str
    meta: str
    size: int | None = None
    mtime: int | None = None
    row: int | None = None
    rows: int = 0
    error: str | None = None
    pages: str | None = None

    def document(self) -> DocumentPages | None:
        """A PDF's pages (:class:`DocumentPages`), or None for other items and PDFs that could not be read."""
        return None if self.pages is None else DocumentPages.from_json(self.pages)


@dataclass
class DocumentPages:
    """What the catalog keeps of a PDF's pages: each page's hash (None for a page that cannot be loaded) and the
    pages that failed (page -> why). Its rows are the other pages, in order."""

    digests: list[str | None]
    failed: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str) -> DocumentPages:
        """Read the catalog's JSON."""
        value = json.loads(text)
        return cls(value["digests"], {int(page): why for page, why in value.get("failed", {}).items()})

    def to_json(self) -> str:
        """The catalog's JSON."""
        failed = {str(page): why for page, why in self.failed.items()}
        return json.dumps({"digests": self.digests, "failed": failed}, ensure_ascii=False)

    def row_pages(self) -> list[int]:
        """The page of each of the item's rows, in order (its pages that did not fail)."""
        return [page for page in range(1, len(self.digests) + 1) if page not in self.failed]


def _digest(*parts: bytes) -> str:
    hasher = hashlib.blake2b(digest_size=16)
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.hexdigest()


def stat_of(path: str) -> tuple[int, int] | None:
    """A file's ``(size, modification time in ns)``, or None when it cannot be stat'ed."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns


def file_content(path: str) -> str:
    """The hash of a file's bytes (read in 1 MiB blocks); of its path when it cannot be read (the item then fails,
    and fails again until the file changes)."""
    hasher = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                hasher.update(block)
    except OSError as e:
        return _digest(b"unreadable", path.encode("utf-8", "surrogatepass"), type(e).__name__.encode())
    return hasher.hexdigest()


def _canonical(value: Any, files: bool = False) -> bytes:
    """A JSON-able value as bytes that do not depend on dict order; bytes values by their hash; with ``files``,
    local media files (absolute paths, as a table row's item holds them) by their path, size and modification
    time."""

    def plain(item: Any) -> Any:
        if isinstance(item, bytes | bytearray):
            return {"bytes": hashlib.blake2b(bytes(item), digest_size=16).hexdigest()}
        if isinstance(item, dict):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [plain(v) for v in item]
        if files and isinstance(item, str) and os.path.isabs(item) and os.path.isfile(item):
            return {"file": item, "stat": stat_of(item)}
        return item

    return json.dumps(plain(value), sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")


def content_of(item: Any, error: str | None) -> str:
    """The content hash of a table row's (or stdin line's) item; of its error when it has none."""
    return _digest(b"item", _canonical(item, files=True)) if error is None else _digest(b"error", error.encode())


def meta_of(record_id: str, source: str, modality: str, extras: dict[str, Any]) -> str:
    """The hash of a row's columns other than its embedding."""
    fixed = f"{record_id}\0{source}\0{modality}".encode("utf-8", "surrogatepass")
    return _digest(b"meta", fixed, _canonical(extras) if extras else b"")


def entries_table(entries: list[Entry]) -> Any:
    """Entries as a ``pyarrow.Table`` (the catalog's columns)."""
    import pyarrow as pa

    columns = {name: [getattr(entry, name) for entry in entries] for name in CATALOG_COLUMNS}
    types = {
        "position": pa.int64(),
        "key": pa.string(),
        "content": pa.string(),
        "meta": pa.string(),
        "size": pa.int64(),
        "mtime": pa.int64(),
        "row": pa.int64(),
        "rows": pa.int32(),
        "error": pa.string(),
        "pages": pa.string(),
    }
    return pa.table({name: pa.array(values, types[name]) for name, values in columns.items()})


def read_entries(table: Any) -> list[Entry]:
    """A catalog table's entries."""
    return [Entry(**values) for values in _with_every_column(table).select(list(CATALOG_COLUMNS)).to_pylist()]


def _with_every_column(table: Any) -> Any:
    """A catalog chunk with the columns added since it was written (``pages``: null)."""
    import pyarrow as pa

    for name in CATALOG_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, pa.string()))
    return table


class Catalog:
    """The catalog entries a store shows, by key, kept as columns (an :class:`Entry` is made only when asked for):
    a no-change re-run over 100,000 files looks up each file's size and time without building 100,000 objects.

    Args:
        tables: Catalog chunks (``pyarrow.Table``), in commit order.
        seen: What a reader sees (:class:`lco_embedding.corpus.visibility.Visible`): entries of other positions are
            left out.
    """

    def __init__(self, tables: list[Any], seen: Any) -> None:
        import numpy as np
        import pyarrow as pa

        chunks = [_with_every_column(table).select(list(CATALOG_COLUMNS)) for table in tables]
        table = pa.concat_tables(chunks) if chunks else entries_table([])
        positions = table.column("position").to_numpy()
        kept = positions < seen.next_position
        if seen.dropped_positions.size:
            kept &= ~np.isin(positions, seen.dropped_positions)
        table = table if kept.all() else table.filter(pa.array(kept, pa.bool_()))
        self._columns = {name: table.column(name).to_pylist() for name in CATALOG_COLUMNS}
        self.index = dict(zip(self._columns["key"], range(table.num_rows), strict=True))

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def entry(self, at: int) -> Entry:
        """The entry at index ``at``."""
        return Entry(**{name: values[at] for name, values in self._columns.items()})

    def get(self, key: str) -> Entry | None:
        """The entry of ``key``, or None."""
        at = self.index.get(key)
        return None if at is None else self.entry(at)

    def unchanged_file(self, key: str, stat: tuple[int, int] | None, meta: str) -> bool:
        """True when ``key`` is a file stored with this size, modification time and columns' hash."""
        at = self.index.get(key)
        columns = self._columns
        return (
            at is not None
            and stat is not None
            and columns["size"][at] == stat[0]
            and columns["mtime"][at] == stat[1]
            and columns["meta"][at] == meta
        )

    def by_content(self) -> dict[str, int]:
        """Content hash -> the index of the first entry with it."""
        found: dict[str, int] = {}
        for at, content in enumerate(self._columns["content"]):
            found.setdefault(content, at)
        return found

    def keys(self) -> list[str]:
        """Every key, in commit order."""
        return list(self.index)


def table_bytes(table: Any) -> bytes:
    """A catalog table as Parquet bytes (for stores that keep it as a blob)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def table_from_bytes(data: bytes) -> Any:
    """The catalog table in Parquet bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(data))


class Keys:
    """Each record's key: its id, and ``id#n`` for the n-th repeat of an id in one input set."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def __call__(self, record_id: str) -> str:
        count = self._seen.get(record_id, 0)
        self._seen[record_id] = count + 1
        return record_id if count == 0 else f"{record_id}#{count}"


def fingerprint(record: Any, key: str, stat: tuple[int, int] | None = None, content: str | None = None) -> Entry:
    """A record's catalog entry before it is written (no rows yet). A file is stat'ed before it is read, so that a
    change during the read shows as a changed size or time the next time; ``stat`` and ``content`` may be given
    (an unchanged file's, from the catalog)."""
    meta = meta_of(record.id, record.source, record.modality, record.extras)
    if record.file is None:
        return Entry(record.position, key, content_of(record.item, record.error), meta, error=record.error)
    if stat is None or content is None:
        stat = stat_of(record.file)
        # a file that is not read (a FIFO would block, a dangling link has nothing) is known by its failure
        content = file_content(record.file) if record.error is None else content_of(record.file, record.error)
    size, mtime = stat if stat is not None else (None, None)
    entry = Entry(record.position, key, content, meta, size, mtime, error=record.error)
    if record.modality == PDF and record.error is None:
        entry.pages = _document_pages(record.file)
    return entry


def _document_pages(path: str) -> str | None:
    """A PDF file's :class:`DocumentPages` JSON (no failures yet), or None when it cannot be opened (it then fails
    as a whole, and is embedded again whole when it changes)."""
    from lco_embedding.core.errors import LCOInputError
    from lco_embedding.preprocessing.pdf import page_digests

    try:
        return DocumentPages(page_digests(path)).to_json()
    except (LCOInputError, ImportError):
        return None
