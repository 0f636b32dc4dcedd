"""The bookkeeping a store keeps in a folder: ``manifest.json`` (the commit point), ``errors.jsonl``, the catalog
chunks (:mod:`.catalog`) and the writer lock. A Parquet folder (:mod:`.parquet_store`) keeps them beside its
shards; a LanceDB store (:mod:`.lance_store`) in a sidecar folder beside its table. Each adds how it writes and
reads rows (:meth:`ManifestFolder.write_rows`).

Exactly once: rows, then a shard's catalog chunk, are written where no reader looks until the commit; its failures
are appended to ``errors.jsonl``; then the manifest, which names the committed shards, catalog chunks and the
committed length of ``errors.jsonl``, is replaced atomically. Whatever a kill leaves that the manifest does not name
(a temporary file, a stray chunk, a tail of ``errors.jsonl``) is removed by :meth:`ManifestFolder.recover`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lco_embedding.corpus.visibility import visible

__all__ = [
    "ERRORS_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ManifestFolder",
    "catalog_name",
    "first_row",
    "now",
    "refuse_where",
    "shard_list",
    "write_atomically",
]

FORMAT = "lco-embedding-corpus"
FORMAT_VERSION = 2
"""2: table rows are named (``id`` default, ``source``) by their line number, not their row count."""
MANIFEST_FILE = "manifest.json"
ERRORS_FILE = "errors.jsonl"
LOCK_FILE = ".lock"


def now() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def fsync_folder(path: Path) -> None:
    """Make a folder's renames durable (where the platform allows it; the rename is atomic either way)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes | None = None, write: Any = None) -> None:
    """Write ``data`` (or call ``write(file)``) to a hidden temporary file, sync it and rename it to ``path``."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as f:
        if write is not None:
            write(f)
        else:
            f.write(data or b"")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    fsync_folder(path.parent)


def catalog_name(index: int) -> str:
    """File (or blob) name of shard ``index``'s catalog entries."""
    return f"catalog-{index:05d}.parquet"


def first_row(manifest: dict[str, Any], shard: dict[str, Any]) -> int:
    """The number of a shard's first row: as the job numbered it (``shard["row"]``), else (a shard written before
    rows were numbered in their entries) right after the rows committed before it."""
    return int(shard.get("row", manifest["counts"]["embedded"] - shard["rows"]))


def shard_list(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a shard being committed is listed: the manifest's shards, or an update's while it stages its shards
    (they become visible when the update commits)."""
    update = manifest.get("update")
    return update["shards"] if update else manifest["shards"]


def committed_shards(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every shard the manifest names: committed, and staged by an update in progress."""
    return [*manifest["shards"], *(manifest.get("update") or {}).get("shards", [])]


def refuse_where(store: Any, where: str | None) -> None:
    """Refuse a filter expression on a store that has no filter language (a Parquet folder).

    Raises:
        ValueError: ``where`` was given.
    """
    if where is not None and not store.capabilities.filters:
        raise ValueError(
            f"{store.location!r} is a Parquet folder, which takes no filter expression (--where); filter by "
            "modality with --only, or copy the corpus into LanceDB or Milvus (lco-embed export) to filter on "
            "columns."
        )


class ManifestFolder:
    """A folder of a store's bookkeeping (see the module); subclasses add the rows.

    Args:
        path: The folder.
    """

    kind = "folder"
    """The store's kind (:mod:`lco_embedding.corpus.stores`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._manifest: dict[str, Any] | None = None
        self._lock: Any = None

    @property
    def location(self) -> str:
        """The store, for messages."""
        return str(self.path)

    @property
    def output(self) -> Path | str:
        """The output as a run's summary names it."""
        return self.location

    @property
    def errors_location(self) -> str:
        """Where the failed items are listed, for messages."""
        return str(self.errors_path)

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``."""
        return self.path / MANIFEST_FILE

    @property
    def errors_path(self) -> Path:
        """``errors.jsonl``."""
        return self.path / ERRORS_FILE

    # ------------------------------------------------------------------------------------------------- reading
    def exists(self) -> bool:
        """True when the folder holds a manifest."""
        return self.manifest_path.is_file()

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest.

        Raises:
            FileNotFoundError: No manifest (not an ``lco-embed encode`` output).
            ValueError: A manifest of another format, or of a newer version.
        """
        if self._manifest is None:
            if not self.exists():
                raise FileNotFoundError(
                    f"{self.location!r} has no {MANIFEST_FILE}: it is not an output folder of lco-embed encode."
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

    def read_errors(self) -> list[dict[str, Any]]:
        """The committed failures (one dict per failed item), in position order."""
        if not self.errors_path.exists():
            return []
        with open(self.errors_path, "rb") as f:
            text = f.read(self.manifest.get("errors_bytes", 0)).decode("utf-8")
        seen = visible(self.manifest)
        failures = (json.loads(line) for line in text.splitlines() if line.strip())
        return [failure for failure in failures if seen.keeps_position(failure["position"])]

    def read_catalog(self, name: str) -> Any:
        """The catalog chunk ``name`` as a ``pyarrow.Table``."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path / name)

    # ------------------------------------------------------------------------------------------------ the lock
    def lock(self) -> None:
        """Take the writer lock (released when the process ends, however it ends).

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
                f"another lco-embed process is writing to {self.location!r}; wait for it to finish, or stop it."
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

    # ------------------------------------------------------------------------------------------------- writing
    def ours(self, name: str) -> bool:
        """True for the names a run writes into the folder."""
        return (
            name in (MANIFEST_FILE, ERRORS_FILE, LOCK_FILE)
            or (name.startswith("catalog-") and name.endswith(".parquet"))
            or (name.startswith(".") and name.endswith(".tmp"))
        )

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

    def clear(self) -> None:
        """Delete every file a run wrote (for ``--overwrite``); other files are left alone."""
        for entry in self.path.iterdir() if self.path.is_dir() else []:
            if entry.is_file() and self.ours(entry.name) and entry.name != LOCK_FILE:
                entry.unlink()
        self._manifest = None

    def recover(self) -> None:
        """Remove what an interrupted run left that the manifest does not name; cut ``errors.jsonl`` to its
        committed length."""
        named = {shard.get(key) for shard in committed_shards(self.manifest) for key in ("file", "catalog")}
        for entry in self.path.iterdir():
            temporary = entry.name.startswith(".") and entry.name.endswith(".tmp")
            chunk = entry.name.endswith(".parquet") and self.ours(entry.name)
            if temporary or (chunk and entry.name not in named):
                entry.unlink()
        length = self.manifest.get("errors_bytes", 0)
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
        write_atomically(self.manifest_path, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode())
        self._manifest = manifest

    def write_rows(self, manifest: dict[str, Any], shard: dict[str, Any], table: Any) -> dict[str, Any]:
        """Write a shard's rows where no reader looks until the commit; the shard's manifest entry."""
        raise NotImplementedError

    def write_catalog(self, index: int, table: Any) -> str:
        """Write shard ``index``'s catalog entries where no reader looks until the commit; their name."""
        import pyarrow.parquet as pq

        name = catalog_name(index)
        write_atomically(self.path / name, write=lambda f: pq.write_table(table, f, compression="zstd"))
        return name

    def commit_shard(
        self,
        manifest: dict[str, Any],
        shard: dict[str, Any],
        table: Any,
        errors: list[dict[str, Any]],
        catalog: Any = None,
    ) -> None:
        """Write one shard's rows, failures and catalog entries, then commit them with the updated ``manifest``.

        Args:
            manifest: The manifest to commit; ``shard`` is appended to its shard list (to the update's, while an
                update stages its shards: :func:`shard_list`) and ``errors_bytes`` set.
            shard: ``{"index", "start", "end", "row", "rows", "failed"}``.
            table: The shard's rows (a ``pyarrow.Table``).
            errors: One JSON object per failed item of the shard.
            catalog: Its records' catalog entries (:func:`lco_embedding.corpus.catalog.entries_table`), or None.
        """
        entry = self.write_rows(manifest, shard, table)
        if catalog is not None:
            entry["catalog"] = self.write_catalog(shard["index"], catalog)
        if errors:
            with open(self.errors_path, "ab") as f:
                for error in errors:
                    f.write((json.dumps(error, ensure_ascii=False) + "\n").encode())
                f.flush()
                os.fsync(f.fileno())
        fsync_folder(self.path)
        shard_list(manifest).append(entry)
        manifest["errors_bytes"] = self.errors_path.stat().st_size if self.errors_path.exists() else 0
        self.write_manifest(manifest)
