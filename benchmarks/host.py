"""The host ceiling: how many items/s the host side (parsing, template, processor, collate) lets through, measured
on a near-free model — the tiny checkpoint, whose forward pass costs almost nothing, as a GPU's nearly does.

For every workload (text, images, audio, video, mixed) and every path, each in its own process, one after the
other (run it on an otherwise idle machine):

* ``sdk``: ``LCOEmbedder.encode`` with its defaults;
* ``sdk-fast``: the same with ``preprocessing="fast"`` (images and video resized in torch; images, video, mixed);
* ``st``: sentence-transformers 6 native on the same checkpoint (``Transformer + Pooling("lasttoken") +
  Normalize``, benchmarks/st_path.py: what an ST user gets, 300 s audio padding included; videos are decoded
  outside ``encode`` for it, untimed, since ST cannot decode them here);

then featurize alone (no model, one thread) in items/s per core, and the demand a GPU would make: the items/s an
Omni-3B / -7B would consume at 50 % of an H100's bf16 peak (790 TFLOP/s dense, halved), from each workload's real
token and patch counts (FLOPs per token / patch / audio frame below).

    python benchmarks/host.py                 # about 15 minutes on a 2-core CPU
    python benchmarks/host.py --quick         # smaller workloads
    python benchmarks/host.py --json host.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

H100_HALF_PEAK = 0.5 * 790e12
"""FLOP/s: half of an H100's dense bf16 peak, as the issue's projection."""
FLOPS = {
    # 2 x parameters per token / patch / frame: language model, vision tower (675 M), audio tower (~640 M).
    "omni-3b": {"token": 2 * 2.77e9, "patch": 2 * 0.675e9, "audio_frame": 2 * 0.64e9},
    "omni-7b": {"token": 2 * 7.07e9, "patch": 2 * 0.675e9, "audio_frame": 2 * 0.64e9},
}
PATHS = {"text": ("sdk", "st"), "sentences": ("sdk", "st"), "images": ("sdk", "sdk-fast", "st"), "audio": ("sdk", "st")}
PATHS.update(video=("sdk", "sdk-fast", "st"), mixed=("sdk", "sdk-fast", "st"))
SIZES = {
    "full": {"text": 3000, "sentences": 3000, "images": 120, "audio": 60, "video": 16, "mixed": 80},
    "quick": {"text": 600, "sentences": 600, "images": 24, "audio": 12, "video": 4, "mixed": 16},
}
_WORDS = "the a cat dog sat on mat in fog quick brown fox jumps over lazy query document answers model".split()
_PROSE = (
    "Retrieval systems rank passages, photographs, recordings and clips by how closely their embeddings match a "
    "user's question. Yesterday's meeting covered quarterly revenue, hiring plans, supplier delays and the new "
    "warehouse in Rotterdam. She photographed seventeen migrating cranes above the frozen marsh before sunrise. "
    "Please summarise the attached contract, highlighting termination clauses, liability caps and renewal dates! "
    "Why does the espresso machine leak whenever the pressure gauge exceeds nine bars? Researchers measured "
    "glacier thickness with ground-penetrating radar, drones and 1,200 GPS stations during 2024."
).split()
"""Real sentences' words (capitals, punctuation, numbers, long words): what users send, unlike ``_WORDS``."""


def _workloads(folder: Path, size: str) -> dict[str, list]:
    from PIL import Image

    from lco_embedding.testing import synthetic_image, write_mp4, write_wav

    rng = np.random.default_rng(0)
    n = SIZES[size]
    texts = [" ".join(rng.choice(_WORDS, size=int(rng.integers(6, 24)))) for _ in range(n["text"])]
    sentences = [" ".join(rng.choice(_PROSE, size=int(rng.integers(5, 26)))) for _ in range(n["sentences"])]
    images = []
    for i in range(n["images"]):
        path = folder / f"photo_{i}.jpg"
        Image.fromarray(synthetic_image(480, 640, rng)).save(path, quality=90)
        images.append(str(path))
    audio = []
    for i in range(n["audio"]):
        path = folder / f"clip_{i}.wav"
        seconds = float(rng.uniform(2, 6))
        t = np.arange(int(16000 * seconds)) / 16000
        write_wav(path, 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800) * t), 16000)
        audio.append(str(path))
    videos = []
    for i in range(n["video"]):
        path = folder / f"video_{i}.mp4"
        write_mp4(path, seconds=2, fps=8, width=320, height=240, rng=rng)
        videos.append(str(path))
    mixed = [
        {"text": texts[i], "image": images[i % len(images)]}
        if i % 2
        else {"text": texts[i], "audio": audio[i % len(audio)]}
        for i in range(n["mixed"])
    ]
    return {
        "text": texts,
        "sentences": sentences,
        "images": [{"image": p} for p in images],
        "audio": [{"audio": p} for p in audio],
        "video": [{"video": p} for p in videos],
        "mixed": mixed,
    }


def _child(path: str, workload: str, checkpoint: str, items_file: str) -> dict:
    """Run one (path, workload) and return items/s, the best of two timed runs after a warm-up; runs in its own
    process."""
    import torch

    items = json.loads(Path(items_file).read_text())[workload]
    torch.set_num_threads(os.cpu_count() or 1)
    if path == "st":
        from st_path import load_st, st_inputs

        from lco_embedding import LCOEmbedder

        dim = LCOEmbedder(checkpoint, device="cpu").get_embedding_dimension()
        model = load_st(checkpoint, dim, device="cpu")
        inputs = st_inputs(items, model)  # videos are decoded here, outside the timed call
    else:
        from lco_embedding import LCOEmbedder

        options = {"preprocessing": "fast"} if path == "sdk-fast" else {}
        model = LCOEmbedder(checkpoint, device="cpu", **options)
        inputs = items
    model.encode(inputs[: max(4, len(inputs) // 10)], show_progress_bar=False)  # warm-up
    times = []
    for _ in range(2):
        began = time.perf_counter()
        model.encode(inputs, show_progress_bar=False)
        times.append(time.perf_counter() - began)
    seconds = min(times)
    return {"items_per_s": len(items) / seconds, "seconds": seconds, "items": len(items)}


def _featurize(workload: str, checkpoint: str, items_file: str) -> dict:
    """Featurize alone, one thread: items/s per core, and the token / patch / audio-frame counts of the workload."""
    import torch

    from lco_embedding import LCOEmbedder

    torch.set_num_threads(1)
    items = json.loads(Path(items_file).read_text())[workload]
    model = LCOEmbedder(checkpoint, device="cpu")
    featurize = model.featurize_window if hasattr(model, "featurize_window") else None
    began = time.perf_counter()
    if featurize is not None:
        features = featurize(items)
    else:
        featurizer = model.pipeline().featurizer
        features = [featurizer(i, item, None, None) for i, item in enumerate(items)]
    seconds = time.perf_counter() - began
    tokens = sum(f.length for f in features)
    patches = sum(int(f.inputs["image_grid_thw"].prod(-1).sum()) for f in features if "image_grid_thw" in f.inputs)
    patches += sum(int(f.inputs["video_grid_thw"].prod(-1).sum()) for f in features if "video_grid_thw" in f.inputs)
    frames = sum(
        int(f.inputs["feature_attention_mask"].sum()) for f in features if "feature_attention_mask" in f.inputs
    )
    return {"per_core_items_per_s": len(items) / seconds, "tokens": tokens, "patches": patches, "mel_frames": frames}


def _demand(counts: dict, items: int) -> dict[str, float]:
    out = {}
    for name, flops in FLOPS.items():
        # audio: the encoder sees mel frames (100/s), the LM 25 tokens/s (already in the token count)
        per_item = (
            counts["tokens"] * flops["token"]
            + counts["patches"] * flops["patch"]
            + counts["mel_frames"] * flops["audio_frame"] / 2
        ) / items
        out[name] = H100_HALF_PEAK / per_item
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Smaller workloads.")
    parser.add_argument("--json", help="Also write the results to this file.")
    parser.add_argument("--only", nargs="*", help="Workloads to run (default: all).")
    parser.add_argument("--child", nargs=4, metavar=("PATH", "WORKLOAD", "CHECKPOINT", "ITEMS"), help=argparse.SUPPRESS)
    parser.add_argument("--featurize", nargs=3, metavar=("WORKLOAD", "CHECKPOINT", "ITEMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if args.featurize:
        print(json.dumps(_featurize(*args.featurize)))
        return

    from lco_embedding.testing import build_tiny_checkpoint

    results: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "workloads": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = str(build_tiny_checkpoint(folder / "tiny"))
        items_file = folder / "items.json"
        items_file.write_text(json.dumps(_workloads(folder, "quick" if args.quick else "full")))

        def run(*argv: str) -> dict:
            done = subprocess.run(
                [sys.executable, __file__, *argv],
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            if done.returncode:
                raise RuntimeError(done.stderr[-3000:])
            return json.loads(done.stdout.strip().splitlines()[-1])

        for workload, paths in PATHS.items():
            if args.only and workload not in args.only:
                continue
            row: dict = {}
            for path in paths:
                try:
                    row[path] = run("--child", path, workload, checkpoint, str(items_file))
                except RuntimeError as e:
                    if "preprocessing" in str(e) and path == "sdk-fast":
                        continue  # this version has no fast preprocessing
                    raise
            counts = run("--featurize", workload, checkpoint, str(items_file))
            row["featurize"] = counts
            row["gpu_demand_items_per_s"] = _demand(counts, len(json.loads(items_file.read_text())[workload]))
            results["workloads"][workload] = row
            sdk, st = row["sdk"]["items_per_s"], row["st"]["items_per_s"]
            fast = row.get("sdk-fast", {}).get("items_per_s")
            print(
                f"{workload:7s} sdk {sdk:8.1f}/s  st {st:8.1f}/s  ratio {sdk / st:5.2f}"
                + (f"  fast {fast:8.1f}/s ratio {fast / st:5.2f}" if fast else "")
                + f"  featurize/core {counts['per_core_items_per_s']:8.1f}/s"
                + "  demand 3B {omni-3b:8.0f}/s 7B {omni-7b:8.0f}/s".format(**row["gpu_demand_items_per_s"]),
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
