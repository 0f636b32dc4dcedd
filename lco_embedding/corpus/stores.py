"""Where a corpus job writes and a search reads: a Parquet folder, a LanceDB table or a Milvus collection, named by
one string and opened by :func:`open_store`.

=========================================  ==========================================================================
target                                     store
=========================================  ==========================================================================
``DIR``                                    a Parquet folder (:class:`~lco_embedding.corpus.store.OutputFolder`)
``lancedb://PATH/TABLE``                   table ``TABLE`` of the LanceDB database in folder ``PATH``
``lancedb://NAME``                         table ``embeddings`` of the database in folder ``NAME`` (one path part)
``milvus://FILE.db[/COLLECTION]``          a collection in a milvus-lite file (default collection ``embeddings``)
``milvus://HOST:PORT[/COLLECTION]``        a collection on a Milvus server (``milvus+https://`` for TLS; the token
                                           from ``MILVUS_TOKEN``)
=========================================  ==========================================================================

Every store keeps what a Parquet folder keeps: the manifest (the commit point: model, options, counts, the committed
shards), the failures and the rows (``row``, ``id``, ``source``, ``modality``, the segment columns, ``embedding``
and the tables' other columns), written one shard at a time and committed exactly once; a store adds a ``row``
column, the row's number, which makes a shard's rows idempotent to write again and lets a resumed run remove what an
interrupted one left uncommitted. The :class:`Store` protocol is what the corpus job, the search and the index use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lco_embedding.corpus.store import OutputFolder

__all__ = ["DEFAULT_TABLE", "Store", "is_store_uri", "open_store", "read_embeddings"]

DEFAULT_TABLE = "embeddings"
"""The table (LanceDB) or collection (Milvus) a target names when it names none."""
_SCHEMES = ("lancedb://", "milvus://", "milvus+http://", "milvus+https://")


class Store(Protocol):
    """What the corpus job, the search and the index need of a store (see the module)."""

    kind: str
    filters: bool
    """True when the store takes filter expressions (``where``)."""
    native_search: bool
    """True when the store's own vector search answers a search of one modality."""
    native_group_by: bool
    """True when the store's own search groups hits by a column."""
    replaces_foreign_data: bool
    """True when ``--overwrite`` replaces data another program left under the target."""

    @property
    def output(self) -> Any:
        """The output as a run's summary names it (a folder's path, a store's target)."""
        ...

    @property
    def location(self) -> str:
        """The store's target, for messages."""
        ...

    @property
    def errors_location(self) -> str:
        """Where its failures are listed, for messages."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest (``FileNotFoundError`` when there is none)."""
        ...

    def exists(self) -> bool:
        """True when the store holds a manifest."""
        ...

    def lock(self) -> None:
        """Take the writer lock (``RuntimeError`` when another writer holds it)."""
        ...

    def unlock(self) -> None:
        """Release the writer lock."""
        ...

    def close(self) -> None:
        """Release what the store holds (its lock, its connection: a milvus-lite file is then free for others)."""
        ...

    def leftovers(self) -> list[str]:
        """What a store without a manifest already holds (a fresh run refuses to write beside it)."""
        ...

    def clear(self) -> None:
        """Delete everything the store's runs wrote (``--overwrite``)."""
        ...

    def create(self, manifest: dict[str, Any]) -> None:
        """Start a fresh run with its first manifest."""
        ...

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically: the commit."""
        ...

    def recover(self) -> None:
        """Remove what an interrupted run wrote after its last commit."""
        ...

    def commit_shard(
        self, manifest: dict[str, Any], shard: dict[str, Any], table: Any, errors: list[dict[str, Any]]
    ) -> None:
        """Write one shard's rows and failures, then commit them with ``manifest``."""
        ...

    def read_errors(self) -> list[dict[str, Any]]:
        """The committed failures."""
        ...

    def iter_embeddings(
        self, columns: tuple[str, ...] = (), where: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, list]]]:
        """``(row numbers, [n, d] float32 vectors, {column: values})`` over every committed row, a batch at a
        time (rows matching ``where`` only)."""
        ...

    def rows(self, numbers: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows ``numbers`` without their embeddings, in the given order."""
        ...

    def read_table(self, columns: list[str] | None = None) -> Any:
        """Every committed row as one ``pyarrow.Table``."""
        ...

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
        """The store's own search: ``(cosine, row)`` per query, best first; None where the store leaves it to the
        exact scan over :meth:`iter_embeddings`."""
        ...

    def build_index(self, **options: Any) -> str:
        """Build the store's approximate index over every committed row; a sentence saying what was built."""
        ...


def is_store_uri(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` names a LanceDB or Milvus store rather than a folder."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


def open_store(target: str | os.PathLike[str]) -> Store:
    """The store ``target`` names (see the module).

    Raises:
        ValueError: A malformed target.
        ImportError: The store's client is not installed (names the extra).
    """
    if not is_store_uri(target):
        return OutputFolder(target)
    text = str(target)
    if text.startswith("lancedb://"):
        from lco_embedding.corpus.lance_store import LanceStore

        database, table = parse_lancedb(text)
        return LanceStore(database, table, text)
    from lco_embedding.corpus.milvus_store import MilvusStore

    address, collection = parse_milvus(text)
    return MilvusStore(address, collection, text)


def parse_lancedb(target: str) -> tuple[Path, str]:
    """``lancedb://PATH/TABLE`` -> (database folder, table); one path part names the database (table
    ``embeddings``).

    Raises:
        ValueError: No path, a URL (``lancedb://s3://...``: object storage is not supported), or a table name
            LanceDB does not accept.
    """
    rest = target.removeprefix("lancedb://")
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:/", rest):
        raise ValueError(
            f"{target!r} names a database on object storage or behind a URL ({rest.split(':', 1)[0]}://), which "
            "lco-embed does not write to: give a local folder, lancedb://PATH/TABLE."
        )
    if not rest.strip("/"):
        raise ValueError(
            f"{target!r} names no database folder: write lancedb://PATH/TABLE (e.g. lancedb://emb/corpus)."
        )
    path = Path(os.path.normpath(rest))
    if len(path.parts) == 1 or (path.is_absolute() and len(path.parts) == 2):
        database, table = path, DEFAULT_TABLE
    else:
        database, table = path.parent, path.name
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", table) or table.startswith("."):
        raise ValueError(f"{table!r} is not a table name LanceDB takes (letters, digits, '_', '-', '.').")
    return database, table


def parse_milvus(target: str) -> tuple[str, str]:
    """``milvus://FILE.db[/COLLECTION]`` or ``milvus://HOST:PORT[/COLLECTION]`` (``milvus+https://`` for TLS) ->
    (the address pymilvus connects to: a local file or an http(s) URL, the collection).

    Raises:
        ValueError: Neither a ``.db`` file nor ``HOST:PORT``, or a collection name Milvus does not accept.
    """
    scheme, _, rest = target.partition("://")
    collection = DEFAULT_TABLE
    parts = rest.split("/")
    local = [i for i, part in enumerate(parts) if part.endswith(".db")]
    if local:
        end = local[-1]
        address = os.path.normpath("/".join(parts[: end + 1]) or "/")
        rest_parts = [p for p in parts[end + 1 :] if p]
    elif parts and re.fullmatch(r"[\w.\-]+:\d+", parts[0]):
        address = ("https://" if scheme == "milvus+https" else "http://") + parts[0]
        rest_parts = [p for p in parts[1:] if p]
    else:
        raise ValueError(
            f"{target!r} names neither a milvus-lite file (milvus://PATH.db[/COLLECTION]) nor a server "
            "(milvus://HOST:PORT[/COLLECTION])."
        )
    if len(rest_parts) > 1:
        raise ValueError(
            f"{target!r}: give one collection name after the file or server, got {'/'.join(rest_parts)!r}."
        )
    if rest_parts:
        collection = rest_parts[0]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,200}", collection):
        raise ValueError(f"{collection!r} is not a collection name Milvus takes (letters, digits and '_').")
    return address, collection


def read_embeddings(path: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """All committed rows of an output folder or store as one ``pyarrow.Table`` (``.to_pandas()`` for a
    DataFrame).

    Example:
        >>> from lco_embedding.corpus import encode_corpus
        >>> _ = encode_corpus(["captions.jsonl"], "embeddings", model=model, show_progress_bar=False)
        >>> table = read_embeddings("embeddings")
        >>> np.stack(table.column("embedding").to_numpy(zero_copy_only=False)).shape
        (2, 64)
    """
    store = open_store(path)
    try:
        return store.read_table(columns)
    finally:
        store.close()
