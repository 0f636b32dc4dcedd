"""Output folders and stores written directly through the store (no model), for the store and search tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lco_embedding.corpus.manifest_folder import FORMAT, FORMAT_VERSION
from lco_embedding.corpus.precision import calibrate, to_arrow
from lco_embedding.corpus.stores import open_store


def write_folder(
    path, vectors, modalities=None, *, shard_size=25, precision="float32", errors_every=0, extras=None, segments=None
):
    """Commit ``vectors`` as shards of ``shard_size`` positions into a folder or store (``path``: a folder, or a
    ``lancedb://`` / ``milvus://`` target); every ``errors_every``-th position fails. ``extras``: ``{column: (kind,
    values by position)}``; ``segments``: ``(segment, start, end)`` by position."""
    n, dimension = vectors.shape
    modalities = modalities or ["text"] * n
    extras = extras or {}
    store = open_store(path)
    store.lock()
    columns = {"id": "string", "source": "string", "modality": "string", "embedding": "vector"}
    if segments:
        columns.update(segment="int64", start="double", end="double")
    columns.update({name: kind for name, (kind, _) in extras.items()})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "dimension": dimension,
        "options": {"precision": precision, "normalize": True, "shard_size": shard_size},
        "columns": columns,
        "int8_ranges": calibrate(vectors) if precision == "int8" else None,
        "counts": {"total": n, "done": 0, "embedded": 0, "failed": 0},
        "shards": [],
        "errors_bytes": 0,
    }
    store.create(manifest)
    for index, start in enumerate(range(0, n, shard_size)):
        positions = range(start, min(n, start + shard_size))
        failed = [p for p in positions if errors_every and p % errors_every == errors_every - 1]
        kept = [p for p in positions if p not in failed]
        data = {
            "id": pa.array([f"item-{p}" for p in kept], pa.string()),
            "source": pa.array([f"/data/{p // 2 if segments else p}" for p in kept], pa.string()),
            "modality": pa.array([modalities[p] for p in kept], pa.string()),
            "embedding": to_arrow(vectors[kept].reshape(len(kept), dimension), precision, manifest["int8_ranges"]),
        }
        if segments:
            for i, (name, kind) in enumerate((("segment", pa.int64()), ("start", pa.float64()), ("end", pa.float64()))):
                data[name] = pa.array([segments[p][i] for p in kept], kind)
        for name, (kind, values) in extras.items():
            data[name] = pa.array([values[p] for p in kept], _ARROW[kind]())
        errors = [{"position": p, "id": f"item-{p}", "error": "broken"} for p in failed]
        manifest["counts"].update(done=positions[-1] + 1)
        manifest["counts"]["embedded"] += len(kept)
        manifest["counts"]["failed"] += len(failed)
        entry = {"index": index, "start": start, "end": positions[-1] + 1, "rows": len(kept), "failed": len(failed)}
        store.commit_shard(manifest, entry, pa.table(data), errors)
    manifest["status"] = "complete"
    store.write_manifest(manifest)
    store.close()
    return store


_ARROW = {"string": pa.string, "int64": pa.int64, "double": pa.float64, "bool": pa.bool_}


@pytest.fixture
def unit_vectors():
    def make(n, d, seed=0):
        x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return make
