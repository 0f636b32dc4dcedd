"""Output folders written directly through the store (no model), for the store and search tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from lco_embedding.corpus.precision import calibrate, to_arrow
from lco_embedding.corpus.store import FORMAT, FORMAT_VERSION, OutputFolder


def write_folder(path, vectors, modalities=None, *, shard_size=25, precision="float32", errors_every=0):
    """Commit ``vectors`` as shards of ``shard_size`` positions; every ``errors_every``-th position fails."""
    n, dimension = vectors.shape
    modalities = modalities or ["text"] * n
    folder = OutputFolder(path)
    folder.lock()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "dimension": dimension,
        "options": {"precision": precision, "normalize": True, "shard_size": shard_size},
        "int8_ranges": calibrate(vectors) if precision == "int8" else None,
        "counts": {"total": n, "done": 0, "embedded": 0, "failed": 0},
        "shards": [],
        "errors_bytes": 0,
    }
    folder.create(manifest)
    for index, start in enumerate(range(0, n, shard_size)):
        positions = range(start, min(n, start + shard_size))
        failed = [p for p in positions if errors_every and p % errors_every == errors_every - 1]
        kept = [p for p in positions if p not in failed]
        table = pa.table(
            {
                "id": [f"item-{p}" for p in kept],
                "source": [f"/data/{p}" for p in kept],
                "modality": [modalities[p] for p in kept],
                "embedding": to_arrow(vectors[kept].reshape(len(kept), dimension), precision, manifest["int8_ranges"]),
            }
        )
        errors = [{"position": p, "id": f"item-{p}", "error": "broken"} for p in failed]
        manifest["counts"].update(done=positions[-1] + 1)
        manifest["counts"]["embedded"] += len(kept)
        manifest["counts"]["failed"] += len(failed)
        entry = {"index": index, "start": start, "end": positions[-1] + 1, "rows": len(kept), "failed": len(failed)}
        folder.commit_shard(manifest, entry, table, errors)
    manifest["status"] = "complete"
    folder.write_manifest(manifest)
    folder.unlock()
    return folder


@pytest.fixture
def unit_vectors():
    def make(n, d, seed=0):
        x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return make
