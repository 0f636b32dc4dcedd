"""Cost of gradient caching: contrastive training steps with and without it, in one run, on the same data.

`lco_embedding.training.train` runs the same steps (same seed, same batches) with ``mini_batch_size`` None (the
plain step: the whole batch in one graph) and with smaller mini-batches (GradCache: a forward pass without a graph,
then a forward and backward pass per mini-batch). It reports the median seconds per step (featurizing included,
the first step left out), examples per second, the ratio to the plain step, on CUDA the peak GPU memory, and checks
that every configuration's first loss equals the plain step's.

    python benchmarks/training.py                                   # cpu-7b-scaled, about 3 minutes on 2 cores
    python benchmarks/training.py --preset omni-7b --batch-size 128 --mini-batch-sizes 32,8 --json result.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import build  # noqa: E402

WORDS = "the cat dog fox sat on a mat in fog quick brown lazy river light over under near far".split()


def make_data(folder: Path, examples: int, image_share: float) -> Path:
    """Anchor/positive/negative lines: text of 8-60 words; ``image_share`` of the anchors are small images."""
    from PIL import Image

    from lco_embedding.testing import synthetic_image

    rng = random.Random(0)
    arrays = np.random.default_rng(0)

    def text() -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(8, 60)))

    lines = []
    for i in range(examples):
        anchor: dict = {"text": text()}
        if rng.random() < image_share:
            path = folder / f"img{i}.png"
            Image.fromarray(synthetic_image(112, 140, arrays)).save(path)
            anchor = {"image": str(path)}
        lines.append({"anchor": anchor, "positive": text(), "negative": text()})
    data = folder / "pairs.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu-7b-scaled")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mini-batch-sizes", default="8,4", help="comma-separated GradCache mini-batch sizes")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--lora-rank",
        type=int,
        help="default 64 (the authors'); 4 for cpu-7b-scaled, keeping rank / hidden size near 64 / 3,584",
    )
    parser.add_argument("--image-share", type=float, default=0.2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from lco_embedding.training import LoraSettings, TrainingConfig, train

    folder = Path(tempfile.mkdtemp(prefix="lco-train-bench-"))
    dtype = "bfloat16" if torch.cuda.is_available() and args.device != "cpu" else "float32"
    checkpoint = str(build(args.preset, folder, dtype=dtype))
    data = make_data(folder, args.batch_size * args.steps, args.image_share)
    sizes = [None, *(int(s) for s in args.mini_batch_sizes.split(","))]
    rank = args.lora_rank or (4 if args.preset == "cpu-7b-scaled" else 64)
    rows = []
    for size in sizes:
        config = TrainingConfig(
            max_steps=args.steps,
            batch_size=args.batch_size,
            mini_batch_size=size,
            lora=LoraSettings(rank=rank, alpha=2 * rank, dropout=0.0),
            save_steps=10**9,
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = train(checkpoint, data, folder / f"run-{size}", config, device=args.device, overwrite=True)
        log = [json.loads(line) for line in result.log.read_text().splitlines()]
        seconds = statistics.median(r["seconds"] for r in log[1:]) if len(log) > 1 else log[0]["seconds"]
        rows.append(
            {
                "mini_batch_size": size,
                "seconds_per_step": round(seconds, 3),
                "examples_per_second": round(args.batch_size / seconds, 2),
                "first_loss": log[0]["loss"],
                "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
                if torch.cuda.is_available()
                else None,
            }
        )
    plain = rows[0]
    for row in rows:
        row["time_ratio_to_plain"] = round(row["seconds_per_step"] / plain["seconds_per_step"], 2)
        row["first_loss_matches_plain"] = abs(row["first_loss"] - plain["first_loss"]) <= 1e-3 * abs(
            plain["first_loss"]
        )
    report = {
        "benchmark": "training",
        "preset": args.preset,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "image_share": args.image_share,
        "lora_rank": rank,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device != "cpu" else "cpu",
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "rows": rows,
    }
    for row in rows:
        print(
            f"mini_batch_size={row['mini_batch_size']!s:>5}  {row['seconds_per_step']:7.3f} s/step  "
            f"{row['examples_per_second']:7.2f} ex/s  x{row['time_ratio_to_plain']:.2f}  "
            f"first loss {row['first_loss']:.5f} ({'=' if row['first_loss_matches_plain'] else '!='} plain)"
            + (f"  peak {row['peak_gpu_memory_gb']} GB" if row["peak_gpu_memory_gb"] is not None else "")
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
