"""Load test of `lco-embed serve`: N concurrent single-item clients on loopback, beside offline `encode`, in one run.

1. offline: `LCOEmbedder.encode` over the same items in this process (items/s), then the model is released;
2. server: `lco-embed serve` in its own process; N clients (asyncio + httpx, one connection each) send one-item
   requests back to back for a fixed time (base64 responses, as the openai client asks for).

Reports requests/s, items/s, latency p50/p90/p99, the server's mean forward batch (from /metrics) and the ratio of
server items/s to offline items/s. The clients share the machine with the server.

    python benchmarks/serve_load.py                                    # tiny model, 32 clients, 30 s
    python benchmarks/serve_load.py --preset cpu-7b-scaled --seconds 60 --json result.json
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

WORDS = "the of and to in is that for it with as was on be by at a cat dog fox mat fog river light stone".split()


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


async def load(url: str, items: list[str], clients: int, seconds: float, name: str) -> dict:
    import httpx

    latencies: list[float] = []
    failures: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def client(number: int) -> None:
        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=url, timeout=120) as session:
            while time.perf_counter() < stop:
                body = {"model": name, "input": rng.choice(items), "encoding_format": "base64"}
                began = time.perf_counter()
                response = await session.post("/v1/embeddings", json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - began)
                else:
                    failures[response.status_code] = failures.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    lat = np.array(latencies)
    return {
        "requests": len(latencies),
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
    parser.add_argument("--preset", default="tiny", help="tiny, or a preset of benchmarks/models.py")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lco-bench-serve-"))
    model = build_model(args.preset, work)
    items = texts(256)
    offline_rate = offline(model, items, max_wait_seconds=min(args.seconds, 20))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lco_embed = str(Path(sys.executable).with_name("lco-embed"))
    command = [lco_embed, "serve", "--model", model, "--port", str(port), "--served-model-name", "bench"]
    server = subprocess.Popen(
        [*command, "--max-wait-ms", str(args.max_wait_ms), "--max-queue-items", "100000"], stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        while True:
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        asyncio.run(load(url, items, 4, 2, "bench"))  # warm-up
        batches_before, items_before = metric(url, "lco_batch_items_count"), metric(url, "lco_batch_items_sum")
        result = asyncio.run(load(url, items, args.clients, args.seconds, "bench"))
        batches = metric(url, "lco_batch_items_count") - batches_before
        mean_batch = (metric(url, "lco_batch_items_sum") - items_before) / max(batches, 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "preset": args.preset,
        "clients": args.clients,
        "seconds": args.seconds,
        "max_wait_ms": args.max_wait_ms,
        "offline_items_per_s": offline_rate,
        "server": result,
        "mean_forward_batch_items": mean_batch,
        "ratio_server_over_offline": result["items_per_s"] / offline_rate,
    }
    lat = result["latency_ms"]
    print(f"{args.preset}, {args.clients} clients x {args.seconds:g} s, single-item requests, {summary['machine']}")
    print(f"offline encode:  {offline_rate:8.1f} items/s")
    print(
        f"server:          {result['items_per_s']:8.1f} items/s ({result['requests']} requests, failures "
        f"{result['failures'] or 'none'}), p50 {lat.get('p50', 0):.0f} ms, p90 {lat.get('p90', 0):.0f} ms, "
        f"p99 {lat.get('p99', 0):.0f} ms, mean forward batch {mean_batch:.1f} items"
    )
    print(f"server / offline: {summary['ratio_server_over_offline']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
