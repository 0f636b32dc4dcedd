"""``lco-embed --help``, ``info`` and ``demo`` as subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import run_cli


def test_help_lists_every_command_and_reads_without_importing_torch():
    result = run_cli("--help")
    for command in ("demo", "encode", "index", "info", "search"):
        assert re.search(rf"^  {command}\s+\S", result.stdout, re.MULTILINE), command
    encode_help = run_cli("encode", "--help").stdout
    for text in ("--out", "--model", "--batch-size", "--max-tokens", "--device", "--precision", "resumes", ".parquet"):
        assert text in encode_help
    # `python -m lco_embedding.cli` is the same program, and importing it does not import torch (fast --help)
    module = subprocess.run([sys.executable, "-m", "lco_embedding.cli", "--help"], capture_output=True, text=True)
    assert module.returncode == 0 and "Usage: lco-embed" in module.stdout
    code = "import sys, lco_embedding.cli.main; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_info_reads_the_config_only(tiny_omni, tiny_vl):
    report = json.loads(run_cli("info", "--model", tiny_omni, "--json").stdout)
    assert report["dimension"] == 64 and report["layers"] == 2
    assert report["modalities"] == ["text", "image", "audio", "video"]
    assert report["model_type"] == "qwen2_5_omni_thinker" and report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["versions"]["lco-embedding"] and report["versions"]["torch"] and report["error"] is None
    table = run_cli("info", "--model", tiny_vl).stdout
    assert re.search(r"^modalities\s+text, image, video$", table, re.MULTILINE)
    offline = run_cli("info", check=False)  # the default hub model, with HF_HUB_OFFLINE=1
    assert offline.returncode == 1 and "cannot read 'LCO-Embedding/LCO-Embedding-Omni-3B'" in offline.stderr
    assert "transformers" in offline.stdout  # the versions are still shown


def test_demo_runs_offline_end_to_end(tmp_path):
    out = tmp_path / "demo-out"
    result = run_cli("demo", "--out", out, env={"TMPDIR": str(tmp_path)})
    assert "TINY RANDOM checkpoint" in result.stdout and "MEAN NOTHING" in result.stdout
    for title in ("text -> image", "text -> audio", "text -> video", "image -> text"):
        assert title in result.stdout
    tables = re.findall(r"^rank\s+score\s+id\s+modality$", result.stdout, re.MULTILINE)
    assert len(tables) == 4
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["failed"] == 0
    assert manifest["counts"]["embedded"] == 19  # 3 images, 4 sounds, 2 clips, 9 captions, 1 caption + image
    samples = Path(tmp_path) / "lco-embedding-demo" / "samples"
    size = sum(p.stat().st_size for p in samples.rglob("*") if p.is_file())
    assert size < 1_000_000
    assert os.path.isdir(Path(tmp_path) / "lco-embedding-demo" / "tiny-checkpoint")
    assert f"lco-embed search {out}" in result.stdout


def test_serve_answers_the_openai_client_and_stops_on_sigterm(tiny_omni, embedder):
    import socket
    import time

    import httpx
    import numpy as np
    import openai

    from tests.cli.conftest import LCO_EMBED

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [str(LCO_EMBED), "serve", "--model", tiny_omni, "--port", str(port), "--api-key", "k"]
    process = subprocess.Popen([*args, "--served-model-name", "tiny"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0)
        got = client.embeddings.create(model="tiny", input=["a cat on a mat"]).data[0].embedding
        np.testing.assert_allclose(got, embedder.encode("a cat on a mat"), atol=1e-5, rtol=0)
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM
        assert process.wait(timeout=30) in (0, -15)
    output = process.stderr.read()
    assert f"on http://127.0.0.1:{port}/v1" in output and "Traceback" not in output
