"""A corpus in a Milvus collection (``milvus://FILE.db/COLLECTION`` for milvus-lite, ``milvus://HOST:PORT/COLLECTION``
for a server or cluster; ``pip install 'lco-embedding[milvus]'``). The same pymilvus calls serve both.

Collection ``COLLECTION`` holds the rows: ``row`` (the primary key: the row's number), ``id``, ``source``,
``modality``, the segment columns, the input tables' other columns (nullable scalars; JSON values as their text) and
``embedding`` (a float vector, cosine, a FLAT index until ``lco-embed index`` builds HNSW). Collection
``COLLECTION__lco`` holds what a Parquet folder keeps in files: the manifest (in chunks, under a generation number)
and one row per failed item; its row ``head`` names the manifest's current generation.

Exactly once: a shard's rows are upserted by row number (writing them again after an interruption replaces them),
then its failures, then the manifest's chunks under a new generation; the one-row upsert of ``head`` commits them.
A resumed run deletes rows and failures past the committed counts; searches here keep only rows numbered below the
committed count, so they never see an uncommitted shard. That guard is applied here to the rows Milvus returns (it is
also sent along as a pre-filter): no ``where`` string can widen what a search keeps. A filter Milvus cannot parse is a
``ValueError`` of one line that names it.

Does not support two writers on one collection: milvus-lite refuses a second process on its file, a server does not
(a lock would need a coordination service).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.core.require import require
from lco_embedding.corpus.manifest_folder import catalog_name, committed_shards, first_row, now, shard_list
from lco_embedding.corpus.search_request import Scored, SearchRequest, in_order
from lco_embedding.corpus.store_roles import Capabilities
from lco_embedding.corpus.visibility import visible, written

__all__ = ["MilvusStore"]

logger = logging.getLogger(__name__)

META_SUFFIX = "__lco"
CHUNK_CHARS = 60_000
"""Characters of the manifest's JSON per row (ASCII, below Milvus's 65,535-byte VARCHAR)."""
WRITE_ROWS = 1000
MAX_TOP_K = 16_384
"""The most hits one Milvus search returns; a larger ``k`` is answered by the exact scan."""
SCAN_BATCH_ROWS = 1000
TEXT_BYTES = 65_535
_KINDS = {"string": "VARCHAR", "json": "VARCHAR", "int64": "INT64", "double": "DOUBLE", "bool": "BOOL"}
_FIXED = {"row", "id", "source", "modality", "embedding"}


def _pymilvus() -> Any:
    require("pymilvus", "milvus")
    import pymilvus

    return pymilvus


class MilvusStore:
    """A corpus in a Milvus collection (see the module).

    Args:
        address: A milvus-lite file (``.db``) or a server's ``http(s)://HOST:PORT``.
        collection: The rows' collection.
        target: The ``milvus://`` string it was opened from (for messages).
    """

    kind = "milvus"
    capabilities = Capabilities(filters=True, native_search=True, native_group_by=True, replaces_foreign_data=True)

    @property
    def output(self) -> str:
        """The output as a run's summary names it: the target."""
        return self.target

    def __init__(self, address: str, collection: str, target: str | None = None) -> None:
        _pymilvus()
        self.address, self.collection = address, collection
        self.meta = collection + META_SUFFIX
        self.target = target or f"milvus://{address}/{collection}"
        self.local = not address.startswith(("http://", "https://"))
        self._client: Any = None
        self._manifest: dict[str, Any] | None = None
        self._generation = 0

    # ---------------------------------------------------------------------------------------------- connection
    @property
    def location(self) -> str:
        """The ``milvus://`` target."""
        return self.target

    @property
    def errors_location(self) -> str:
        """Where the failures are: the meta collection's ``error:`` rows."""
        return f"collection {self.meta!r} of {self.address} (rows 'error:...'; read_errors() in Python)"

    def client(self) -> Any:
        """The pymilvus client (opening a milvus-lite file takes it for this process)."""
        if self._client is None:
            if self.local:
                _check_database(self.address)
                Path(self.address).parent.mkdir(parents=True, exist_ok=True)
                _check_unlocked(self.address)
            token = os.environ.get("MILVUS_TOKEN", "")
            try:
                self._client = _pymilvus().MilvusClient(self.address, token=token)
            except Exception as e:
                raise ConnectionError(f"cannot connect to Milvus at {self.address}: {e}") from e
        return self._client

    def lock(self) -> None:
        """Open the connection: a milvus-lite file then belongs to this process. A server has no lock."""
        self.client()

    def unlock(self) -> None:
        """Close the connection; a milvus-lite file is released for other processes."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.local:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(self.address)

    def close(self) -> None:
        """Release the connection (and a milvus-lite file)."""
        self.unlock()

    def _has(self, name: str) -> bool:
        return bool(self.client().has_collection(name))

    def _ready(self, name: str) -> None:
        state = self.client().get_load_state(name)
        if "NotLoad" in str(state.get("state", "")):
            self.client().load_collection(name)

    # ------------------------------------------------------------------------------------------------ manifest
    def exists(self) -> bool:
        """True when the meta collection names a committed manifest."""
        return self._has(self.meta) and bool(self._get_meta(["head"]))

    @property
    def manifest(self) -> dict[str, Any]:
        """The committed manifest.

        Raises:
            FileNotFoundError: The collection holds no lco-embed run.
        """
        if self._manifest is None:
            head = self._get_meta(["head"]) if self._has(self.meta) else {}
            if not head:
                raise FileNotFoundError(f"{self.location!r} holds no manifest: it is not an lco-embed output.")
            pointer = json.loads(head["head"])
            keys = [_chunk_key(pointer["generation"], i) for i in range(pointer["chunks"])]
            chunks = self._get_meta(keys)
            self._manifest = json.loads("".join(chunks[key] for key in keys))
            self._generation = pointer["generation"]
        return self._manifest

    def _get_meta(self, keys: list[str]) -> dict[str, str]:
        self._ready(self.meta)
        found = self.client().get(self.meta, ids=keys, output_fields=["key", "value"])
        return {row["key"]: row["value"] for row in found}

    def _upsert_meta(self, rows: list[tuple[str, str]]) -> None:
        data = [{"key": key, "value": value, "vector": [0.0, 0.0]} for key, value in rows]
        for start in range(0, len(data), WRITE_ROWS):
            self.client().upsert(self.meta, data[start : start + WRITE_ROWS])

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the manifest's chunks under a new generation, then point ``head`` at it: the commit."""
        manifest["updated"] = now()
        text = json.dumps(manifest, ensure_ascii=True)
        generation = self._generation + 1
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        self._upsert_meta([(_chunk_key(generation, i), chunk) for i, chunk in enumerate(chunks)])
        self._flush(self.meta)
        self._upsert_meta([("head", json.dumps({"generation": generation, "chunks": len(chunks)}))])
        self._flush(self.meta)
        old = [key for key in self._meta_keys("manifest:") if not key.startswith(_chunk_key(generation, 0)[:-6])]
        if old:
            self.client().delete(self.meta, ids=old)
        self._manifest, self._generation = manifest, generation

    def _meta_keys(self, prefix: str) -> list[str]:
        self._ready(self.meta)
        found = self.client().query(self.meta, filter=f'key like "{prefix}%"', output_fields=["key"])
        return [row["key"] for row in found]

    def _flush(self, name: str) -> None:
        self.client().flush(name)

    # ------------------------------------------------------------------------------------------------- writing
    def leftovers(self) -> list[str]:
        """A rows collection of that name that no run of ours made (ours come with the meta collection)."""
        return [f"collection {self.collection!r}"] if self._has(self.collection) and not self._has(self.meta) else []

    def clear(self) -> None:
        """Drop both collections (``--overwrite``)."""
        for name in (self.collection, self.meta):
            if self._has(name):
                self.client().drop_collection(name)
        self._manifest, self._generation = None, 0

    def create(self, manifest: dict[str, Any]) -> None:
        """Create both collections (the rows' schema from the manifest's columns) and commit the first manifest."""
        client, pymilvus = self.client(), _pymilvus()
        DataType = pymilvus.DataType
        if not self._has(self.meta):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("value", DataType.VARCHAR, max_length=TEXT_BYTES)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants one vector field
            index = client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="L2")
            client.create_collection(self.meta, schema=schema, index_params=index, consistency_level="Strong")
        if self._has(self.collection):  # ours, from a run that stopped before its first manifest
            client.drop_collection(self.collection)
        index = client.prepare_index_params()
        index.add_index("embedding", index_type="FLAT", metric_type="COSINE")
        client.create_collection(
            self.collection,
            schema=self._schema(manifest["columns"], manifest["dimension"]),
            index_params=index,
            consistency_level="Strong",
        )
        self.write_manifest(manifest)

    def _schema(self, columns: dict[str, str], dimension: int) -> Any:
        client, DataType = self.client(), _pymilvus().DataType
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("row", DataType.INT64, is_primary=True)
        for name, kind in columns.items():
            if name == "embedding":
                continue
            if name == "row" or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
                raise ValueError(
                    f"column {name!r} cannot be a Milvus field (names are letters, digits and '_', and 'row' is the "
                    "store's own): rename it in the input table, or write to LanceDB or a Parquet folder."
                )
            if name in ("id", "source"):
                schema.add_field(name, DataType.VARCHAR, max_length=TEXT_BYTES)
            elif name == "modality":
                schema.add_field(name, DataType.VARCHAR, max_length=64)
            else:
                kind_name = _KINDS[kind]
                extra = {"max_length": TEXT_BYTES} if kind_name == "VARCHAR" else {}
                schema.add_field(name, getattr(DataType, kind_name), nullable=True, **extra)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dimension)
        return schema

    def commit_shard(
        self,
        manifest: dict[str, Any],
        shard: dict[str, Any],
        table: Any,
        errors: list[dict[str, Any]],
        catalog: Any = None,
    ) -> None:
        """Upsert the shard's rows (by row number), failures and catalog entries, then commit the manifest."""
        first = first_row(manifest, shard)
        records = table.to_pylist()
        for number, record in enumerate(records, first):
            record["row"] = number
            record["embedding"] = np.asarray(record["embedding"], dtype=np.float32)
        for start in range(0, len(records), WRITE_ROWS):
            self.client().upsert(self.collection, records[start : start + WRITE_ROWS])
        self._flush(self.collection)
        self._upsert_meta([(_error_key(e["position"]), json.dumps(e, ensure_ascii=True)) for e in errors])
        entry = dict(shard)
        if catalog is not None:
            entry["catalog"] = self.write_catalog(shard["index"], catalog)
        shard_list(manifest).append(entry)
        manifest["errors_bytes"] = 0
        manifest["store"] = {"kind": self.kind, "collection": self.collection}
        self.write_manifest(manifest)

    def recover(self) -> None:
        """Delete rows and failures past the committed counts, and manifest chunks of other generations."""
        rows, positions = written(self.manifest)
        if self._has(self.collection):
            self._ready(self.collection)
            self.client().delete(self.collection, filter=f"row >= {rows}")
        stale = [key for key in self._meta_keys("error:") if _position(key) >= positions]
        generation = _chunk_key(self._generation, 0)[:-6]
        stale += [key for key in self._meta_keys("manifest:") if not key.startswith(generation)]
        named = {shard.get("catalog") for shard in committed_shards(self.manifest)}
        stale += [key for key in self._meta_keys("catalog:") if key.split(":")[1] not in named]
        if stale:
            self.client().delete(self.meta, ids=stale)
        self._flush(self.meta)

    # ------------------------------------------------------------------------------------------------- reading
    def read_errors(self) -> list[dict[str, Any]]:
        """The committed failures, in position order."""
        seen = visible(self.manifest)
        keys = sorted(key for key in self._meta_keys("error:") if seen.keeps_position(_position(key)))
        found = self._get_meta(keys) if keys else {}
        return [json.loads(found[key]) for key in keys]

    def _committed(self, where: str | None = None, modalities: frozenset[str] | None = None) -> str:
        parts = [f"row < {visible(self.manifest).next_row}"]
        if modalities:
            parts.append("modality in [" + ", ".join(json.dumps(m) for m in sorted(modalities)) + "]")
        if where:
            parts.append(f"({where})")
        return " and ".join(parts)

    def _fields(self) -> list[str]:
        return ["row", *(name for name in self.manifest["columns"] if name != "embedding")]

    def _scan(self, fields: list[str], where: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """The committed rows matching ``where``, in row order, :data:`SCAN_BATCH_ROWS` row numbers at a time (rows
        are numbered densely from 0, so ranges of the primary key page through them)."""
        if not self._has(self.collection):
            return
        self._ready(self.collection)
        seen = visible(self.manifest)
        for start in range(0, seen.next_row, SCAN_BATCH_ROWS):
            end = min(seen.next_row, start + SCAN_BATCH_ROWS)
            span = f"row >= {start} and row < {end}"
            with _filter_errors(where):
                batch = self.client().query(
                    self.collection, filter=span + (f" and ({where})" if where else ""), output_fields=fields
                )
            batch = [record for record in batch if start <= record["row"] < end]  # whatever the filter said
            if seen.hidden_rows and batch:
                keep = seen.keep(np.array([record["row"] for record in batch], dtype=np.int64))
                batch = [record for record, kept in zip(batch, keep, strict=True) if kept]
            if batch:
                yield sorted(batch, key=lambda r: r["row"])

    def iter_embeddings(
        self, columns: tuple[str, ...] = (), where: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, list]]]:
        """``(row numbers, [n, d] float32 vectors, {column: values})`` over the committed rows matching ``where``."""
        for batch in self._scan(["row", "embedding", *columns], where):
            rows = np.array([r["row"] for r in batch], dtype=np.int64)
            vectors = np.array([r["embedding"] for r in batch], dtype=np.float32)
            yield rows, vectors, {name: [r.get(name) for r in batch] for name in columns}

    def rows(self, numbers: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows ``numbers``, without their embedding, in the given order."""
        if not numbers:
            return []
        self._ready(self.collection)
        found = self.client().get(self.collection, ids=sorted(set(numbers)), output_fields=columns or self._fields())
        by_row = {int(values["row"]): {k: v for k, v in values.items() if k != "embedding"} for values in found}
        return in_order(numbers, by_row, self.location)

    def read_table(self, columns: list[str] | None = None) -> Any:
        """Every committed row, in row order (the rows' columns as the manifest lists them)."""
        import pyarrow as pa

        from lco_embedding.corpus.precision import arrow_type

        names = columns or ["row", *self.manifest["columns"]]
        records = [record for batch in self._scan([*self._fields(), "embedding"]) for record in batch]
        dimension = self.manifest["dimension"]
        types = {"row": pa.int64(), "embedding": arrow_type("float32", dimension)}
        for name, kind in self.manifest["columns"].items():
            if name not in types:
                types[name] = _arrow_kind(kind)
        data = {}
        for name in names:
            values = [r.get(name) for r in records]
            if name == "embedding":
                values = [list(map(float, v)) for v in values]
            data[name] = pa.array(values, types[name])
        return pa.table(data)

    # -------------------------------------------------------------------------------------------------- search
    def nearest(self, request: SearchRequest) -> list[Scored] | None:
        """Milvus's vector search (cosine; exact on the FLAT index, approximate on HNSW), grouped by a column with
        ``group_by``; None when an exact answer is asked of an HNSW index (the caller's scan)."""
        indexed = (self.manifest.get("index") or {}).get("type")
        request.refuse_unindexed(bool(indexed), self.location)
        if request.exact and indexed:
            return None
        if not self._has(self.collection) or not self.manifest["counts"]["embedded"]:
            return [[] for _ in request.queries]
        self._ready(self.collection)
        limit = request.k + self._uncommitted()  # room for rows the guard drops, should the filter let them through
        if limit > MAX_TOP_K:
            if request.exact is False:
                raise ValueError(f"Milvus returns at most {MAX_TOP_K:,} hits a search; ask for fewer (-k).")
            return None
        params: dict[str, Any] = {"metric_type": "COSINE"}
        if indexed:
            params["params"] = {"ef": max(64, limit)}
        with _filter_errors(request.where):
            found = self.client().search(
                self.collection,
                data=[np.asarray(q, dtype=np.float32) for q in request.queries],
                limit=limit,
                filter=self._committed(request.where, request.modalities),
                output_fields=["row", "modality"],
                search_params=params,
                **({"group_by_field": request.group_by} if request.group_by else {}),
            )
        seen = visible(self.manifest)
        return [
            request.kept(
                [int(h["row"]) for h in hits],
                [float(h["distance"]) for h in hits],
                [_field(h, "modality") for h in hits],
                seen,
            )
            for hits in found
        ]

    def _uncommitted(self) -> int:
        """Rows of the collection a reader does not see (past the committed rows, or dropped by an update): the
        most a search's guard can drop."""
        seen = visible(self.manifest)
        found = self.client().query(self.collection, filter=f"row >= {seen.next_row}", output_fields=["count(*)"])
        return (int(found[0]["count(*)"]) if found else 0) + seen.hidden_rows

    def row_vectors(self, numbers: list[int]) -> np.ndarray:
        """The float32 vectors of rows ``numbers``, in that order."""
        if not numbers:
            return np.zeros((0, self.manifest["dimension"]), np.float32)
        self._ready(self.collection)
        found = self.client().get(self.collection, ids=sorted(set(numbers)), output_fields=["row", "embedding"])
        by_row = {int(values["row"]): values["embedding"] for values in found}
        return np.array(in_order(numbers, by_row, self.location), dtype=np.float32)

    # ----------------------------------------------------------------------------------------------- catalog
    def write_catalog(self, index: int, table: Any) -> str:
        """Keep shard ``index``'s catalog entries in the meta collection (Parquet bytes, base64, in chunks); their
        name for the shard's manifest entry."""
        import base64

        from lco_embedding.corpus.catalog import table_bytes

        name = catalog_name(index)
        text = base64.b64encode(table_bytes(table)).decode("ascii")
        chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
        self._upsert_meta([(f"catalog:{name}:{number:06d}", chunk) for number, chunk in enumerate(chunks)])
        self._flush(self.meta)
        return name

    def read_catalog(self, name: str) -> Any:
        """The catalog chunk ``name`` as a ``pyarrow.Table``."""
        import base64

        from lco_embedding.corpus.catalog import table_from_bytes

        keys = sorted(self._meta_keys(f"catalog:{name}:"))
        found = self._get_meta(keys)
        return table_from_bytes(base64.b64decode("".join(found[key] for key in keys)))

    def build_index(self, *, connectivity: int | None = None, **_: Any) -> dict[str, Any]:
        """Replace the FLAT index with HNSW (cosine)."""
        client = self.client()
        m = connectivity or 16
        client.release_collection(self.collection)
        client.drop_index(self.collection, "embedding")
        index = client.prepare_index_params()
        index.add_index("embedding", index_type="HNSW", metric_type="COSINE", params={"M": m, "efConstruction": 200})
        client.create_index(self.collection, index)
        client.load_collection(self.collection)
        return {"kind": self.kind, "type": "HNSW", "rows": int(self.manifest["counts"]["embedded"]), "M": m}


def _field(hit: Any, name: str) -> Any:
    """A search hit's output field (pymilvus gives them under ``entity``, and at the top level in newer versions)."""
    entity = hit.get("entity") or {}
    return entity.get(name, hit.get(name))


@contextlib.contextmanager
def _filter_errors(where: str | None) -> Iterator[None]:
    """Milvus's refusal of a filter as a one-line ``ValueError`` naming it, without pymilvus's logged traceback."""
    rpc_log = logging.getLogger("pymilvus.decorators")
    level = rpc_log.level
    if where is not None:
        rpc_log.setLevel(logging.CRITICAL)
    try:
        yield
    except _pymilvus().MilvusException as e:
        if where is None:
            raise
        reason = " ".join(str(getattr(e, "message", e)).split("\n")[0].split())
        raise ValueError(f"Milvus cannot apply the filter {where!r}: {reason}") from None
    finally:
        rpc_log.setLevel(level)


def _check_database(path: str) -> None:
    """Refuse a path that exists but is not a milvus-lite database (a folder milvus-lite made), in one line, instead
    of milvus-lite's traceback and "Open local milvus failed"."""
    database = Path(path)
    if not database.exists():
        return
    if not database.is_dir() or (any(database.iterdir()) and not (database / "LOCK").exists()):
        raise ValueError(
            f"{path} is not a milvus-lite database (milvus-lite keeps one in a folder of its own): name a new .db path "
            "for a new store, or the .db folder an earlier lco-embed encode --out milvus://... made."
        )


def _check_unlocked(path: str) -> None:
    """Raise when another process holds a milvus-lite file (its ``LOCK``), instead of pymilvus's bare "Open local
    milvus failed"."""
    from milvus_lite.server_manager import server_manager_instance

    lock = Path(path) / "LOCK"
    if not lock.is_file() or os.path.abspath(path) in server_manager_instance._servers:  # ours already
        return
    try:
        import fcntl
    except ImportError:  # Windows: milvus-lite's own error stands
        return
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise RuntimeError(
                f"another process has {path} open (milvus-lite gives its file to one process at a time): wait for it "
                "to finish, or stop it."
            ) from e
        fcntl.flock(handle, fcntl.LOCK_UN)


def _chunk_key(generation: int, number: int) -> str:
    return f"manifest:{generation:012d}:{number:06d}"


def _error_key(position: int) -> str:
    return f"error:{position:015d}"


def _position(key: str) -> int:
    return int(key.split(":", 1)[1])


def _arrow_kind(kind: str) -> Any:
    import pyarrow as pa

    return {
        "string": pa.string(),
        "json": pa.string(),
        "int64": pa.int64(),
        "double": pa.float64(),
        "bool": pa.bool_(),
    }[kind]
