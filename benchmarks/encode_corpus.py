"""Memory and throughput of `lco-embed encode` on a long text stream, beside `LCOEmbedder.encode_iter` in one run.

Both paths embed the same N generated lines with the same tiny checkpoint, each in its own process whose resident
memory (RSS) is sampled every 0.2 s:

(a) encode_iter: `LCOEmbedder.encode_iter` over the lines of the file, results discarded (the engine alone);
(b) lco-embed: `lco-embed encode INPUT --out DIR` (records, shards, manifest commits, progress bar), where INPUT is
    `-` with the file on stdin (default) or a JSONL table of the same lines (`--input jsonl`).

It reports items/s and the ratio (b)/(a), and for (b) the RSS after the first committed shard, at 25/50/75/100 %
of the items, the peak, the largest growth over the first shard's RSS, and (in the JSON) a timeline of about 200
samples (seconds, RSS MB, items committed): flat memory means RSS at 25 % and at 100 % of the items are the same
whatever N is.

    python benchmarks/encode_corpus.py                     # 100,000 lines (about 10 minutes on 2 cores)
    python benchmarks/encode_corpus.py --lines 20000 --input jsonl --json result.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

WORDS = (
    "the of and to in is that for it with as was on be by at this a cat dog fox mat fog quick brown lazy jumps "
    "river market engine signal forest winter music window garden paper light stone"
).split()


def write_lines(path: Path, count: int, *, jsonl: bool) -> None:
    """``count`` deterministic lines of 3-40 words (as JSONL rows ``{"text": ...}`` with ``jsonl``)."""
    rng = random.Random(0)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(count):
            line = " ".join(rng.choices(WORDS, k=rng.randint(3, 40)))
            f.write((json.dumps({"text": line}) if jsonl else line) + "\n")


class Sampler(threading.Thread):
    """Samples a process's RSS (MB) and an optional progress callback every ``interval`` seconds."""

    def __init__(self, pid: int, progress=None, interval: float = 0.2):
        super().__init__(daemon=True)
        self.process, self.progress, self.interval = psutil.Process(pid), progress, interval
        self.samples: list[tuple[float, float, int | None]] = []  # (seconds, rss MB, items done)
        self.stopped = threading.Event()

    def run(self) -> None:
        began = time.perf_counter()
        while not self.stopped.is_set():
            try:
                rss = self.process.memory_info().rss / 2**20
            except psutil.Error:
                break
            self.samples.append((time.perf_counter() - began, rss, self.progress() if self.progress else None))
            self.stopped.wait(self.interval)


def run_encode_iter(model: str, lines: Path) -> dict:
    """(a): encode_iter over the file in a child process; returns items/s and peak RSS."""
    code = (
        "import sys, time\n"
        "from lco_embedding import LCOEmbedder\n"
        f"model = LCOEmbedder({model!r}, device='cpu')\n"
        "print('loaded', flush=True)\n"
        "start = time.perf_counter(); count = 0\n"
        f"with open({str(lines)!r}, encoding='utf-8') as f:\n"
        "    for _ in model.encode_iter(line.rstrip('\\n') for line in f):\n"
        "        count += 1\n"
        "print(count, time.perf_counter() - start, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    sampler = Sampler(child.pid)
    sampler.start()
    output = child.communicate()[0].split()
    sampler.stopped.set()
    sampler.join()
    count, seconds = int(output[-2]), float(output[-1])
    return {"items": count, "seconds": seconds, "items_per_s": count / seconds,
            "peak_rss_mb": max(s[1] for s in sampler.samples)}  # fmt: skip


def run_cli(model: str, lines: Path, out: Path, *, jsonl: bool, shard_size: int) -> dict:
    """(b): lco-embed encode in a child process; returns items/s and the RSS profile."""
    lco_embed = Path(sys.executable).with_name("lco-embed")
    source = str(lines) if jsonl else "-"
    command = [str(lco_embed), "encode", source, "--out", str(out), "--model", model, "-q"]
    command += ["--shard-size", str(shard_size)]
    manifest = out / "manifest.json"

    def done() -> int | None:
        try:
            return json.loads(manifest.read_text())["counts"]["done"]
        except (OSError, ValueError, KeyError):
            return None

    with open(lines, "rb") as stdin:
        child = subprocess.Popen(command, stdin=None if jsonl else stdin, stdout=subprocess.PIPE, text=True)
        sampler = Sampler(child.pid, done)
        sampler.start()
        summary = child.communicate()[0]
    sampler.stopped.set()
    sampler.join()
    final = json.loads(manifest.read_text())
    total = final["counts"]["done"]
    committed = [(t, rss, d) for t, rss, d in sampler.samples if d]
    first = committed[0] if committed else sampler.samples[-1]

    def rss_at(fraction: float) -> float:
        return next((rss for _, rss, d in committed if d >= fraction * total), sampler.samples[-1][1])

    return {
        "items": total,
        "seconds": final["seconds"],
        "items_per_s": total / final["seconds"],
        "summary": summary.strip(),
        "rss_first_shard_mb": first[1],
        "rss_mb_at": {f"{int(f * 100)}%": rss_at(f) for f in (0.25, 0.5, 0.75, 1.0)},
        "peak_rss_mb": max(s[1] for s in sampler.samples),
        "growth_after_first_shard_mb": max(rss for _, rss, _ in committed) - first[1] if committed else None,
        "shards": len(final["shards"]),
        "timeline": [
            (round(t, 1), round(rss), d) for t, rss, d in sampler.samples[:: max(1, len(sampler.samples) // 200)]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--input", choices=["stdin", "jsonl"], default="stdin")
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from lco_embedding.testing import build_tiny_checkpoint

    work = Path(tempfile.mkdtemp(prefix="lco-bench-corpus-"))
    model = str(build_tiny_checkpoint(work / "tiny"))
    lines = work / ("lines.jsonl" if args.input == "jsonl" else "lines.txt")
    write_lines(lines, args.lines, jsonl=args.input == "jsonl")
    plain = work / "plain.txt"
    write_lines(plain, args.lines, jsonl=False)

    reference = run_encode_iter(model, plain)
    cli = run_cli(model, lines, work / "out", jsonl=args.input == "jsonl", shard_size=args.shard_size)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "lines": args.lines,
        "input": args.input,
        "shard_size": args.shard_size,
        "encode_iter": reference,
        "lco_embed": cli,
        "ratio_items_per_s": cli["items_per_s"] / reference["items_per_s"],
    }
    print(f"{args.lines:,} lines ({args.input}), tiny checkpoint, {result['machine']}")
    print(f"(a) encode_iter: {reference['items_per_s']:.0f} items/s, peak RSS {reference['peak_rss_mb']:.0f} MB")
    print(
        f"(b) lco-embed:   {cli['items_per_s']:.0f} items/s, peak RSS {cli['peak_rss_mb']:.0f} MB, "
        f"{cli['shards']} shards"
    )
    print(f"(b)/(a) items/s: {result['ratio_items_per_s']:.2f}")
    at = ", ".join(f"{k} {v:.0f} MB" for k, v in cli["rss_mb_at"].items())
    print(f"(b) RSS after the first shard {cli['rss_first_shard_mb']:.0f} MB; at {at}; "
          f"growth after the first shard {cli['growth_after_first_shard_mb']:.1f} MB")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
