"""An output folder of Parquet shards: the default store of a corpus job.

Layout::

    DIR/manifest.json        model, revision, prompts, options, dimension, counts, inputs, the shard list
    DIR/part-00000.parquet   id, source, modality, embedding, extra input columns (one shard per shard_size
    DIR/part-00001.parquet   input positions; failed items have no row)
    DIR/catalog-00000.parquet  each shard's records: key, fingerprint, rows (what an update compares)
    DIR/errors.jsonl         one JSON object per failed item: position, id, source, modality, error
    DIR/index.usearch        optional approximate index (``lco-embed index``)

A shard is written to a hidden temporary file, synced and renamed into place, then committed with the manifest
(:mod:`.manifest_folder`: the commit point, the lock, the failures and the recovery of what a kill left). A lock file
keeps two writers out of one folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lco_embedding.corpus.manifest_folder import ManifestFolder, refuse_where, write_atomically
from lco_embedding.corpus.precision import to_float
from lco_embedding.corpus.search_request import Scored, SearchRequest, in_order
from lco_embedding.corpus.store_roles import Capabilities
from lco_embedding.corpus.visibility import visible

__all__ = ["INDEX_FILE", "OutputFolder", "shard_name"]

logger = logging.getLogger(__name__)

INDEX_FILE = "index.usearch"
ROW_GROUP_ROWS = 4096
"""Rows per Parquet row group: the unit the exact search reads at a time."""


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"part-{index:05d}.parquet"


class OutputFolder(ManifestFolder):
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
    capabilities = Capabilities(filters=False, native_search=False, native_group_by=False, replaces_foreign_data=False)
    """No filter language (``modalities`` filter every store); a folder's usearch index does not answer a search of
    one modality (the scan does); a folder's foreign files are never deleted."""
    index_file = INDEX_FILE

    @property
    def output(self) -> Path | str:
        """The output as a run's summary names it: the folder's path."""
        return self.path

    def ours(self, name: str) -> bool:
        """True for the names a run writes into an output folder: the bookkeeping, shards and the index."""
        return super().ours(name) or name == INDEX_FILE or (name.startswith("part-") and name.endswith(".parquet"))

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
        return in_order(numbers, found, self.location)

    def nearest(self, request: SearchRequest) -> list[Scored] | None:
        """The usearch index's hits when it is current and asked for (or not refused), else None (the caller scans
        the shards exactly).

        Raises:
            ValueError: ``exact=False`` without a current index, or with a modality filter or grouping.
        """
        from lco_embedding.corpus.folder_index import index_is_current, search_index

        refuse_where(self, request.where)
        current = index_is_current(self)
        narrowed = request.modalities or request.group_by
        if request.exact is False:
            request.refuse_unindexed(current, self.location)
            if narrowed:
                raise ValueError("a modality filter or grouping needs the exact search.")
            return search_index(self, request.queries, request.k)
        if request.exact is None and current and not narrowed:
            return search_index(self, request.queries, request.k)
        if request.exact is None and (self.manifest.get("index") or {}).get("file") and not current:
            logger.warning("The index does not cover every row (re-run lco-embed index); searching exactly instead.")
        return None

    def build_index(
        self, *, dtype: str = "f16", connectivity: int | None = None, show_progress_bar: bool = False, **_: Any
    ) -> dict[str, Any]:
        """Build ``DIR/index.usearch`` (``pip install 'lco-embedding[index]'``); the manifest's entry for it."""
        from lco_embedding.corpus.folder_index import build_folder_index

        return build_folder_index(self, dtype, connectivity, show_progress_bar)

    def write_rows(self, manifest: dict[str, Any], shard: dict[str, Any], table: Any) -> dict[str, Any]:
        """Write a shard's rows where no reader looks until the commit; the shard's manifest entry."""
        import pyarrow.parquet as pq

        name = shard_name(shard["index"])
        write_atomically(
            self.path / name,
            write=lambda f: pq.write_table(
                table,
                f,
                row_group_size=ROW_GROUP_ROWS,
                compression={column: "none" if column == "embedding" else "zstd" for column in table.column_names},
                use_dictionary=[c for c in table.column_names if c != "embedding"],
            ),
        )
        return {"file": name, **shard}
