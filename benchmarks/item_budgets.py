"""Inputs that could take memory or give a misleading answer: each run in a fresh process on the tiny checkpoint,
with its behaviour, seconds and peak RSS growth (from a reset high-water mark, after the model is loaded and warm).

Prints a markdown table (input -> behaviour -> seconds -> peak RSS growth) for the note and docs/inputs.md. A case
whose process grows past 4 GB, or runs past 120 s, is stopped and reported as such.

    python benchmarks/item_budgets.py            # every case
    python benchmarks/item_budgets.py text-1m    # one case
    python benchmarks/item_budgets.py r4-        # the cases whose names start so (round four: stores, search,
                                                 # eval, presets, the server's request shapes)

A case is ``(description, act)`` or ``(description, act, prepare)``: ``prepare()`` (not measured) runs first, and
``act(model)`` is what is timed and measured.
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
        **_round_four(folder, media),
    }


def _round_four(folder: Path, media: dict[str, str]) -> dict[str, tuple]:
    """Round four: stores holding a killed writer's uncommitted row, malformed filters, calibration of identical
    rows, eval datasets, a changed preset, and what one server request may cost."""
    import numpy as np

    from lco_embedding.corpus import encode_corpus, open_store, search_folder
    from lco_embedding.evaluation import evaluate_retrieval
    from tests.corpus.conftest import write_folder
    from tests.corpus.test_stores import _with_uncommitted_row, target
    from tests.evaluation.test_bad_inputs import _write as write_dataset

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((20, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stores = {kind: target(kind, folder / "r4" / kind) for kind in ("lancedb", "milvus")}

    def uncommitted(kind: str):
        return lambda: _with_uncommitted_row(kind, folder / "r4" / kind, vectors)

    def identical():
        twins = vectors[:12].copy()
        twins[11] = twins[10]
        write_folder(folder / "r4" / "twins", twins, ["text"] * 10 + ["image", "image"], shard_size=6)

    def small(kind: str):
        return lambda: write_folder(target(kind, folder / "r4" / f"small-{kind}"), vectors[:8], shard_size=4)

    def empty_milvus():
        write_folder(target("milvus", folder / "r4" / "empty"), vectors[:4], shard_size=4, errors_every=1)

    def not_milvus():
        (folder / "r4").mkdir(parents=True, exist_ok=True)
        (folder / "r4" / "notmilvus.db").write_text("not a database")

    def ids(hits) -> str:
        return f"{len(hits[0])} hits: {[h.id for h in hits[0]][:4]}..."

    def dataset(name: str, corpus: list, queries: list, qrels: str) -> Path:
        return write_dataset(folder / "r4" / name, corpus, queries, qrels)  # the eval tests' writer

    corpus = [{"_id": "d1", "text": "a cat on a mat"}, {"_id": "d2", "text": "rivers"}]
    queries = [{"_id": "q1", "text": "cat"}, {"_id": "q2", "text": "sea"}]

    def evaluate(name, corpus_rows, query_rows, qrels, **kwargs):
        return lambda m: _eval_summary(
            evaluate_retrieval(dataset(name, corpus_rows, query_rows, qrels), folder / "r4" / f"{name}-out",
                               model=kwargs.pop("model", m), **kwargs)
        )  # fmt: skip

    table = folder / "r4" / "texts.jsonl"

    def default_run():
        table.parent.mkdir(parents=True, exist_ok=True)
        table.write_text("".join(json.dumps({"id": f"t{i}", "text": f"text {i}"}) + "\n" for i in range(4)))
        encode_corpus([table], folder / "r4" / "preset-out", model=str(folder / "tiny"), show_progress_bar=False)

    png = _tiny_png_uri()
    mb_text = "word " * (2**20 // 5)
    twenty_thousand = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png}}] * 20_000}]
    return {
        "r4-breakout-lancedb": (
            "search LanceDB (an uncommitted row present) --where '1=1) OR (1=1'",
            lambda m: ids(search_folder(stores["lancedb"], vectors[0], k=50, where="1=1) OR (1=1")),
            uncommitted("lancedb"),
        ),
        "r4-breakout-milvus": (
            "search Milvus (an uncommitted row present) --where '1==1) or (1==1'",
            lambda m: ids(search_folder(stores["milvus"], vectors[0], k=50, where="1==1) or (1==1")),
            uncommitted("milvus"),
        ),
        "r4-calibrate-twins": (
            "--calibrate, the only two image rows identical (std 0), an image query",
            lambda m: (
                "scores "
                + ", ".join(
                    f"{h.score:.2f}"
                    for h in search_folder(
                        folder / "r4" / "twins", vectors[0], k=12, calibrate=True, query_modality="image"
                    )[0][:4]
                )
                + ", ..."
            ),
            identical,
        ),  # fmt: skip
        "r4-milvus-k": (
            "search Milvus (8 rows) -k 100000000",
            lambda m: ids(search_folder(target("milvus", folder / "r4" / "small-milvus"), vectors[0], k=100_000_000)),
            small("milvus"),
        ),
        "r4-nan-query": (
            "search_folder(store, a NaN vector)",
            lambda m: search_folder(target("lancedb", folder / "r4" / "small-lancedb"), np.full(64, np.nan)),
            small("lancedb"),
        ),
        "r4-s3": (
            "--out lancedb://s3://bucket/corpus",
            lambda m: (open_store("lancedb://s3://bucket/corpus"), "opened")[1],
        ),
        "r4-not-milvus": (
            "search milvus:///path/notmilvus.db/corpus (a plain file)",
            lambda m: open_store(f"milvus://{folder / 'r4' / 'notmilvus.db'}/corpus").exists(),
            not_milvus,
        ),
        "r4-milvus-bad-where": (
            'search Milvus --where "id == \'x" (unclosed quote)',
            lambda m: ids(
                search_folder(target("milvus", folder / "r4" / "small-milvus"), vectors[0], where="id == 'x")
            ),
            small("milvus"),
        ),
        "r4-milvus-empty": (
            "search an empty Milvus collection",
            lambda m: ids(search_folder(target("milvus", folder / "r4" / "empty"), vectors[0])),
            empty_milvus,
        ),
        "r4-qrels-2.5": (
            "qrels without header, first line scores 2.5",
            evaluate("q25", corpus, queries, "q1\td1\t2.5\nq2\td2\t1\n"),
        ),
        "r4-qrels-zero": ("all judgements <= 0", evaluate("q0", corpus, queries, "q1\td1\t0\n")),
        "r4-qrels-empty": ("an empty qrels file", evaluate("qe", corpus, queries, "")),
        "r4-corpus-empty": ("an empty corpus.jsonl", evaluate("ce", [], queries, "q1\td1\t1\n")),
        "r4-title-only": (
            'corpus row {"_id": "d5", "title": "Rivers", "text": ""}',
            evaluate(
                "title", [*corpus, {"_id": "d5", "title": "Rivers", "text": ""}], queries, "q1\td1\t1\nq2\td5\t1\n"
            ),
        ),
        "r4-query-list": (
            'query {"_id": "q3", "text": ["a", "b"]}',
            evaluate("qlist", corpus, [*queries, {"_id": "q3", "text": ["a", "b"]}], "q1\td1\t1\n"),
        ),
        "r4-query-not-image": (
            "a query whose image path is a WAV file",
            evaluate("qimg", corpus, [*queries, {"_id": "q3", "image": media["wav"]}], "q1\td1\t1\nq3\td1\t1\n"),
        ),
        "r4-preset-card": (
            "encode ... --preset card on an output made with the default preset",
            lambda m: encode_corpus(
                [table],
                folder / "r4" / "preset-out",
                model=str(folder / "tiny"),
                embedder_kwargs={"preset": "card"},
                show_progress_bar=False,
            ),
            default_run,
        ),  # fmt: skip
        "server-v2-300-inputs": (
            "server: /v2/embed with 300 inputs",
            lambda m: _serve_v2(m, {"inputs": [{"content": [{"type": "text", "text": "x"}]}] * 300}),
        ),
        "server-v2-3000-inputs": (
            "server: /v2/embed with 3,000 inputs",
            lambda m: _serve_v2(m, {"inputs": [{"content": [{"type": "text", "text": "x"}]}] * 3000}),
        ),
        "server-v2-start": (
            'server: /v2/embed truncate "START", a 1 MB text',
            lambda m: _serve_v2(m, {"texts": [mb_text], "truncate": "START"}, show="meta"),
        ),
        "server-messages-20000": (
            "server: one messages entry of 20,000 tiny PNG parts (4.4 MB body)",
            lambda m: _serve_body(m, {"messages": twenty_thousand}),
        ),
        "server-card-1mb": (
            "server --preset card: one 1 MB text",
            lambda m: _serve_body(m, {"input": [mb_text]}),
        ),
    }


def _eval_summary(result) -> str:
    return "results: " + ", ".join(f"{pair} ({int(v['queries'])} queries)" for pair, v in result.pairs.items())


def _tiny_png_uri() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 120, 120)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _serve_body(model, body: dict) -> str:
    """POST ``body`` to ``/v1/embeddings`` of the server of ``model``; its status and message."""
    import httpx

    from tests.serving.conftest import NAME

    response = httpx.post(f"{_SERVERS[id(model)]}/v1/embeddings", json={"model": NAME, **body}, timeout=600)
    message = response.json().get("error", {}).get("message", "")
    return f"HTTP {response.status_code} {message}".strip()


def _serve_v2(model, body: dict, show: str = "message") -> str:
    """POST ``body`` to ``/v2/embed``; its status and message (or ``meta``)."""
    import httpx

    from tests.serving.conftest import NAME

    body = {"model": NAME, "input_type": "search_document", **body}
    response = httpx.post(f"{_SERVERS[id(model)]}/v2/embed", json=body, timeout=600)
    return f"HTTP {response.status_code} {response.json().get(show, '')}"


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
    preset = {"preset": "card"} if name == "server-card-1mb" else {}
    model = LCOEmbedder(str(checkpoint), device="cpu", **preset)
    model.encode(["warm", {"image": media["png"]}, {"audio": media["wav"]}, {"video": media["mp4"]}])
    description, case, *prepare = _cases(folder, media)[name]
    for step in prepare:
        step()
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
        from lco_embedding.testing import make_test_media

        every = list(_cases(Path(tmp), {k: str(v) for k, v in make_test_media(Path(tmp) / "media").items()}))
        names = [name for name in every if not names or any(name.startswith(prefix) for prefix in names)]
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
