"""Inputs that could take memory or give a misleading answer: each run in a fresh process on the tiny checkpoint,
with its behaviour, seconds and peak RSS growth (from a reset high-water mark, after the model is loaded and warm).

Prints a markdown table (input -> behaviour -> seconds -> peak RSS growth) for the note and docs/inputs.md. A case
whose process grows past 4 GB, or runs past 120 s, is stopped and reported as such.

    python benchmarks/item_budgets.py            # every case
    python benchmarks/item_budgets.py text-1m    # one case
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STOP_BYTES = 4 * 2**30
STOP_SECONDS = 120


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def _cases(folder: Path, media: dict[str, str]) -> dict[str, tuple[str, object]]:
    """name -> (description, a callable of the model)."""
    import numpy as np

    from lco_embedding.testing import write_clip_with_silent_track, write_long_wav, write_wav

    photos = folder / "photos.png"
    photos.mkdir(exist_ok=True)
    hour = folder / "hour.wav"
    if not hour.exists():
        write_long_wav(hour, minutes=60, silent=True)
    talk = folder / "talk.wav"
    write_wav(talk, 0.1 * np.sin(np.arange(16000 * 40) / 10.0), 16000)
    silent_track = write_clip_with_silent_track(folder / "silent-track.mkv")
    wav_bytes = Path(media["wav"]).read_bytes()
    huge = {"min_pixels": 10**9, "max_pixels": 10**9}
    return {
        "image-1e9": (
            "64x64 PNG, min_pixels = max_pixels = 10**9",
            lambda m: m.encode({"image": media["png64"], **huge}),
        ),
        "video-1e9": ("video, min_pixels = max_pixels = 10**9", lambda m: m.encode({"video": media["mp4"], **huge})),
        "fps-inf": ("video, fps = inf", lambda m: m.encode({"video": media["mp4"], "fps": math.inf})),
        "fps-nan": ("video, fps = nan", lambda m: m.encode({"video": media["mp4"], "fps": math.nan})),
        "auto-silent-track": (
            "use_audio_in_video='auto', a sound track with no samples",
            lambda m: m.encode({"video": str(silent_track), "use_audio_in_video": "auto"}),
        ),
        "folder-png": ("a folder named photos.png", lambda m: m.encode(str(photos))),
        "text-1m": ("1,000,000 characters without spaces", lambda m: m.encode("x" * 1_000_000)),
        "wav-1h": (
            "1-hour silent 16 kHz WAV beside two other items",
            lambda m: m.encode([{"audio": str(hour)}, "a text", {"image": media["png"]}]),
        ),
        "segments-window-600": (
            "encode_segments(talk.wav, window=600)",
            lambda m: m.encode_segments(str(talk), window=600),
        ),
        "segments-frames": (
            "encode_segments of a frame-list video",
            lambda m: m.encode_segments({"video": [np.zeros((32, 32, 3), np.uint8)] * 4}),
        ),
        "server-image-1e9": (
            "server: 64x64 PNG item, min_pixels = max_pixels = 10**9",
            lambda m: _serve(m, {"image": _data_uri(media["png64"], "image/png"), **huge}),
        ),
        "server-text-window": (
            'server: {"text": "word " * 500, "segment": {"text": 1000000}}',
            lambda m: _serve(m, {"text": "word " * 500, "segment": {"text": 1_000_000}}),
        ),
        "wav-bytes": ("WAV bytes given bare to encode", lambda m: m.encode(wav_bytes)),
        "wav-bytes-segments": ("WAV bytes given bare to encode_segments", lambda m: m.encode_segments(wav_bytes)),
    }


def _data_uri(path: str, mime: str) -> str:
    import base64

    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"


_SERVERS: dict[int, str] = {}


def _serve(model, item: dict) -> str:
    """POST one request with ``item`` to a server of ``model`` in this process (started before the measurement
    by a first request, so its start-up is not counted); returns the answer's status and message."""
    import httpx

    from tests.serving.conftest import NAME

    url = _SERVERS[id(model)]
    response = httpx.post(f"{url}/v1/embeddings", json={"model": NAME, "input": [item]}, timeout=600)
    message = response.json().get("error", {}).get("message", "")
    return f"HTTP {response.status_code} {message}".strip()


def _start_server(model) -> None:
    """Serve ``model`` on a loopback port in a thread (the test suite's server), and warm it with one request."""
    import socket

    import httpx
    import uvicorn

    from lco_embedding.serving import ServerSettings, create_app
    from tests.serving.conftest import NAME

    app = create_app(model, ServerSettings(served_model_name=NAME))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    _SERVERS[id(model)] = url
    httpx.post(f"{url}/v1/embeddings", json={"model": NAME, "input": ["warm"]}, timeout=600)


def _run_case(name: str) -> dict:
    from lco_embedding import LCOEmbedder
    from lco_embedding.testing import build_tiny_checkpoint, make_test_media

    folder = Path(os.environ["ITEM_BUDGETS_DIR"])
    media = {k: str(v) for k, v in make_test_media(folder / "media").items()}
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(folder / "media" / "p64.png")
    media["png64"] = str(folder / "media" / "p64.png")
    checkpoint = folder / "tiny"
    if not (checkpoint / "config.json").exists():
        build_tiny_checkpoint(checkpoint)
    model = LCOEmbedder(str(checkpoint), device="cpu")
    model.encode(["warm", {"image": media["png"]}, {"audio": media["wav"]}, {"video": media["mp4"]}])
    description, case = _cases(folder, media)[name]
    if name.startswith("server-"):
        _start_server(model)
    stopped: list[str] = []

    def watch() -> None:
        while not stopped:
            if _status("VmRSS") - base > STOP_BYTES:
                stopped.append("grew past 4 GB")
                os._exit(3)
            time.sleep(0.05)

    _reset_peak()
    base = _status("VmRSS")
    threading.Thread(target=watch, daemon=True).start()
    began = time.monotonic()
    try:
        result = case(model)
        shape = getattr(result, "shape", None) or getattr(getattr(result, "embeddings", None), "shape", None)
        behaviour = f"embedded, shape {tuple(shape)}" if shape is not None else str(result)
    except Exception as e:  # the behaviour is what is measured
        behaviour = f"{type(e).__name__}: {e}"
    seconds = time.monotonic() - began
    stopped.append("done")
    growth = _status("VmHWM") - base
    return {"name": name, "input": description, "behaviour": behaviour, "seconds": seconds, "growth_mb": growth / 2**20}


def main() -> None:
    names = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ITEM_BUDGETS_DIR": tmp}
        if not names:
            from lco_embedding.testing import make_test_media

            names = list(_cases(Path(tmp), {k: str(v) for k, v in make_test_media(Path(tmp) / "media").items()}))
        rows = []
        for name in names:
            began = time.monotonic()
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--case", name],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=STOP_SECONDS + 60,
                )
                if done.returncode == 3:
                    row = {"name": name, "input": name, "behaviour": "stopped: grew past 4 GB", "seconds": math.nan}
                    row["growth_mb"] = STOP_BYTES / 2**20
                elif done.returncode != 0:
                    raise RuntimeError(done.stderr[-2000:])
                else:
                    row = json.loads(done.stdout.splitlines()[-1])
            except subprocess.TimeoutExpired:
                row = {"name": name, "input": name, "behaviour": "stopped: too long", "growth_mb": math.nan}
                row["seconds"] = time.monotonic() - began
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    print("| input | behaviour | s | peak RSS growth |\n|---|---|---|---|")
    for row in rows:
        behaviour = row["behaviour"].replace("|", "/").replace("\n", " ")
        behaviour = behaviour if len(behaviour) <= 220 else behaviour[:217] + "..."
        print(f"| {row['input']} | {behaviour} | {row['seconds']:.2f} | {row['growth_mb']:+.0f} MB |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--case"]:
        print(json.dumps(_run_case(sys.argv[2])))
    else:
        main()
