"""Throughput of LCOEmbedder.encode against the model card's loop and sentence-transformers, in one process.

For every workload (text, images, audio, video, mixed; see workloads.py) and every path:

(a) reference: the model card's loop (lco_embedding.testing.reference: processor + process_mm_info, batches of 8 for
    text, images and mixed and of 4 for audio and video, in input order, left padding, output_hidden_states=True,
    hidden_states[-1][:, -1], empty_cache() after each batch),
(b) sentence-transformers 6: Transformer + Pooling("lasttoken") + Normalize on the same checkpoint (st_path.py says
    which workloads it can run, and why not the others),
(c) LCOEmbedder.encode with its defaults,

it prints items/s, tokens/s (real tokens, the same count for every path), peak memory above the path's starting
point (RSS sampled every 2 ms on CPU; torch.cuda.max_memory_allocated on GPU) and the ratios (c)/(a) and (c)/(b),
as a table and, with --json, as JSON. It also checks that (c) agrees with (a) (max |difference| of the normalised
embeddings).

    python benchmarks/throughput.py --quick            # < 2 minutes on a 2-core CPU
    python benchmarks/throughput.py                    # the full run (CPU: about 20 minutes on 2 cores)
    python benchmarks/throughput.py --device cuda --preset omni-7b --dtype bfloat16 --json gpu.json
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models import PRESETS, build  # noqa: E402
from workloads import build_workloads  # noqa: E402

from lco_embedding import LCOEmbedder  # noqa: E402
from lco_embedding.core.errors import EncodeReport  # noqa: E402
from lco_embedding.testing.reference import ReferencePipeline  # noqa: E402

CARD_BATCH = {"text": 8, "images": 8, "mixed": 8, "audio": 4, "video": 4}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


class PeakMemory:
    """Peak memory above the starting point while the block runs: RSS on CPU, allocated memory on CUDA."""

    def __init__(self, device: str):
        self.device = device
        self.peak = 0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        _malloc_trim()
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.start = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss() - self.start)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, _rss() - self.start)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def _timed(fn, device: str):
    with PeakMemory(device) as memory:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return np.asarray(out, dtype=np.float32), seconds, memory.peak


def _machine(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()}, {os.cpu_count()} CPU cores"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small workloads (< 2 minutes on a 2-core CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS), help="default: cpu-7b-scaled on CPU")
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on CUDA")
    parser.add_argument("--workloads", default="text,images,audio,video,mixed")
    parser.add_argument("--paths", default="reference,st,lco", help="any of reference, st, lco")
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "lco-benchmarks"))
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    device = args.device
    preset = args.preset or ("cpu-7b-scaled" if device == "cpu" else "omni-7b")
    dtype_name = args.dtype or ("float32" if device == "cpu" else "bfloat16")
    dtype = getattr(torch, dtype_name)
    paths = args.paths.split(",")

    began = time.perf_counter()
    checkpoint = str(build(preset, args.folder, dtype=dtype_name))
    # max_length=None: the reference does not cut long texts, so neither may we (same tokens on every path).
    lco = LCOEmbedder(checkpoint, device=device, dtype=dtype, max_length=None)
    workloads = build_workloads(
        Path(args.folder) / ("media-quick" if args.quick else "media-full"),
        lco.processor.tokenizer,
        "quick" if args.quick else "full",
    )
    reference = ReferencePipeline(checkpoint, dtype=dtype, device=device) if "reference" in paths else None
    st = None
    if "st" in paths:
        import st_path

        st = st_path.load_st(checkpoint, lco.get_embedding_dimension(), device=device, dtype=dtype)
    # Warm up every path on every modality (lazy imports, decoders, first-call allocations) with the smallest item.
    for workload in workloads.values():
        if workload.name not in args.workloads.split(","):
            continue
        smallest = min(range(len(workload.items)), key=lambda i: len(str(workload.items[i])))
        lco.encode(workload.items[smallest : smallest + 1])
        if reference is not None:
            reference.embed_loop(workload.contents[smallest : smallest + 1])
        if st is not None:
            st.encode(st_path.st_inputs(workload.items[smallest : smallest + 1], lco.processor, max_length=None))
    print(f"# setup: {time.perf_counter() - began:.1f} s; model {preset} ({dtype_name}) on {_machine(device)}")

    results: dict[str, dict] = {}
    for name in args.workloads.split(","):
        workload = workloads[name]
        row: dict[str, dict] = {}
        report = EncodeReport()
        lco_out, seconds, peak = _timed(lambda w=workload, r=report: lco.encode(w.items, report=r), device)
        tokens = report.stats.tokens
        row["lco"] = {"seconds": seconds, "peak_bytes": peak}
        if reference is not None:
            ref_out, seconds, peak = _timed(
                lambda w=workload, n=name: reference.embed_loop(w.contents, CARD_BATCH[n]), device
            )
            row["reference"] = {"seconds": seconds, "peak_bytes": peak, "max_abs_diff_vs_lco": _diff(ref_out, lco_out)}
        if st is not None:
            try:
                # Converting (and, for video, decoding: ST cannot read video files here) is timed too.
                st_out, seconds, peak = _timed(
                    lambda w=workload: st.encode(st_path.st_inputs(w.items, lco.processor, max_length=None)), device
                )
            except NotImplementedError as e:
                row["st"] = {"skipped": str(e)}
            else:
                row["st"] = {"seconds": seconds, "peak_bytes": peak, "max_abs_diff_vs_lco": _diff(st_out, lco_out)}
        for entry in row.values():
            if "seconds" in entry:
                entry["items_per_s"] = len(workload.items) / entry["seconds"]
                entry["tokens_per_s"] = tokens / entry["seconds"]
        ratios = {}
        for other in ("reference", "st"):
            if "seconds" in row.get(other, {}):
                ratios[f"lco/{other} items/s"] = row["lco"]["items_per_s"] / row[other]["items_per_s"]
                ratios[f"lco/{other} peak memory"] = row["lco"]["peak_bytes"] / max(row[other]["peak_bytes"], 1)
        results[name] = {"items": len(workload.items), "tokens": tokens, "paths": row, "ratios": ratios}
        if device == "cuda":
            results[name]["mfu"] = _mfu(lco, tokens, row["lco"]["seconds"])
        _print_workload(name, results[name])

    report = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "date": datetime.date.today().isoformat(),
        "machine": _machine(device),
        "model": preset,
        "dtype": dtype_name,
        "max_tokens_per_batch": report.stats.max_tokens_per_batch,
        "num_workers": lco.pipeline().workers(),
        "results": results,
        "total_seconds": time.perf_counter() - began,
    }
    print(f"# total: {report['total_seconds']:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if a.shape == b.shape else float("nan")


def _mfu(model: LCOEmbedder, tokens: int, seconds: float) -> dict:
    """Fraction of the GPU's dense bf16 matmul peak reached, counting 2 x parameters x tokens FLOPs."""
    inner = model.parts.backbone.inner
    language_model = inner.language_model if hasattr(inner, "language_model") else inner
    params = sum(p.numel() for n, p in language_model.named_parameters() if "embed_tokens" not in n)
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    achieved = 2 * params * tokens / seconds / 1e12
    return {"params": params, "tflops": achieved, "peak_tflops": peak, "fraction": achieved / peak if peak else None}


def _print_workload(name: str, result: dict) -> None:
    print(f"\n## {name}: {result['items']} items, {result['tokens']} tokens")
    print(f"{'path':<10} {'items/s':>9} {'tokens/s':>10} {'peak MB':>9}  max|diff| vs lco")
    for path, entry in result["paths"].items():
        if "skipped" in entry:
            print(f"{path:<10} skipped: {entry['skipped']}")
            continue
        diff = entry.get("max_abs_diff_vs_lco")
        print(
            f"{path:<10} {entry['items_per_s']:9.2f} {entry['tokens_per_s']:10.0f} {entry['peak_bytes'] / 2**20:9.0f}"
            f"  {'' if diff is None else f'{diff:.1e}'}"
        )
    for key, value in result["ratios"].items():
        print(f"{key}: {value:.2f}x")
    if "mfu" in result:
        print(f"bf16 matmul utilisation: {result['mfu']}")


if __name__ == "__main__":
    main()
