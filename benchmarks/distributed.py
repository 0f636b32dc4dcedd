"""Throughput of `embed_dataset` on a local Ray with 1 and 2 actors, beside `LCOEmbedder.encode`, in one run.

The same items (text lines and small images, by default 8,000 + 400) with the same tiny checkpoint:

(a) `LCOEmbedder.encode` in this process (torch uses every core);
(b) `embed_dataset(..., concurrency=1)`: one actor, one CPU;
(c) `embed_dataset(..., concurrency=2)`: two actors, one CPU each.

For (b) and (c) it reports the wall time of the whole job (actor start and model load included), the start-up
measured by the same job on one row per actor, the throughput without it, and the ratios (c)/(b). Every path's
embeddings are checked against (a).

    python benchmarks/distributed.py                    # about 3 minutes on 2 cores
    python benchmarks/distributed.py --texts 10000 --images 1000 --json result.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np


def make_items(folder: Path, texts: int, images: int) -> list[dict]:
    """``texts`` generated sentences and ``images`` small PNGs of three sizes, interleaved."""
    from PIL import Image

    from lco_embedding.testing import synthetic_image

    rng, words = random.Random(0), "the cat dog fox sat on a mat in fog quick brown lazy river light".split()
    arrays = np.random.default_rng(0)
    rows = [
        {"id": f"t{i}", "text": " ".join(rng.choices(words, k=rng.randint(4, 40))), "image": None} for i in range(texts)
    ]
    for i in range(images):
        path = folder / f"img{i}.png"
        side = (96, 160, 224)[i % 3]
        Image.fromarray(synthetic_image(side, side + 16, arrays)).save(path)
        rows.insert(i * max(1, texts // max(images, 1)), {"id": f"i{i}", "text": None, "image": str(path)})
    return rows


def run_ray(rows: list[dict], model: str, workers: int, batch_size: int) -> tuple[float, dict]:
    """Wall time of one embed_dataset job over ``rows``, and its embeddings by id."""
    import ray.data

    from lco_embedding.distributed import embed_dataset

    ds = ray.data.from_items(rows, override_num_blocks=max(2 * workers, min(len(rows), len(rows) // batch_size)))
    start, vectors = time.perf_counter(), {}
    for batch in embed_dataset(ds, model, batch_size=batch_size, concurrency=workers).iter_batches(
        batch_format="pyarrow", batch_size=None
    ):
        vectors.update(zip(batch.column("id").to_pylist(), batch.column("embedding").to_pylist(), strict=True))
    return time.perf_counter() - start, vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=8000)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per actor call")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import ray

    from lco_embedding import LCOEmbedder
    from lco_embedding.testing import build_tiny_checkpoint

    work = Path(tempfile.mkdtemp(prefix="lco-bench-ray-"))
    model = str(build_tiny_checkpoint(work / "tiny"))
    rows = make_items(work, args.texts, args.images)
    items = [{"text": r["text"]} if r["text"] else {"image": r["image"]} for r in rows]

    embedder = LCOEmbedder(model, device="cpu")
    start = time.perf_counter()
    reference = embedder.encode(items, show_progress_bar=False)
    local = {"wall_s": time.perf_counter() - start}
    local["items_per_s"] = len(items) / local["wall_s"]
    expected = {row["id"]: vector for row, vector in zip(rows, reference, strict=True)}

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    results = {"encode (this process)": local}
    for workers in (1, 2):
        # The same job on one row per actor: actor start, model load and the first call, paid once per job.
        startup, _ = run_ray(rows[:workers], model, workers, 1)
        wall, vectors = run_ray(rows, model, workers, args.batch_size)
        difference = max(float(np.abs(np.asarray(vectors[k]) - expected[k]).max()) for k in expected)
        results[f"embed_dataset, {workers} actor(s)"] = {
            "wall_s": wall,
            "items_per_s": len(rows) / wall,
            "startup_s": startup,
            "steady_items_per_s": len(rows) / max(wall - startup, 1e-9),
            "max_abs_diff_vs_encode": difference,
        }
    one, two = results["embed_dataset, 1 actor(s)"], results["embed_dataset, 2 actor(s)"]
    summary = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "ray": ray.__version__,
        "items": {"texts": args.texts, "images": args.images},
        "batch_size": args.batch_size,
        "results": results,
        "scaling_2_over_1": {
            "wall": two["items_per_s"] / one["items_per_s"],
            "steady": two["steady_items_per_s"] / one["steady_items_per_s"],
        },
    }
    for name, result in results.items():
        line = f"{name:<26} {result['items_per_s']:7.1f} items/s  wall {result['wall_s']:6.1f} s"
        if "steady_items_per_s" in result:
            line += f"  start-up {result['startup_s']:4.1f} s  without it {result['steady_items_per_s']:7.1f} items/s"
            line += f"  max diff vs encode {result['max_abs_diff_vs_encode']:.1e}"
        print(line)
    print(
        f"2 actors / 1 actor: {summary['scaling_2_over_1']['wall']:.2f}x (wall), "
        f"{summary['scaling_2_over_1']['steady']:.2f}x (steady state)"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
