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
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.corpus.precision import to_float

__all__ = [
    "ERRORS_FILE",
    "FORMAT",
    "INDEX_FILE",
    "MANIFEST_FILE",
    "OutputFolder",
    "read_embeddings",
    "shard_name",
]

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

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None
        self._lock: Any = None

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

    def iter_embeddings(self, columns: tuple[str, ...] = ()) -> Iterator[tuple[int, np.ndarray, dict[str, list]]]:
        """Yield ``(first row, [n, d] float32 L2-normalised vectors, {column: values})`` one row group at a time.

        Shards are memory-mapped; at most one row group is decoded at a time. Rows are numbered from 0 over all
        shards in order.
        """
        import pyarrow.parquet as pq

        manifest = self.manifest
        precision, dimension = manifest["options"]["precision"], manifest["dimension"]
        ranges = manifest.get("int8_ranges")
        row = 0
        for path in self.shard_paths():
            parquet = pq.ParquetFile(path, memory_map=True)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=["embedding", *columns])
                if table.num_rows == 0:
                    continue
                flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
                values = flat.reshape(table.num_rows, -1)
                extra = {name: table.column(name).to_pylist() for name in columns}
                yield row, to_float(values, precision, dimension, ranges), extra
                row += table.num_rows

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

    def ours(self, name: str) -> bool:
        """True for the names this module writes into an output folder."""
        return (
            name in (MANIFEST_FILE, ERRORS_FILE, INDEX_FILE, LOCK_FILE)
            or (name.startswith("part-") and name.endswith(".parquet"))
            or (name.startswith(".") and name.endswith(".tmp"))
        )

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
        committed = {shard["file"] for shard in manifest["shards"]}
        for entry in self.path.iterdir():
            stray_shard = entry.name.startswith("part-") and entry.name.endswith(".parquet")
            temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
            if (stray_shard and entry.name not in committed) or temporary:
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
        self, manifest: dict[str, Any], shard: dict[str, Any], table: Any, errors: list[dict[str, Any]]
    ) -> None:
        """Write one shard and its errors, then commit them with the updated ``manifest``.

        Args:
            manifest: The manifest to commit; ``shard`` is appended to its shard list and ``errors_bytes`` set.
            shard: ``{"index", "start", "end", "rows", "failed"}`` (``file`` is set here).
            table: The shard's rows (a ``pyarrow.Table``).
            errors: One JSON object per failed item of the shard.
        """
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
        if errors:
            with open(self.errors_path, "ab") as f:
                for error in errors:
                    f.write((json.dumps(error, ensure_ascii=False) + "\n").encode())
                f.flush()
                os.fsync(f.fileno())
        _fsync_folder(self.path)
        manifest["shards"].append({"file": name, **shard})
        manifest["errors_bytes"] = self.errors_path.stat().st_size if self.errors_path.exists() else 0
        self.write_manifest(manifest)


def read_embeddings(path: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """All committed shards of an output folder as one ``pyarrow.Table`` (``.to_pandas()`` for a DataFrame).

    Example:
        >>> from lco_embedding.corpus import encode_corpus
        >>> _ = encode_corpus(["captions.jsonl"], "embeddings", model=model, show_progress_bar=False)
        >>> table = read_embeddings("embeddings")
        >>> np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).shape
        (2, 64)
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = OutputFolder(path)
    tables = [pq.read_table(p, columns=columns, memory_map=True) for p in folder.shard_paths()]
    if not tables:
        raise ValueError(f"{str(path)!r} has no committed shard yet.")
    return pa.concat_tables(tables, promote_options="default")
