"""``lco-embed train`` / ``lco-embed merge`` as real subprocesses, and data-parallel training under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from lco_embedding import LCOEmbedder
from lco_embedding.training import load_adapter
from tests.cli.conftest import run_cli
from tests.training.conftest import write_jsonl

TORCHRUN = Path(sys.executable).with_name("torchrun")
FAST = ["--lr", "3e-3", "--warmup-ratio", "0", "--lora-rank", "8", "--lora-alpha", "16", "--lora-dropout", "0"]


def _losses(run: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_train_then_merge(trainable_checkpoint, toy_data, media, tmp_path):
    path, _ = toy_data
    result = run_cli(
        "train", path, "-m", trainable_checkpoint, "--out", tmp_path / "run", "--max-steps", 3, "--batch-size", 6,
        "--mini-batch-size", 4, "--log-steps", 1, *FAST,
    )  # fmt: skip
    assert "step 3/3" in result.stderr and "Wrote the adapter" in result.stdout
    assert len(_losses(tmp_path / "run")) == 3
    run_cli("merge", tmp_path / "run" / "adapter", "--out", tmp_path / "merged")
    items = ["a cat on a mat", {"image": media["png"]}]
    expected = load_adapter(tmp_path / "run" / "adapter", device="cpu").encode(items)
    np.testing.assert_allclose(LCOEmbedder(str(tmp_path / "merged"), device="cpu").encode(items), expected, atol=1e-5)
    again = run_cli("train", path, "-m", trainable_checkpoint, "--out", tmp_path / "run", check=False)
    assert again.returncode == 1 and "--resume" in again.stderr


def test_bad_line_is_reported_with_its_number(trainable_checkpoint, tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [["a", "b"], ["c", "d"], {"anchor": "e"}])
    result = run_cli("train", path, "-m", trainable_checkpoint, "--out", tmp_path / "run", check=False)
    assert result.returncode == 1
    assert "pairs.jsonl, line 3: missing 'positive'" in result.stderr


def test_two_processes_train_like_one(trainable_checkpoint, toy_data, tmp_path):
    """torchrun with 2 processes (gloo): each embeds its share (4 + 3 of a global batch of 7), documents are
    gathered across them and gradients summed, so the adapter equals the one-process run's."""
    path, _ = toy_data
    arguments = ["train", path, "-m", trainable_checkpoint, "--max-steps", 3, "--batch-size", 7, *FAST]
    run_cli(*arguments, "--out", tmp_path / "one")
    command = [TORCHRUN, "--standalone", "--nproc-per-node", 2, "-m", "lco_embedding.cli", *arguments]
    result = subprocess.run(
        [str(c) for c in [*command, "--out", tmp_path / "two"]],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for key in ("loss", "grad_norm"):
        np.testing.assert_allclose(_losses(tmp_path / "two", key), _losses(tmp_path / "one", key), rtol=1e-5)
    one = load_file(tmp_path / "one" / "adapter" / "adapter_model.safetensors")
    two = load_file(tmp_path / "two" / "adapter" / "adapter_model.safetensors")
    assert one.keys() == two.keys()
    for key in one:  # Adam divides by the root of tiny gradients, magnifying their rounding: compare to the scale
        assert float((two[key] - one[key]).abs().max()) <= 1e-3 * float(one[key].abs().max()), key
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2
