"""Rows/s into a LanceDB table and a Milvus collection (milvus-lite) against a Parquet folder, on the same corpus.

Two measurements, each store in turn (run on an otherwise idle machine):

* ``sink``: the store's side alone — N rows of D-dimensional float32 embeddings (random, unit length) with the
  corpus columns, committed shard by shard through the store's ``commit_shard`` exactly as a corpus job commits
  them (the Parquet folder: shard file + manifest; LanceDB: one ``add`` + manifest; Milvus: upserts + meta
  collection);
* ``job``: ``encode_corpus`` end to end on the ``tiny-2048`` preset (benchmarks/models.py: one decoder layer of an
  Omni-3B's width, so the rows are 2,048-d; its forward pass is cheap, as a GPU's is): texts from a JSONL table into
  each store. This is what a corpus job pays for its store.

    python benchmarks/stores.py                         # 50,000 rows of 2,048 dimensions, 3,000 texts
    python benchmarks/stores.py --rows 20000 --dimension 3584 --json stores.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lco_embedding.corpus.stores import open_store  # noqa: E402

STORES = ("parquet", "lancedb", "milvus")


def _target(kind: str, root: Path, name: str) -> str:
    return {
        "parquet": str(root / name),
        "lancedb": f"lancedb://{root}/lance/{name}",
        "milvus": f"milvus://{root}/{name}.db/corpus",
    }[kind]


def sink(kind: str, root: Path, rows: int, dimension: int, shard: int) -> float:
    """Rows/s committed through the store (see the module)."""
    import pyarrow as pa

    from lco_embedding.corpus.manifest_folder import FORMAT, FORMAT_VERSION
    from lco_embedding.corpus.precision import to_arrow

    rng = np.random.default_rng(0)
    store = open_store(_target(kind, root, "sink"))
    store.lock()
    columns = {"id": "string", "source": "string", "modality": "string", "embedding": "vector", "n": "int64"}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "status": "running",
        "dimension": dimension,
        "options": {"precision": "float32", "normalize": True, "shard_size": shard},
        "columns": columns,
        "int8_ranges": None,
        "counts": {"total": rows, "done": 0, "embedded": 0, "failed": 0},
        "shards": [],
        "errors_bytes": 0,
    }
    store.create(manifest)
    tables = []
    for start in range(0, rows, shard):  # built before the clock starts: only the store's work is timed
        n = min(shard, rows - start)
        vectors = rng.standard_normal((n, dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"docs/file-{p}.txt" for p in range(start, start + n)]
        table = pa.table(
            {
                "id": ids,
                "source": ids,
                "modality": ["text"] * n,
                "embedding": to_arrow(vectors, "float32"),
                "n": pa.array(range(start, start + n), pa.int64()),
            }
        )
        tables.append((start, n, table))
    began = time.perf_counter()
    for index, (start, n, table) in enumerate(tables):
        manifest["counts"].update(done=start + n)
        manifest["counts"]["embedded"] += n
        entry = {"index": index, "start": start, "end": start + n, "rows": n, "failed": 0}
        store.commit_shard(manifest, entry, table, [])
    seconds = time.perf_counter() - began
    store.close()
    return rows / seconds


def job(kind: str, root: Path, checkpoint: str, texts: Path, shard: int) -> float:
    """Items/s of ``encode_corpus`` into the store (the model loaded before the clock starts)."""
    from lco_embedding import LCOEmbedder
    from lco_embedding.corpus import encode_corpus

    model = LCOEmbedder(checkpoint, device="cpu")
    model.encode(["warm up"] * 8)
    summary = encode_corpus([texts], _target(kind, root, "job"), model=model, shard_size=shard, show_progress_bar=False)
    return summary.items_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dimension", type=int, default=2048)
    parser.add_argument("--shard", type=int, default=10_000)
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--json")
    args = parser.parse_args()
    from models import build

    results: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": args.rows,
        "dimension": args.dimension,
        "texts": args.texts,
    }
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        checkpoint = str(build("tiny-2048", root / "tiny-2048"))
        texts = root / "texts.jsonl"
        rng = np.random.default_rng(1)
        words = "the model embeds text images audio and video into one space".split()
        lines = [json.dumps({"text": " ".join(rng.choice(words, 12)), "n": i}) for i in range(args.texts)]
        texts.write_text("\n".join(lines) + "\n")
        for kind in STORES:
            results.setdefault("sink_rows_per_s", {})[kind] = sink(kind, root, args.rows, args.dimension, args.shard)
            results.setdefault("job_items_per_s", {})[kind] = job(kind, root, checkpoint, texts, 1000)
            print(
                f"{kind:8s} sink {results['sink_rows_per_s'][kind]:10.0f} rows/s   "
                f"job {results['job_items_per_s'][kind]:8.1f} items/s",
                flush=True,
            )
    for measure in ("sink_rows_per_s", "job_items_per_s"):
        base = results[measure]["parquet"]
        print(measure, {kind: round(value / base, 2) for kind, value in results[measure].items()})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
