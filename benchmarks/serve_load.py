"""Load test of `lco-embed serve`: concurrent single-item requests on loopback, beside offline `encode`, in one run.

1. offline: `LCOEmbedder.encode` over the same kind of texts in this process (items/s), then the model is released;
2. server: `lco-embed serve` in its own process; N connections send one-item requests back to back for a fixed
   time, then one connection does (its latency: the floor a single client sees).

The load generator is `wrk` (one thread, a Lua script cycling through 256 request bodies) when it is on PATH:
written in C, it leaves the CPU to the server, so the numbers measure the server. Without it (or with
`--load-generator python`), N asyncio + httpx clients in this process, which on a small machine take much of the
CPU themselves (their numbers are a lower bound). Install wrk with your distribution (`apt install wrk`).

Reports requests/s, items/s, non-2xx answers, latency p50/p90/p99, the server's mean forward batch (from
/metrics) and the ratio of server items/s to offline items/s.

    python benchmarks/serve_load.py                                     # tiny model, 32 connections, 30 s, float
    python benchmarks/serve_load.py --preset tiny-2048 --encoding base64
    python benchmarks/serve_load.py --workers 2 --json result.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = "the of and to in is that for it with as was on be by at a cat dog fox mat fog river light stone".split()

_WRK_SCRIPT = """
local bodies = {%(bodies)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/embeddings", {["Content-Type"] = "application/json"}, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, "p50_us": %%d, "p90_us": %%d, '
    .. '"p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(5, 60))) for _ in range(count)]


def build_model(preset: str, folder: Path) -> str:
    if preset == "tiny":
        from lco_embedding.testing import build_tiny_checkpoint

        return str(build_tiny_checkpoint(folder / "tiny"))
    from models import build

    return str(build(preset, folder))


def offline(model: str, items: list[str], max_wait_seconds: float) -> float:
    """Items/s of encode over ``items`` (repeated until ``max_wait_seconds`` have passed at least once)."""
    from lco_embedding import LCOEmbedder

    embedder = LCOEmbedder(model, device="cpu")
    embedder.encode(items[:8], show_progress_bar=False)  # warm-up
    done, start = 0, time.perf_counter()
    while True:
        embedder.encode(items, show_progress_bar=False)
        done += len(items)
        if time.perf_counter() - start >= max_wait_seconds:
            return done / (time.perf_counter() - start)


def _bodies(items: list[str], name: str, encoding: str) -> list[str]:
    return [json.dumps({"model": name, "input": text, "encoding_format": encoding}) for text in items]


def load_wrk(url: str, bodies: list[str], connections: int, seconds: float) -> dict:
    """Drive the server with wrk (one thread); its own summary, as a dict."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % {"bodies": ", ".join(f"[==[{b}]==]" for b in bodies)})
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
        output = subprocess.run([*command, "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    summary = json.loads(output.strip().splitlines()[-1])
    elapsed = summary["duration_us"] / 1e6
    ok = summary["requests"] - summary["non_2xx"]
    return {
        "requests": summary["requests"],
        "failures": {"non_2xx": summary["non_2xx"], "socket_errors": summary["socket_errors"]},
        "seconds": elapsed,
        "requests_per_s": ok / elapsed,
        "items_per_s": ok / elapsed,
        "latency_ms": {f"p{q}": summary[f"p{q}_us"] / 1000 for q in (50, 90, 99)},
    }


async def load_python(url: str, bodies: list[str], connections: int, seconds: float) -> dict:
    """Drive the server with asyncio + httpx clients in this process, one connection each."""
    import httpx

    latencies: list[float] = []
    failures: dict[str, int] = {}
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        rng = random.Random(number)
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=url, timeout=120) as session:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                response = await session.post("/v1/embeddings", content=rng.choice(bodies), headers=headers)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    lat = np.array(latencies)
    return {
        "requests": len(latencies) + sum(failures.values()),
        "failures": failures,
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "items_per_s": len(latencies) / elapsed,
        "latency_ms": {f"p{q}": float(np.percentile(lat, q) * 1000) for q in (50, 90, 99)} if len(lat) else {},
    }


def metric(url: str, name: str) -> float:
    import httpx

    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help="tiny, or a preset of benchmarks/models.py (tiny-2048, ...)")
    parser.add_argument("--connections", "--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-wait-ms", type=float, default=2)
    parser.add_argument("--encoding", choices=["float", "base64"], default="float")
    parser.add_argument("--workers", type=int, default=1, help="lco-embed serve --workers")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    generator = args.load_generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"

    work = Path(tempfile.mkdtemp(prefix="lco-bench-serve-"))
    model = build_model(args.preset, work)
    items = texts(256)
    offline_rate = offline(model, items, max_wait_seconds=min(args.seconds, 20))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lco_embed = str(Path(sys.executable).with_name("lco-embed"))
    command = [lco_embed, "serve", "--model", model, "--port", str(port), "--served-model-name", "bench", "-q"]
    command += ["--max-wait-ms", str(args.max_wait_ms), "--max-queue-items", "100000"]
    command += ["--workers", str(args.workers)] if args.workers > 1 else []
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    bodies = _bodies(items, "bench", args.encoding)

    def drive(connections: int, seconds: float) -> dict:
        if generator == "wrk":
            return load_wrk(url, bodies, connections, seconds)
        return asyncio.run(load_python(url, bodies, connections, seconds))

    try:
        import httpx

        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        drive(4, 2)  # warm-up (with several workers, each may take a while to be reached)
        batches_before, items_before = metric(url, "lco_batch_items_count"), metric(url, "lco_batch_items_sum")
        result = drive(args.connections, args.seconds)
        batches = metric(url, "lco_batch_items_count") - batches_before
        mean_batch = (metric(url, "lco_batch_items_sum") - items_before) / max(batches, 1)
        single = drive(1, min(args.seconds, 10))
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "preset": args.preset,
        "connections": args.connections,
        "seconds": args.seconds,
        "max_wait_ms": args.max_wait_ms,
        "encoding": args.encoding,
        "workers": args.workers,
        "load_generator": generator,
        "offline_items_per_s": offline_rate,
        "server": result,
        "one_connection": single,
        "mean_forward_batch_items": mean_batch if args.workers == 1 else None,
        "ratio_server_over_offline": result["items_per_s"] / offline_rate,
    }
    lat, one = result["latency_ms"], single["latency_ms"]
    print(
        f"{args.preset}, {args.connections} connections x {args.seconds:g} s, single-item requests ({args.encoding}), "
        f"{args.workers} worker(s), load by {generator}, {summary['machine']}"
    )
    print(f"offline encode:   {offline_rate:8.1f} items/s")
    print(
        f"server:           {result['items_per_s']:8.1f} items/s ({result['requests']} requests, failures "
        f"{result['failures'] or 'none'}), p50 {lat.get('p50', 0):.1f} ms, p90 {lat.get('p90', 0):.1f} ms, "
        f"p99 {lat.get('p99', 0):.1f} ms"
        + (f", mean forward batch {mean_batch:.1f} items" if args.workers == 1 else " (batch per worker: not summed)")
    )
    print(
        f"one connection:   {single['items_per_s']:8.1f} items/s, p50 {one.get('p50', 0):.1f} ms, "
        f"p99 {one.get('p99', 0):.1f} ms (batch wait {args.max_wait_ms:g} ms)"
    )
    print(f"server / offline: {summary['ratio_server_over_offline']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
