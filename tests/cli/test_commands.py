"""``lco-embed --help``, ``info`` and ``demo`` as subprocesses."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_every_option_has_help_and_verbosity_works_before_and_after_the_command(tiny_omni, monkeypatch):
    import logging

    import click
    from click.testing import CliRunner
    from transformers.utils import logging as transformers_logging

    from lco_embedding.cli.main import cli

    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"lco-embed {name} {param.opts[0]} has no help text"
    runner = CliRunner()
    assert '"data:image/png;base64,..."' in " ".join(runner.invoke(cli, ["serve", "--help"]).output.split())

    for variable in ("TRANSFORMERS_VERBOSITY", "HF_HUB_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(variable, raising=False)  # restored afterwards
    ours, root_handlers = logging.getLogger("lco_embedding"), list(logging.getLogger().handlers)
    saved = (ours.level, ours.propagate, list(ours.handlers), transformers_logging.get_verbosity())
    try:
        for args, level, quiet in (
            (["info", "--model", tiny_omni, "-vv"], logging.DEBUG, False),
            (["-v", "info", "--model", tiny_omni, "-q"], logging.INFO, True),
            (["info", "--model", tiny_omni], logging.WARNING, False),
        ):
            transformers_logging.enable_progress_bar()
            result = runner.invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            assert ours.level == level, args
            assert transformers_logging.is_progress_bar_enabled() is not quiet, args  # "Loading weights" hidden
            assert len(ours.handlers) == 1 and not ours.propagate  # one handler, however often it is configured
        assert logging.getLogger().handlers == root_handlers  # nothing on the root logger: no line printed twice
    finally:
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        ours.handlers[:] = saved[2]
        transformers_logging.set_verbosity(saved[3])
        transformers_logging.enable_progress_bar()


def test_info_reads_the_config_only(tiny_omni, tiny_vl):
    report = json.loads(run_cli("info", "--model", tiny_omni, "--json").stdout)
    assert report["dimension"] == 64 and report["layers"] == 2
    assert report["modalities"] == ["text", "image", "audio", "video"]
    assert report["model_type"] == "qwen2_5_omni_thinker" and report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["versions"]["lco-embedding"] and report["versions"]["torch"] and report["error"] is None
    table = run_cli("info", "--model", tiny_vl).stdout
    assert re.search(r"^modalities\s+text, image, video$", table, re.MULTILINE)
    offline = run_cli("info", check=False)  # the default hub model, with HF_HUB_OFFLINE=1
    assert offline.returncode == 1 and "transformers" in offline.stdout  # the versions are still shown
    assert "Error: cannot load 'LCO-Embedding/LCO-Embedding-Omni-3B': hub access is off" in offline.stderr


def test_loading_failures_are_one_clear_line_on_the_command_line(tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (["info", "--model", "empty"], "'empty' is a folder but not a checkpoint: it has no config.json"),
        (["encode", "x.txt", "--out", "o", "--model", "./tiny-typo"], "no such local folder: "),
    ]
    (tmp_path / "x.txt").write_text("hello")
    for args, message in cases:
        result = run_cli(*args, cwd=tmp_path, check=False)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "Repo id" not in result.stderr


def test_demo_runs_offline_end_to_end_and_its_commands_run_as_printed(tmp_path):
    # Without lco-embed on PATH (as in a virtual environment not activated), so it prints its script's full path.
    bare = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = run_cli("demo", "--out", "demo-out", cwd=tmp_path, env=bare)
    out = tmp_path / "demo-out"  # relative to the caller's folder, though the demo changes folder
    assert "TINY RANDOM checkpoint" in result.stdout and "MEAN NOTHING" in result.stdout
    assert "Retrying" not in result.stderr and "\n\n\n" not in result.stdout
    for title in ("text -> image", "text -> audio", "text -> video", "image -> text"):
        assert title in result.stdout
    tables = re.findall(r"^rank\s+score\s+id\s+modality$", result.stdout, re.MULTILINE)
    assert len(tables) == 4
    timed = result.stdout.split("3. Where in a recording")[1]
    assert re.search(r"^rank\s+score\s+id\s+modality\s+where$", timed, re.MULTILINE)
    assert all(span in timed for span in ("0:00-0:03", "0:03-0:06", "0:06-0:09", "0:09-0:12"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["failed"] == 0
    assert manifest["counts"]["embedded"] == 19  # 3 images, 4 sounds, 2 clips, 9 captions, 1 caption + image
    samples = Path(tmp_path) / "lco-embedding-demo" / "samples"
    size = sum(p.stat().st_size for p in samples.rglob("*") if p.is_file())
    assert size < 1_000_000
    assert os.path.isdir(Path(tmp_path) / "lco-embedding-demo" / "tiny-checkpoint")
    commands = result.stdout.split("Repeat it yourself:\n")[1].strip().splitlines()
    assert len(commands) == 3 and str(out) in commands[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # As printed, from another folder, without lco-embed on PATH: the search runs (one is enough: the encode
    # command is made of the same absolute paths and program, checked below).
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **bare}
    ran = subprocess.run(commands[2], shell=True, cwd=elsewhere, env=environment, capture_output=True, text=True)
    assert ran.returncode == 0 and "blue-square" in ran.stdout, (ran.stdout[-2000:], ran.stderr[-2000:])
    words = shlex.split(commands[0])
    program = shlex.split(commands[2])[0]
    assert words[0] == "cd" and Path(words[1]).is_dir() and words[3] == program and words[4] == "encode"
    assert Path(words[words.index("--model") + 1]).is_absolute() and words[words.index("--out") + 1] == str(out)
    assert (Path(words[1]) / "media").is_dir() and (Path(words[1]) / "captions.jsonl").is_file()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_the_openai_client_and_stops_on_sigterm(tiny_omni, tiny_reranker, embedder, workers):
    """One process (with --rerank-model), and --workers 2 (two processes on one port, prompts and settings carried
    to each)."""
    import socket
    import time

    import httpx
    import numpy as np
    import openai

    from tests.cli.conftest import LCO_EMBED

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [str(LCO_EMBED), "serve", "--model", tiny_omni, "--port", str(port), "--api-key", "k", "-q"]
    args += ["--prompt", "query=Find: ", "--prompt", "doc=", "--default-prompt", "query", "--workers", str(workers)]
    args += ["--rerank-model", tiny_reranker] if workers == 1 else []
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
        for _ in range(2 * workers):  # with several workers, connections may reach each
            got = client.embeddings.create(model="tiny", input=["a cat on a mat"]).data[0].embedding
            np.testing.assert_allclose(got, embedder.encode("a cat on a mat", prompt="Find: "), atol=1e-5, rtol=0)
        plain = client.embeddings.create(model="tiny", input=["a cat"], extra_body={"prompt_name": "doc"})
        np.testing.assert_allclose(plain.data[0].embedding, embedder.encode("a cat"), atol=1e-5, rtol=0)
        with pytest.raises(openai.BadRequestError, match=r"it has 'doc', 'query'\); the server adds prompts with `lco"):
            client.embeddings.create(model="tiny", input=["a cat"], extra_body={"prompt_name": "nope"})
        if workers == 1:  # the reranker beside the embedder: Cohere's shape, ranked as LCOReranker ranks
            from lco_embedding import LCOReranker

            body = {"model": "tiny", "query": "a cat", "documents": ["a dog in the fog", "a cat on a mat", "fog"]}
            reply = httpx.post(f"http://127.0.0.1:{port}/v2/rerank", json=body, headers={"Authorization": "Bearer k"})
            want = LCOReranker(tiny_reranker, device="cpu").rank("a cat", body["documents"])
            assert [r["index"] for r in reply.json()["results"]] == [hit["corpus_id"] for hit in want], reply.text
        # /metrics counts every worker's requests, whichever worker answers the scrape (2 x workers + 1 answered 200)
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer k"}).text
        answered = [line for line in scrape.splitlines() if line.startswith('lco_requests_total{status="200"}')]
        assert answered and float(answered[0].split()[-1]) == 2 * workers + 1 + (workers == 1), scrape[:2000]
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM
        assert process.wait(timeout=30) in (0, -15)
    output = process.stderr.read()
    assert f"on http://127.0.0.1:{port}/v1" in output and "Traceback" not in output
    assert "Loading weights" not in output  # -q reaches the workers too
