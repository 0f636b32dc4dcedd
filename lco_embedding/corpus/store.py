"""The output folder of a corpus job: Parquet shards, ``manifest.json`` (the commit point) and ``errors.jsonl``.

Layout::

    DIR/manifest.json        model, revision, prompts, options, dimension, counts, inputs, the shard list
    DIR/part-00000.parquet   id, source, modality, embedding, extra input columns (one shard per shard_size
    DIR/part-00001.parquet   input positions; failed items have no row)
    DIR/errors.jsonl         one JSON object per failed item: position, id, source, modality, error
    DIR/index.usearch        optional approximate index (``lco-embed index``)

Exactly once: a shard is written to a hidden temporary file, synced and renamed into place; its errors are
appended to ``errors.jsonl``; then the manifest, which lists the committed shards and the committed length of
``errors.jsonl``, is replaced atomically. Whatever a kill leaves behind that the manifest does not name (a
temporary file, a renamed shard, a tail of ``errors.jsonl``) is removed on the next run, which starts at the first
position no committed shard covers. A lock file keeps two writers out of one folder.

Does not support several writers on one folder, or appending new inputs to a finished folder.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.corpus.precision import to_float
from lco_embedding.corpus.visibility import visible

__all__ = [
    "ERRORS_FILE",
    "FORMAT",
    "INDEX_FILE",
    "MANIFEST_FILE",
    "OutputFolder",
    "catalog_name",
    "first_row",
    "refuse_where",
    "shard_list",
    "shard_name",
]

logger = logging.getLogger(__name__)

FORMAT = "lco-embedding-corpus"
FORMAT_VERSION = 2
"""2: table rows are named (``id`` default, ``source``) by their line number, not their row count."""
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
INDEX_FILE = "index.usearch"
LOCK_FILE = ".lock"
ROW_GROUP_ROWS = 4096
"""Rows per Parquet row group: the unit the exact search reads at a time."""


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"part-{index:05d}.parquet"


def now() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_folder(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not possible on every platform; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    _fsync_folder(path.parent)


class OutputFolder:
    """An output folder: read its manifest and shards, or write shards and commit them.

    Args:
        path: The folder.

    Example:
        >>> from lco_embedding.corpus import encode_corpus
        >>> _ = encode_corpus(["captions.jsonl"], "embeddings", model=model, show_progress_bar=False)
        >>> OutputFolder("embeddings").manifest["counts"]
        {'total': 2, 'done': 2, 'embedded': 2, 'failed': 0}
    """

    kind = "parquet"
    """The store's kind (:mod:`lco_embedding.corpus.stores`)."""
    filters = False
    """A Parquet folder takes no filter expressions (``where``); ``modalities`` filter every store."""
    native_search = False
    """True when the store's own vector search answers a search of one modality (a folder's usearch index does
    not: the scan does)."""
    native_group_by = False
    """True when the store's own search groups hits by a column."""
    replaces_foreign_data = False
    """True when ``--overwrite`` replaces data another program left under the target (a table or collection
    is replaced whole); a folder's foreign files are never deleted."""

    @property
    def output(self) -> Path | str:
        """The output as a run's summary names it: the folder's path."""
        return self.path

    index_file = INDEX_FILE

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None
        self._lock: Any = None

    @property
    def location(self) -> str:
        """The folder, for messages."""
        return str(self.path)

    @property
    def errors_location(self) -> str:
        """Where the failed items are listed, for messages."""
        return str(self.errors_path)

    def read_errors(self) -> list[dict[str, Any]]:
        """The committed failures (one dict per failed item), in position order."""
        if not self.errors_path.exists():
            return []
        length = self.manifest.get("errors_bytes", 0)
        with open(self.errors_path, "rb") as f:
            text = f.read(length).decode("utf-8")
        seen = visible(self.manifest)
        failures = (json.loads(line) for line in text.splitlines() if line.strip())
        return [failure for failure in failures if seen.keeps_position(failure["position"])]

    # ---------------------------------------------------------------------------------------------- reading
    @property
    def manifest_path(self) -> Path:
        """``DIR/manifest.json``."""
        return self.path / MANIFEST_FILE

    @property
    def errors_path(self) -> Path:
        """``DIR/errors.jsonl``."""
        return self.path / ERRORS_FILE

    def exists(self) -> bool:
        """True when the folder holds a manifest."""
        return self.manifest_path.is_file()

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest.

        Raises:
            FileNotFoundError: The folder has no manifest (not an ``lco-embed encode`` output).
        """
        if self._manifest is None:
            if not self.exists():
                raise FileNotFoundError(
                    f"{str(self.path)!r} has no {MANIFEST_FILE}: it is not an output folder of lco-embed encode."
                )
            with open(self.manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
            if manifest.get("format") != FORMAT or manifest.get("format_version", 0) > FORMAT_VERSION:
                raise ValueError(
                    f"{self.manifest_path} is not a manifest this version of lco-embedding reads "
                    f"(format {manifest.get('format')!r} version {manifest.get('format_version')!r})."
                )
            self._manifest = manifest
        return self._manifest

    def shard_paths(self) -> list[Path]:
        """The committed shards, in order."""
        return [self.path / shard["file"] for shard in self.manifest["shards"]]

    def iter_embeddings(
        self, columns: tuple[str, ...] = (), where: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, list]]]:
        """Yield ``(row numbers, [n, d] float32 vectors as stored, {column: values})`` one row group at a time.

        Shards are memory-mapped; at most one row group is decoded at a time. Rows are numbered from 0 over all
        shards in order. ``where`` (a store's filter expression) is not supported by a Parquet folder.
        """
        import pyarrow.parquet as pq

        refuse_where(self, where)
        manifest = self.manifest
        precision, dimension = manifest["options"]["precision"], manifest["dimension"]
        ranges = manifest.get("int8_ranges")
        seen = visible(manifest)
        row = 0
        for path in self.shard_paths():
            parquet = pq.ParquetFile(path, memory_map=True)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=["embedding", *columns])
                if table.num_rows == 0:
                    continue
                rows = np.arange(row, row + table.num_rows, dtype=np.int64)
                row += table.num_rows
                keep = seen.keep(rows)
                if not keep.all():  # rows an update dropped
                    table, rows = table.filter(keep), rows[keep]
                    if table.num_rows == 0:
                        continue
                flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
                values = flat.reshape(table.num_rows, -1)
                extra = {name: table.column(name).to_pylist() for name in columns}
                yield rows, to_float(values, precision, dimension, ranges), extra

    def read_table(self, columns: list[str] | None = None) -> Any:
        """Every committed row as one ``pyarrow.Table`` (embeddings as stored)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = [pq.read_table(p, columns=columns, memory_map=True) for p in self.shard_paths()]
        if not tables:
            raise ValueError(f"{self.location!r} has no committed shard yet.")
        table = pa.concat_tables(tables, promote_options="default")
        keep = visible(self.manifest).keep(np.arange(table.num_rows, dtype=np.int64))
        return table if keep.all() else table.filter(keep)

    def row_vectors(self, numbers: list[int]) -> np.ndarray:
        """The float32 vectors of rows ``numbers`` (as stored: int8 and binary shards decoded), in that order."""
        import pyarrow.parquet as pq

        manifest = self.manifest
        precision, dimension = manifest["options"]["precision"], manifest["dimension"]
        found: dict[int, np.ndarray] = {}
        start = 0
        wanted = sorted(set(numbers))
        for shard, path in zip(manifest["shards"], self.shard_paths(), strict=True):
            end = start + shard["rows"]
            local = [n - start for n in wanted if start <= n < end]
            if local:
                table = pq.read_table(path, columns=["embedding"], memory_map=True).take(local)
                flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
                vectors = to_float(flat.reshape(len(local), -1), precision, dimension, manifest.get("int8_ranges"))
                found.update((start + n, vector) for n, vector in zip(local, vectors, strict=True))
            start = end
        return np.stack([found[n] for n in numbers]) if numbers else np.zeros((0, dimension), np.float32)

    def rows(self, numbers: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows ``numbers`` (counted from 0 over all shards), without their embedding, in the given order."""
        import pyarrow.parquet as pq

        wanted = sorted(set(numbers))
        found: dict[int, dict[str, Any]] = {}
        start = 0
        for shard, path in zip(self.manifest["shards"], self.shard_paths(), strict=True):
            end = start + shard["rows"]
            local = [n - start for n in wanted if start <= n < end]
            if local:
                names = columns or [n for n in pq.ParquetFile(path).schema_arrow.names if n != "embedding"]
                table = pq.read_table(path, columns=names, memory_map=True).take(local)
                for n, values in zip(local, table.to_pylist(), strict=True):
                    found[start + n] = values
            start = end
        missing = [n for n in numbers if n not in found]
        if missing:
            raise IndexError(f"rows {missing[:5]} are not in {str(self.path)!r} ({start} rows).")
        return [found[n] for n in numbers]

    def nearest(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exact: bool | None,
        modalities: set[str] | None,
        where: str | None,
        group_by: str | None,
    ) -> list[list[tuple[float, int]]] | None:
        """The usearch index's hits when it is current and asked for (or not refused), else None (the caller scans
        the shards exactly).

        Raises:
            ValueError: ``exact=False`` without a current index, or with a modality filter or grouping.
        """
        from lco_embedding.corpus.folder_index import index_is_current, search_index

        refuse_where(self, where)
        current = index_is_current(self)
        if exact is False:
            if not current:
                raise ValueError(f"{self.location!r} has no current index: build it with lco-embed index.")
            if modalities or group_by:
                raise ValueError("a modality filter or grouping needs the exact search.")
            return search_index(self, queries, k)
        if exact is None and current and not modalities and not group_by:
            return search_index(self, queries, k)
        if exact is None and (self.manifest.get("index") or {}).get("file") and not current:
            logger.warning("The index does not cover every row (re-run lco-embed index); searching exactly instead.")
        return None

    def build_index(
        self, *, dtype: str = "f16", connectivity: int | None = None, show_progress_bar: bool = False, **_: Any
    ) -> dict[str, Any]:
        """Build ``DIR/index.usearch`` (``pip install 'lco-embedding[index]'``); the manifest's entry for it."""
        from lco_embedding.corpus.folder_index import build_folder_index

        return build_folder_index(self, dtype, connectivity, show_progress_bar)

    # ---------------------------------------------------------------------------------------------- writing
    def lock(self) -> None:
        """Take the folder's writer lock (released when the process ends, however it ends).

        Raises:
            RuntimeError: Another process holds it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK_FILE, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            self._lock = handle
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.close()
            raise RuntimeError(
                f"another lco-embed process is writing to {str(self.path)!r}; wait for it to finish, or stop it."
            ) from e
        self._lock = handle

    def unlock(self) -> None:
        """Release the writer lock."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        """Release what the store holds (the lock; a connection, for a store with one)."""
        self.unlock()

    def ours(self, name: str) -> bool:
        """True for the names this module writes into an output folder."""
        return (
            name in (MANIFEST_FILE, ERRORS_FILE, INDEX_FILE, LOCK_FILE)
            or (name.startswith(("part-", "catalog-")) and name.endswith(".parquet"))
            or (name.startswith(".") and name.endswith(".tmp"))
        )

    # ------------------------------------------------------------------------------------------- the catalog
    @property
    def catalog_folder(self) -> Path:
        """Where the catalog's chunks are kept (the folder itself; a LanceDB store's sidecar folder)."""
        return self.path

    def write_catalog(self, index: int, table: Any) -> str:
        """Write shard ``index``'s catalog entries (:mod:`.catalog`) where no reader looks until the commit; their
        name for the shard's manifest entry."""
        import pyarrow.parquet as pq

        name = catalog_name(index)
        temporary = self.catalog_folder / f".{name}.tmp"
        with open(temporary, "wb") as f:
            pq.write_table(table, f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.catalog_folder / name)
        return name

    def read_catalog(self, name: str) -> Any:
        """The catalog chunk ``name`` as a ``pyarrow.Table``."""
        import pyarrow.parquet as pq

        return pq.read_table(self.catalog_folder / name)

    def clear(self) -> None:
        """Delete everything this module wrote (for ``--overwrite``); other files are left alone."""
        for entry in self.path.iterdir() if self.path.is_dir() else []:
            if entry.is_file() and self.ours(entry.name) and entry.name != LOCK_FILE:
                entry.unlink()
        self._manifest = None

    def leftovers(self) -> list[str]:
        """Files in a folder without a manifest, other than a lock or temporary file of ours: a fresh run refuses
        such a folder rather than write beside (or over) files it did not make."""
        if not self.path.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.path.iterdir()
            if entry.name != LOCK_FILE and not (entry.name.startswith(".") and entry.name.endswith(".tmp"))
        )

    def recover(self) -> None:
        """Remove what an interrupted run left that the manifest does not name; cut ``errors.jsonl`` to its
        committed length."""
        manifest = self.manifest
        shards = [*manifest["shards"], *(manifest.get("update") or {}).get("shards", [])]
        committed = {shard.get(key) for shard in shards for key in ("file", "catalog")}
        for folder in dict.fromkeys((self.path, self.catalog_folder)):
            for entry in folder.iterdir():
                stray = entry.name.startswith(("part-", "catalog-")) and entry.name.endswith(".parquet")
                temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
                if (stray and entry.name not in committed) or temporary:
                    entry.unlink()
        length = manifest.get("errors_bytes", 0)
        if self.errors_path.exists() or length:
            with open(self.errors_path, "ab") as f:
                f.truncate(length)

    def create(self, manifest: dict[str, Any]) -> None:
        """Start a fresh run: an empty ``errors.jsonl`` and the first manifest (no shards yet)."""
        self.errors_path.write_bytes(b"")
        self.write_manifest(manifest)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically: this is the commit."""
        manifest["updated"] = now()
        _write_atomically(self.manifest_path, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
        self._manifest = manifest

    def commit_shard(
        self,
        manifest: dict[str, Any],
        shard: dict[str, Any],
        table: Any,
        errors: list[dict[str, Any]],
        catalog: Any = None,
    ) -> None:
        """Write one shard, its errors and its catalog entries, then commit them with the updated ``manifest``.

        Args:
            manifest: The manifest to commit; ``shard`` is appended to its shard list (to the update's, while an
                update stages its shards: :func:`shard_list`) and ``errors_bytes`` set.
            shard: ``{"index", "start", "end", "row", "rows", "failed"}`` (``file`` and ``catalog`` are set here).
            table: The shard's rows (a ``pyarrow.Table``).
            errors: One JSON object per failed item of the shard.
            catalog: Its records' catalog entries (:func:`lco_embedding.corpus.catalog.entries_table`), or None.
        """
        entry = self.write_rows(manifest, shard, table)
        if catalog is not None:
            entry["catalog"] = self.write_catalog(shard["index"], catalog)
        self.commit(manifest, entry, errors)

    def write_rows(self, manifest: dict[str, Any], shard: dict[str, Any], table: Any) -> dict[str, Any]:
        """Write a shard's rows where no reader looks until the commit; the shard's manifest entry."""
        import pyarrow.parquet as pq

        name = shard_name(shard["index"])
        temporary = self.path / f".{name}.tmp"
        with open(temporary, "wb") as f:
            pq.write_table(
                table,
                f,
                row_group_size=ROW_GROUP_ROWS,
                compression={column: "none" if column == "embedding" else "zstd" for column in table.column_names},
                use_dictionary=[c for c in table.column_names if c != "embedding"],
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path / name)
        return {"file": name, **shard}

    def commit(self, manifest: dict[str, Any], entry: dict[str, Any], errors: list[dict[str, Any]]) -> None:
        """Append a shard's failures to ``errors.jsonl``, then commit its manifest entry (the manifest's atomic
        replacement)."""
        if errors:
            with open(self.errors_path, "ab") as f:
                for error in errors:
                    f.write((json.dumps(error, ensure_ascii=False) + "\n").encode())
                f.flush()
                os.fsync(f.fileno())
        _fsync_folder(self.path)
        shard_list(manifest).append(entry)
        manifest["errors_bytes"] = self.errors_path.stat().st_size if self.errors_path.exists() else 0
        self.write_manifest(manifest)


def catalog_name(index: int) -> str:
    """File (or blob) name of shard ``index``'s catalog entries."""
    return f"catalog-{index:05d}.parquet"


def first_row(manifest: dict[str, Any], shard: dict[str, Any]) -> int:
    """The number of a shard's first row: as the job numbered it (``shard["row"]``), else (a shard written before
    rows were numbered in their entries, or by a caller that does not) right after the rows committed before it."""
    return int(shard.get("row", manifest["counts"]["embedded"] - shard["rows"]))


def shard_list(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a shard being committed is listed: the manifest's shards, or an update's while it stages its shards
    (they become visible when the update commits)."""
    update = manifest.get("update")
    return update["shards"] if update else manifest["shards"]


def refuse_where(store: Any, where: str | None) -> None:
    """Refuse a filter expression on a store that has no filter language (a Parquet folder).

    Raises:
        ValueError: ``where`` was given.
    """
    if where is not None and not getattr(store, "filters", False):
        raise ValueError(
            f"{store.location!r} is a Parquet folder, which takes no filter expression (--where); filter by "
            "modality with --only, or copy the corpus into LanceDB or Milvus (lco-embed export) to filter on "
            "columns."
        )
