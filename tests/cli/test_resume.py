"""Exactly once: ``kill -9`` an ``lco-embed encode`` at different moments, re-run, and get the uninterrupted output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from tests.cli.conftest import committed_shards, copy_media, kill_at, read_rows, run_cli

TOL = 1e-5


def _corpus(root: Path, media: dict[str, str]) -> list[Path]:
    names = {}
    for i in range(6):
        names[f"media/img{i}.png"] = ("png", "jpg", "png_rgba")[i % 3]
        names[f"media/snd{i}.wav"] = ("wav", "wav_22k_stereo")[i % 2]
    names["media/zz_corrupt.png"] = "corrupt_png"
    copy_media(media, root, names)
    lines = [json.dumps({"id": f"t{i}", "text": f"sentence {i} " + "word " * (i % 7), "n": i}) for i in range(240)]
    lines[10] = "{broken json"
    lines[20] = json.dumps({"id": "missing", "image": "media/nowhere.png"})
    (root / "texts.jsonl").write_text("\n".join(lines) + "\n")
    return [root / "media", root / "texts.jsonl"]


def test_kill_9_at_different_moments_then_rerun_equals_an_uninterrupted_run(tmp_path, media, tiny_omni):
    inputs = _corpus(tmp_path / "data", media)
    args = ["encode", *inputs, "--model", tiny_omni, "--shard-size", 5, "--batch-size", 2, "-q"]
    run_cli(*args, "--out", tmp_path / "uninterrupted")

    out = tmp_path / "interrupted"
    rng = random.Random(0)
    between = rng.choice([n for n in range(6, 40) if n % 5])  # records past a commit, before the next one
    kill_at([*args, "--out", out], "commit:2")  # 1. right after the second shard is committed
    assert committed_shards(out) == 2
    kill_at([*args, "--out", out], f"record:{between}")  # 2. in the resumed run, between commits, a shard half full
    assert committed_shards(out) == 2 + between // 5
    kill_at([*args, "--out", out], "start")  # 3. while it is still starting up (before the model loads)
    partial = json.loads((out / "manifest.json").read_text())
    assert partial["status"] == "running" and partial["counts"]["done"] == 5 * (2 + between // 5)

    result = run_cli(*args, "--out", out)
    assert f"Resumed at item {partial['counts']['done']}" in result.stdout

    expected, got = read_rows(tmp_path / "uninterrupted"), read_rows(out)
    assert [{k: v for k, v in r.items() if k != "embedding"} for r in got] == [
        {k: v for k, v in r.items() if k != "embedding"} for r in expected
    ]
    np.testing.assert_allclose(
        np.stack([r["embedding"] for r in got]), np.stack([r["embedding"] for r in expected]), atol=TOL, rtol=0
    )
    errors = [(out / "errors.jsonl").read_text(), (tmp_path / "uninterrupted" / "errors.jsonl").read_text()]
    assert errors[0] == errors[1] and len(errors[0].splitlines()) == 3
    final, reference = (json.loads((d / "manifest.json").read_text()) for d in (out, tmp_path / "uninterrupted"))
    assert final["counts"] == reference["counts"] == {"total": 253, "done": 253, "embedded": 250, "failed": 3}
    assert final["shards"] == reference["shards"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "uninterrupted").iterdir())
