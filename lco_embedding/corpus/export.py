"""Copy a finished (or partly written) Parquet output folder into a LanceDB table or a Milvus collection:
``lco-embed export FOLDER lancedb://...``.

The store gets the folder's manifest (model, options, inputs, counts), its shards one by one through the store's own
commit (so an interrupted export resumes where it stopped, as an interrupted job does) and its failures. Vectors
are copied as stored; a folder written with ``--precision int8`` or ``binary`` cannot be exported (stores keep
float32).
"""

from __future__ import annotations

import copy
import os
from typing import Any

__all__ = ["export_folder"]


def export_folder(
    folder: str | os.PathLike[str], target: str, *, overwrite: bool = False, show_progress_bar: bool = False
) -> dict[str, Any]:
    """Copy the Parquet output folder ``folder`` into the store ``target``; the store's manifest.

    Raises:
        ValueError: ``target`` is not a store, the folder is quantized, or the store holds another corpus (pass
            ``overwrite=True`` to replace it).
    """
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    from lco_embedding.corpus.parquet_store import OutputFolder
    from lco_embedding.corpus.stores import is_store_uri, open_store

    if not is_store_uri(target):
        raise ValueError(f"{target!r} is not a store: export to lancedb://PATH/TABLE or milvus://FILE.db/COLLECTION.")
    source = OutputFolder(folder)
    manifest = source.manifest
    if manifest["options"]["precision"] != "float32":
        raise ValueError(
            f"{source.location!r} holds {manifest['options']['precision']} vectors; stores keep float32: re-encode "
            "with --precision float32 (or straight into the store with --out)."
        )
    store = open_store(target)
    store.lock()
    try:
        if store.exists() and overwrite:
            store.clear()
        if store.exists():
            done = _check_resumable(store, manifest)
            store.recover()
            written = store.manifest
        else:
            if store.leftovers():
                raise ValueError(
                    f"{store.location!r} holds {', '.join(store.leftovers())}: pass overwrite=True (--overwrite) to "
                    "replace it."
                )
            written = _fresh(manifest)
            store.create(written)
            done = 0
        errors = source.read_errors()
        shards = manifest["shards"]
        for shard in tqdm(shards[done:], unit="shard", desc="Exporting", disable=not show_progress_bar):
            table = pq.read_table(source.path / shard["file"], memory_map=True)
            entry = {key: value for key, value in shard.items() if key not in ("file", "catalog")}
            entry.setdefault("row", written["counts"]["embedded"])
            written["counts"]["done"] = shard["end"]
            written["counts"]["embedded"] += shard["rows"]
            written["counts"]["failed"] += shard["failed"]
            failed = [e for e in errors if shard["start"] <= e["position"] < shard["end"]]
            catalog = source.read_catalog(shard["catalog"]) if shard.get("catalog") else None
            store.commit_shard(written, entry, table, failed, catalog)
        for key in ("status", "seconds", "index_source", "rows", "positions", "last_update"):
            if key in manifest:  # an updated folder's dropped rows and failures stay dropped
                written[key] = manifest[key]
        written["counts"] = dict(manifest["counts"])
        written["exported_from"] = str(source.path.resolve())
        store.write_manifest(written)
        return written
    finally:
        store.close()


def _fresh(manifest: dict[str, Any]) -> dict[str, Any]:
    written = copy.deepcopy(manifest)
    written.update(status="running", shards=[], errors_bytes=0, int8_ranges=None)
    written["counts"] = {"total": manifest["counts"]["total"], "done": 0, "embedded": 0, "failed": 0}
    for key in ("index", "calibration"):
        written.pop(key, None)
    return written


def _check_resumable(store: Any, manifest: dict[str, Any]) -> int:
    """The shards already exported, after checking the store holds the same corpus."""
    found = store.manifest
    same = all(found.get(key) == manifest.get(key) for key in ("model", "dimension", "options", "prompts", "inputs"))
    if not same:
        raise ValueError(
            f"{store.location!r} holds another corpus (other model, options or inputs): pass overwrite=True "
            "(--overwrite) to replace it."
        )
    return len(found["shards"])
