"""Where a corpus job writes and a search reads: a Parquet folder, a LanceDB table or a Milvus collection, named by
one string and opened by :func:`open_store`.

=========================================  ==========================================================================
target                                     store
=========================================  ==========================================================================
``DIR``                                    a Parquet folder (:class:`~.parquet_store.OutputFolder`)
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
interrupted one left uncommitted.

What each caller needs of a store is a protocol of its role (:mod:`~.store_roles`, re-exported here):
:class:`StoreReader`, :class:`SearchableStore`, :class:`StoreWriter`, :class:`Store` (all three) and the
:class:`Capabilities` each store declares, so that no caller asks which kind of store it has.
"""

from __future__ import annotations

import os
from typing import Any

from lco_embedding.corpus.store_roles import Capabilities, SearchableStore, Store, StoreReader, StoreWriter
from lco_embedding.corpus.targets import DEFAULT_TABLE, is_store_uri, parse_lancedb, parse_milvus

__all__ = [
    "DEFAULT_TABLE",
    "Capabilities",
    "SearchableStore",
    "Store",
    "StoreReader",
    "StoreWriter",
    "is_store_uri",
    "open_store",
    "read_embeddings",
]


def open_store(target: str | os.PathLike[str]) -> Store:
    """The store ``target`` names (see the module).

    Raises:
        ValueError: A malformed target.
        ImportError: The store's client is not installed (names the extra).
    """
    if not is_store_uri(target):
        from lco_embedding.corpus.parquet_store import OutputFolder

        return OutputFolder(target)
    text = str(target)
    if text.startswith("lancedb://"):
        from lco_embedding.corpus.lance_store import LanceStore

        database, table = parse_lancedb(text)
        return LanceStore(database, table, text)
    from lco_embedding.corpus.milvus_store import MilvusStore

    address, collection = parse_milvus(text)
    return MilvusStore(address, collection, text)


def read_embeddings(path: str | os.PathLike[str], columns: list[str] | None = None) -> Any:
    """All committed rows of an output folder or store as one ``pyarrow.Table`` (``.to_pandas()`` for a
    DataFrame).

    Example:
        >>> from lco_embedding.corpus import encode_corpus
        >>> _ = encode_corpus(["captions.jsonl"], "embeddings", model=model, show_progress_bar=False)
        >>> table = read_embeddings("embeddings")
        >>> table.num_rows, len(table.column("embedding")[0])
        (2, 64)
    """
    store = open_store(path)
    try:
        return store.read_table(columns)
    finally:
        store.close()
