"""The strings that name a store: ``DIR``, ``lancedb://PATH/TABLE``, ``milvus://FILE.db[/COLLECTION]`` and
``milvus://HOST:PORT[/COLLECTION]`` (:mod:`.stores` opens them)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["DEFAULT_TABLE", "is_store_uri", "parse_lancedb", "parse_milvus"]

DEFAULT_TABLE = "embeddings"
"""The table (LanceDB) or collection (Milvus) a target names when it names none."""
_SCHEMES = ("lancedb://", "milvus://", "milvus+http://", "milvus+https://")


def is_store_uri(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` names a LanceDB or Milvus store rather than a folder."""
    return isinstance(target, str) and target.startswith(_SCHEMES)


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
