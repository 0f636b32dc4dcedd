"""Every example script runs end to end (on the tiny checkpoint), in one real subprocess: each script runs as
``__main__`` from the examples folder, one after the other, so the interpreter and torch start once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FOLDER = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(p.name for p in FOLDER.glob("*.py") if not p.name.startswith("_"))
_RUNNER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for script in sys.argv[1:]:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
    except BaseException:
        results[script] = {"ok": False, "stdout": out.getvalue(), "stderr": err.getvalue() + traceback.format_exc()}
    else:
        results[script] = {"ok": True, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(results))
"""


def test_every_example_runs(tiny_omni):
    env = {**os.environ, "LCO_MODEL": tiny_omni, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(FOLDER)}
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *EXAMPLES], cwd=FOLDER, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.splitlines()[-1])
    assert sorted(results) == EXAMPLES and len(EXAMPLES) >= 8
    for script, outcome in results.items():
        assert outcome["ok"], f"{script} failed:\n{outcome['stderr'][-3000:]}"
        assert "TINY RANDOM" not in outcome["stderr"], script  # it loaded the given checkpoint, no fallback
        assert outcome["stdout"].strip(), f"{script} printed nothing"
