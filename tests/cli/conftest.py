"""Running ``lco-embed`` as a real subprocess (the installed console script), offline, on the tiny checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

LCO_EMBED = Path(sys.executable).with_name("lco-embed")


def run_cli(*args, cwd=None, stdin=None, env=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    """Run ``lco-embed ARGS`` and return the finished process (asserting exit code 0 unless ``check=False``)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    result = subprocess.run(
        [str(LCO_EMBED), *map(str, args)],
        cwd=cwd,
        input=stdin,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def start_cli(*args, cwd=None, env=None) -> subprocess.Popen:
    """Start ``lco-embed ARGS`` without waiting (its output is discarded)."""
    return subprocess.Popen(
        [str(LCO_EMBED), *map(str, args)],
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def committed_shards(out: Path) -> int:
    """Shards listed in ``out``'s manifest (0 before there is one)."""
    try:
        return len(json.loads((out / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):
        return 0


def kill_at(args: list, stop_at: str, timeout: float = 300) -> None:
    """Run ``lco-embed ARGS`` until it reaches ``stop_at`` (``start``, ``commit:N``, ``record:N``: where the job's
    events hook stops it, tests/cli/stop_at.py), then ``kill -9`` it there. The state it dies in does not depend on
    timing."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.cli.stop_at", stop_at, *map(str, args)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            pid, status = os.waitpid(process.pid, os.WUNTRACED | os.WNOHANG)
            if pid and os.WIFSTOPPED(status):
                break
            assert not pid, f"the run ended (status {status}) before it reached {stop_at}"
            assert time.monotonic() < deadline, f"the run did not reach {stop_at} within {timeout} s"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def read_rows(folder) -> list[dict]:
    """Every row of an output folder's shards, in order, embeddings as numpy arrays."""
    rows = []
    for path in sorted(Path(folder).glob("part-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            row["embedding"] = np.asarray(row["embedding"])
            rows.append(row)
    return rows


def copy_media(media: dict[str, str], folder: Path, names: dict[str, str]) -> Path:
    """Copy test media into ``folder`` under new names: ``{new name: media key}``."""
    for name, key in names.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(media[key], target)
    return folder
