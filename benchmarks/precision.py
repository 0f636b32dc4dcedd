"""Weight precision on CPU: float32, bfloat16 and int8 (weights, or weights and activations) side by side.

For each model and each precision, in a process of its own (so that memory is measured alone): load time, peak
resident memory during the load (the process's high-water mark, minus what it held before), resident memory after
it (all, and anonymous: file-backed pages of the checkpoint stay mapped and count in the resident size, but the
kernel reclaims them under pressure), the bytes of the weights themselves, texts/s (``cpu-7b-scaled``: the
throughput benchmark's text mix of 10 to 1,000 tokens; the real architectures: short queries), and the cosine of
every embedding to float32's on a small parity corpus (texts of several lengths, plus images and a sound where the
model is small enough to embed them quickly).

Models (random weights, built once under --folder, each in its storage dtype so that nothing is materialized in
float32 on the way): ``cpu-7b-scaled`` (28 layers, float32 checkpoint) and ``omni-3b`` (the real Omni-3B
architecture, bfloat16 checkpoint). ``--seven-b`` adds the real Omni-7B architecture in int8 only (its float32
would not fit in 24 GB).

    python benchmarks/precision.py                         # both models, all precisions (about 20 minutes)
    python benchmarks/precision.py --models cpu-7b-scaled  # a few minutes
    python benchmarks/precision.py --seven-b --json benchmarks/results/precision.json
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = "a the cat dog river stone light small old red house tree over under near blue garden quiet".split()
PRECISIONS = {
    "float32": {"dtype": "float32"},
    "bfloat16": {"dtype": "bfloat16"},
    "int8": {"dtype": "bfloat16", "quantization": "int8"},
    "int8-dynamic": {"dtype": "bfloat16", "quantization": "int8-dynamic"},
}
STORAGE = {"cpu-7b-scaled": "float32", "omni-3b": "bfloat16", "omni-7b": "bfloat16"}


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def short_texts(count: int, seed: int = 0) -> list[str]:
    """Short queries of 6-12 words."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(6, 12))) for _ in range(count)]


def long_tailed_texts(count: int, tokenizer, seed: int = 0) -> list[str]:
    """The throughput benchmark's text workload: 10 to 1,000 tokens, log-uniform (most short, a few long)."""
    from workloads import _text

    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(10), np.log(1000), size=count)).astype(int)
    return [_text(rng, int(length), tokenizer) for length in lengths]


def parity_corpus(folder: Path, media: bool) -> list:
    """Texts of several lengths (and, for small models, two images, a sound and a mixed item)."""
    rng = random.Random(1)
    items: list = [" ".join(rng.choices(WORDS, k=n)) for n in (3, 8, 20, 60, 150)]
    items += ["Ein Hund läuft über die Brücke.", "数字 123 和符号 #@!", "a caption of a photo"]
    if media:
        from lco_embedding.testing import make_test_media

        files = make_test_media(folder / "media")
        items += [{"image": str(files["jpg"])}, {"image": str(files["png"])}, {"audio": str(files["wav"])}]
        items.append({"text": "a caption", "image": str(files["jpg"])})
    return items


def weight_bytes(model) -> int:
    """Bytes of the model's parameters and buffers (a quantized tensor counts its data and scales)."""
    total, seen = 0, set()
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        data = tensor.data if type(tensor).__name__ == "Parameter" else tensor
        if type(data).__name__ not in ("Tensor", "Parameter") and hasattr(data, "__tensor_flatten__"):
            names, _ = data.__tensor_flatten__()
            total += sum(getattr(data, n).numel() * getattr(data, n).element_size() for n in names)
        else:
            total += data.numel() * data.element_size()
    return total


def measure_one(model: str, precision: str, texts: int, media: bool, out: Path) -> None:
    """In this process: load ``model`` at ``precision`` and write the measurements and embeddings to ``out``."""
    import torch

    from lco_embedding import LCOEmbedder

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc_trim(0)
    before = _status("VmRSS")
    peak_anonymous, loading = 0, True

    def sample() -> None:  # the high-water mark counts file pages too; anonymous memory is sampled every 20 ms
        nonlocal peak_anonymous
        while loading:
            peak_anonymous = max(peak_anonymous, _status("RssAnon"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    embedder = LCOEmbedder(model, device="cpu", **PRECISIONS[precision])
    load_seconds = time.perf_counter() - began
    loading = False
    sampler.join()
    peak_load = _status("VmHWM") - before
    libc.malloc_trim(0)
    resident = _status("VmRSS") - before
    anonymous = _status("RssAnon")
    # the small model: the throughput benchmark's text mix; the real architectures: short queries (seconds each)
    workload = long_tailed_texts(texts, embedder.processor.tokenizer) if media else short_texts(texts)
    embedder.encode(workload[:4], show_progress_bar=False)  # warm-up
    began = time.perf_counter()
    embedder.encode(workload, show_progress_bar=False)
    seconds = time.perf_counter() - began
    corpus = embedder.encode(parity_corpus(out.parent, media), show_progress_bar=False)
    np.save(out.with_suffix(".npy"), corpus)
    out.write_text(
        json.dumps(
            {
                "model": Path(model).name,
                "precision": precision,
                "dtype": str(embedder.dtype).removeprefix("torch."),
                "load_seconds": load_seconds,
                "peak_load_gb": peak_load / 1e9,
                "peak_load_anonymous_gb": peak_anonymous / 1e9,
                "resident_gb": resident / 1e9,
                "resident_anonymous_gb": anonymous / 1e9,
                "weights_gb": weight_bytes(embedder.model) / 1e9,
                "texts_per_s": len(workload) / seconds,
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def run(model: str, precision: str, texts: int, media: bool, folder: Path) -> dict | None:
    """Measure one (model, precision) in a fresh process; None when it failed (its error is printed)."""
    out = folder / f"{Path(model).name}-{precision}.json"
    command = [sys.executable, __file__, "--one", model, precision, "--texts", str(texts), "--out", str(out)]
    result = subprocess.run([*command, *(["--media"] if media else [])], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"  {precision}: failed\n{result.stderr[-2000:]}")
        return None
    row = json.loads(out.read_text())
    row["embeddings"] = str(out.with_suffix(".npy"))
    return row


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="cpu-7b-scaled,omni-3b")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--seven-b", action="store_true", help="also the real Omni-7B architecture, int8 only")
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "lco-benchmarks"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--media", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(*args.one, args.texts, args.media, args.out)
        return

    from models import build

    folder = Path(args.folder)
    results_folder = Path(tempfile.mkdtemp(prefix="lco-precision-"))
    plan = [(name, args.precisions.split(",")) for name in args.models.split(",")]
    if args.seven_b:
        plan.append(("omni-7b", ["int8"]))
    rows = []
    for name, precisions in plan:
        began = time.perf_counter()
        path = str(build(name, folder, dtype=STORAGE[name]))
        print(f"## {name} ({STORAGE[name]} checkpoint, ready in {time.perf_counter() - began:.0f} s)", flush=True)
        small = name == "cpu-7b-scaled"
        texts = 48 if small else 16
        reference = None
        for precision in precisions:
            row = run(path, precision, texts, small, results_folder)
            if row is None:
                continue
            embeddings = np.load(row.pop("embeddings"))
            if precision == "float32":
                reference = embeddings
            if reference is not None:
                cosines = _cosines(embeddings, reference)
                row["cosine_to_float32"] = {"min": float(cosines.min()), "mean": float(cosines.mean())}
            rows.append(row)
            cosine = row.get("cosine_to_float32")
            print(
                f"  {precision:13s} {row['dtype']:9s} load {row['load_seconds']:6.1f} s, peak during load "
                f"{row['peak_load_gb']:6.2f} GB (anonymous {row['peak_load_anonymous_gb']:.2f}), "
                f"resident {row['resident_gb']:6.2f} GB (anonymous "
                f"{row['resident_anonymous_gb']:.2f}), weights {row['weights_gb']:6.2f} GB, "
                f"{row['texts_per_s']:7.2f} texts/s"
                + (f", cosine to float32 min {cosine['min']:.5f} mean {cosine['mean']:.5f}" if cosine else ""),
                flush=True,
            )
    if args.json:
        summary = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "rows": rows,
        }
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
