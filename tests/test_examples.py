"""Every example script runs end to end as a real subprocess (on the tiny checkpoint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(
    p.name for p in (Path(__file__).parent.parent / "examples").glob("*.py") if not p.name.startswith("_")
)


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script, tiny_omni):
    folder = Path(__file__).parent.parent / "examples"
    env = {**os.environ, "LCO_MODEL": tiny_omni, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, script], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TINY RANDOM" not in result.stderr  # it loaded the given checkpoint, no fallback
