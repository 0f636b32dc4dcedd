"""A corpus in a LanceDB table (``lancedb://PATH/TABLE``, ``pip install 'lco-embedding[lancedb]'``).

The rows live in table ``TABLE`` of the LanceDB database in folder ``PATH``: ``row``, ``id``, ``source``,
``modality``, the segment columns, ``embedding`` (a fixed-size list of float32: LanceDB's vector column) and the
input tables' other columns. What a Parquet folder keeps beside its shards — ``manifest.json`` (the commit point),
``errors.jsonl``, the writer lock — is kept in ``PATH/TABLE.lco-embedding/``, which LanceDB does not list as a
table.

Exactly once: a shard's rows are appended in one LanceDB write (a new table version: all of them or none), then
the shard's failures and the manifest are committed as in a folder. Rows past the manifest's count (a write the
manifest never committed) are invisible to the search here, which keeps only rows numbered below that count, and are
deleted when a run resumes. A LanceDB reader of the table itself sees them until then. The guard is applied here, to
the rows LanceDB returns, not by pasting it beside the user's filter: no ``where`` string can widen what it keeps.

Does not support a database on object storage (``s3://``): ``PATH`` is a local folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.core.require import require
from lco_embedding.corpus.manifest_folder import ManifestFolder, first_row
from lco_embedding.corpus.search_request import Scored, SearchRequest, in_order
from lco_embedding.corpus.store_roles import Capabilities
from lco_embedding.corpus.visibility import visible, written

__all__ = ["LanceStore"]

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".lco-embedding"
SCAN_BATCH_ROWS = 4096
MIN_INDEX_ROWS = 256
"""Fewer rows than this get no ANN index: LanceDB's brute-force search is exact and fast at that size."""


def _filtered(read: Any, where: str | None) -> Any:
    """``read()``, with LanceDB's complaint about a malformed ``where`` turned into one line that names the filter."""
    try:
        return read()
    except ValueError as e:
        raise _filter_error(e, where) from None


def _filtered_batches(read: Any, where: str | None) -> Iterator[Any]:
    """The batches ``read()`` returns, a malformed ``where`` reported as :func:`_filtered` does."""
    try:
        yield from read()
    except ValueError as e:
        raise _filter_error(e, where) from None


def _filter_error(error: ValueError, where: str | None) -> ValueError:
    if where is None:
        return error
    reason = str(error).replace("Invalid input, ", "").splitlines()[0]
    return ValueError(f"LanceDB cannot apply the filter {where!r}: {reason}")


def _lancedb() -> Any:
    require("lancedb", "lancedb")
    import lancedb

    return lancedb


class LanceStore(ManifestFolder):
    """A corpus in a LanceDB table (see the module).

    Args:
        database: The LanceDB database folder.
        table: The table's name.
        target: The ``lancedb://`` string it was opened from (for messages).
    """

    kind = "lancedb"
    capabilities = Capabilities(filters=True, native_search=True, native_group_by=False, replaces_foreign_data=True)

    @property
    def output(self) -> str:
        """The output as a run's summary names it: the target."""
        return self.target

    def __init__(self, database: str | Path, table: str, target: str | None = None) -> None:
        _lancedb()
        self.database, self.table_name = Path(database), table
        self.target = target or f"lancedb://{database}/{table}"
        super().__init__(self.database / f"{table}{SIDECAR_SUFFIX}")
        self._connection: Any = None

    @property
    def location(self) -> str:
        """The ``lancedb://`` target."""
        return self.target

    # ------------------------------------------------------------------------------------------------- the table
    def connection(self) -> Any:
        """The LanceDB connection to the database folder."""
        if self._connection is None:
            self._connection = _lancedb().connect(str(self.database))
        return self._connection

    def _table_names(self) -> list[str]:
        listed = self.connection().list_tables()
        return list(getattr(listed, "tables", listed))

    def has_table(self) -> bool:
        """True when the database holds the table."""
        return self.table_name in self._table_names()

    def table(self) -> Any:
        """The LanceDB table (the latest version)."""
        return self.connection().open_table(self.table_name)

    def _committed(self, where: str | None = None) -> str:
        """The filter that keeps committed rows (and ``where``). Only a pre-filter: a ``where`` that closes its
        parenthesis can widen it, so every reader also keeps only the rows :func:`~.visibility.visible` keeps."""
        committed = f"row < {self.committed_rows()}"
        return f"({committed}) AND ({where})" if where else committed

    def committed_rows(self) -> int:
        """Rows numbered below this are committed (:mod:`.visibility`: less those an update dropped)."""
        return visible(self.manifest).next_row

    def _uncommitted(self) -> int:
        """How many rows of the table a reader does not see (uncommitted or dropped): the most a search's guard
        can drop."""
        seen = visible(self.manifest)
        return max(0, self.table().count_rows() - seen.next_row) + seen.hidden_rows

    # -------------------------------------------------------------------------------------------------- writing
    def leftovers(self) -> list[str]:
        """A table of that name that no run of ours wrote, or files in the sidecar folder."""
        found = [f"table {self.table_name!r}"] if self.database.is_dir() and self.has_table() else []
        return found + super().leftovers()

    def clear(self) -> None:
        """Drop the table and the sidecar folder's files (``--overwrite``)."""
        if self.database.is_dir() and self.has_table():
            self.connection().drop_table(self.table_name)
        super().clear()

    def recover(self) -> None:
        """Remove the rows and failures an interrupted run wrote after its last commit."""
        super().recover()
        if self.has_table():
            table = self.table()
            rows, _ = written(self.manifest)
            if table.count_rows(f"row >= {rows}"):
                table.delete(f"row >= {rows}")

    def write_rows(self, manifest: dict[str, Any], shard: dict[str, Any], table: Any) -> dict[str, Any]:
        """Append the shard's rows to the table in one write (one new version), numbered from the rows committed
        before them; the shard's manifest entry."""
        import pyarrow as pa

        first = first_row(manifest, shard)
        if table.num_rows:
            rows = pa.array(np.arange(first, first + table.num_rows, dtype=np.int64))
            table = table.add_column(0, "row", rows)
            if self.has_table():
                self.table().add(table)
            else:
                self.database.mkdir(parents=True, exist_ok=True)
                self.connection().create_table(self.table_name, table)
        manifest["store"] = {"kind": self.kind, "table": self.table_name}
        return dict(shard)

    # -------------------------------------------------------------------------------------------------- reading
    def iter_embeddings(
        self, columns: tuple[str, ...] = (), where: str | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, list]]]:
        """``(row numbers, [n, d] float32 vectors, {column: values})`` over the committed rows matching ``where``."""
        if not self.has_table():
            return
        query = self.table().search().where(self._committed(where)).select(["row", "embedding", *columns])
        for batch in _filtered_batches(lambda: query.limit(None).to_batches(batch_size=SCAN_BATCH_ROWS), where):
            rows = batch.column("row").to_numpy(zero_copy_only=False).astype(np.int64)
            keep = visible(self.manifest).keep(rows)  # the guard no filter string can change
            if not keep.any():
                continue
            flat = batch.column("embedding").flatten().to_numpy(zero_copy_only=False)
            vectors = flat.reshape(batch.num_rows, -1).astype(np.float32, copy=False)
            extra = {name: [v for v, ok in zip(batch.column(name).to_pylist(), keep, strict=True) if ok]
                     for name in columns}  # fmt: skip
            yield rows[keep], vectors[keep], extra

    def rows(self, numbers: list[int], columns: list[str] | None = None) -> list[dict[str, Any]]:
        """The rows ``numbers``, without their embedding, in the given order."""
        if not numbers:
            return []
        names = list(dict.fromkeys(["row", *(columns or [n for n in self.table().schema.names if n != "embedding"])]))
        wanted = ", ".join(str(int(n)) for n in sorted(set(numbers)))
        found = self.table().search().where(f"row IN ({wanted})").select(names).limit(None).to_arrow().to_pylist()
        return in_order(numbers, {int(values["row"]): values for values in found}, self.location)

    def read_table(self, columns: list[str] | None = None) -> Any:
        """Every committed row, in row order."""
        if not self.has_table():
            raise ValueError(f"{self.location!r} has no committed row yet.")
        query = self.table().search().where(self._committed())
        if columns:
            query = query.select(list(dict.fromkeys(["row", *columns])))
        table = query.limit(None).to_arrow().sort_by("row")
        keep = visible(self.manifest).keep(table.column("row").to_numpy())
        table = table if keep.all() else table.filter(keep)
        return table.select(columns) if columns else table

    def row_vectors(self, numbers: list[int]) -> np.ndarray:
        """The float32 vectors of rows ``numbers``, in that order."""
        if not numbers:
            return np.zeros((0, self.manifest["dimension"]), np.float32)
        wanted = ", ".join(str(int(n)) for n in sorted(set(numbers)))
        found = self.table().search().where(f"row IN ({wanted})").select(["row", "embedding"]).limit(None).to_arrow()
        flat = found.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        by_row = dict(zip(found.column("row").to_pylist(), flat.reshape(found.num_rows, -1), strict=True))
        return np.stack(in_order(numbers, by_row, self.location)).astype(np.float32, copy=False)

    # --------------------------------------------------------------------------------------------------- search
    def nearest(self, request: SearchRequest) -> list[Scored] | None:
        """LanceDB's vector search (cosine; brute force unless an index exists and ``exact`` is not True), or None
        for grouping (the caller's exact scan)."""
        if request.group_by is not None:
            return None
        request.refuse_unindexed(bool((self.manifest.get("index") or {}).get("type")), self.location)
        if not self.has_table():
            return [[] for _ in request.queries]
        where = request.where
        if request.modalities:
            listed = ", ".join("'" + m.replace("'", "''") + "'" for m in sorted(request.modalities))
            where = f"modality IN ({listed})" + (f" AND ({where})" if where else "")
        table, seen = self.table(), visible(self.manifest)
        limit = request.k + self._uncommitted()  # room for rows the guard drops, should the filter let them through
        results = []
        for query in request.queries:
            search = table.search(query, vector_column_name="embedding").metric("cosine")
            search = search.where(self._committed(where), prefilter=True).select(["row", "modality", "_distance"])
            search = search.limit(limit)
            if request.exact:
                search = search.bypass_vector_index()
            found = _filtered(search.to_arrow, request.where)
            cosines = 1.0 - found.column("_distance").to_numpy(zero_copy_only=False)
            rows = found.column("row").to_numpy(zero_copy_only=False)
            results.append(request.kept(rows, cosines, found.column("modality").to_pylist(), seen))
        return results

    def build_index(self, *, connectivity: int | None = None, **_: Any) -> dict[str, Any]:
        """An IVF-HNSW index (scalar-quantised) over the embeddings, cosine; none below :data:`MIN_INDEX_ROWS`
        rows (the search is exact there anyway)."""
        rows = int(self.manifest["counts"]["embedded"])
        if rows < MIN_INDEX_ROWS:
            logger.warning(
                "%s has %d rows: below %d LanceDB searches by brute force, exactly and fast; no index built.",
                self.location,
                rows,
                MIN_INDEX_ROWS,
            )
            return {"kind": self.kind, "type": None, "rows": rows}
        partitions = max(1, min(256, rows // 4096))
        from lancedb.index import IvfHnswSq

        config = IvfHnswSq(distance_type="cosine", num_partitions=partitions, m=connectivity or 20)
        self.table().create_index("embedding", config=config, replace=True)
        return {"kind": self.kind, "type": "IVF_HNSW_SQ", "rows": rows, "partitions": partitions}
