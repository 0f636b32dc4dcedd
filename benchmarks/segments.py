"""Segments of a long recording: time and peak memory of ``encode_segments`` on hours of audio (on the CPU, where
large allocations are mapped while it streams; ``segments-heap``: without that, as on a GPU), against decoding the
whole file with librosa first and cutting it (what doing it by hand would do).

Each path runs in its own process on the tiny checkpoint (the model is nearly free: what is measured is decoding,
windowing, featurizing and the pipeline), warmed up on a one-minute file, with its peak resident memory reset
before the run (Linux ``/proc/self/clear_refs``).

    python benchmarks/segments.py --minutes 120 --json benchmarks/results/segments-cpu-2core-2026-12-02.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

_RUN = """
import json, re, sys, time
import numpy as np
from lco_embedding import LCOEmbedder

def status(key):
    return int(re.search(key + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024

checkpoint, path, warm, way, batch = sys.argv[1:6]
model = LCOEmbedder(checkpoint, device="cpu")
model.encode_segments(warm, batch_size=int(batch))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
began = time.perf_counter()
if way.startswith("segments"):
    if way == "segments-heap":  # what a GPU run does: freed windows stay in glibc's heap
        import contextlib
        import lco_embedding.segments.grouping as grouping
        grouping.large_allocations_mapped = lambda *args, **kwargs: contextlib.nullcontext()
    rows = sum(len(part) for part in model.segment_outcomes([path], batch_size=int(batch)))
else:  # decode everything, then cut and embed the windows
    import librosa
    waveform = librosa.load(path, sr=16000)[0]
    windows = [{"array": waveform[i : i + 480000], "sampling_rate": 16000} for i in range(0, len(waveform), 480000)]
    rows = len(model.encode(windows, batch_size=int(batch)))
seconds = time.perf_counter() - began
print(json.dumps({"way": way, "batch_size": int(batch), "rows": rows, "seconds": round(seconds, 2),
                  "windows_per_second": round(rows / seconds, 1), "rss_before_mb": round(before),
                  "peak_growth_mb": round(status("VmHWM") - before),
                  "kept_after_mb": round(status("VmRSS") - before)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--json", help="Write the results here.")
    args = parser.parse_args()
    from lco_embedding.testing import build_tiny_checkpoint, write_long_wav

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        checkpoint = build_tiny_checkpoint(root / "tiny")
        long, warm = root / "long.wav", root / "warm.wav"
        write_long_wav(long, minutes=args.minutes)
        write_long_wav(warm, minutes=1)
        results = []
        ways = (("segments", 8), ("segments-heap", 8), ("segments", 32), ("decode-whole-then-cut", 8))
        for way, batch in ways:
            done = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(_RUN), str(checkpoint), str(long), str(warm), way, str(batch)],
                capture_output=True,
                text=True,
                check=True,
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    report = {"minutes": args.minutes, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
