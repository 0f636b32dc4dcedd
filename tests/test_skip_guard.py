"""The suite fails when more tests skip than tests/allowed_skips.txt allows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.skip_guard import allowed_skips


def run_suite(folder: Path, tests: str) -> subprocess.CompletedProcess:
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text("from tests.skip_guard import pytest_sessionfinish  # noqa: F401\n")
    (folder / "test_probe.py").write_text(tests)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(folder)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)


def test_more_skips_than_allowed_fail_the_run_and_name_the_tests(tmp_path):
    skips = "".join(f"def test_skipped_{i}():\n    pytest.skip('no module')\n" for i in range(allowed_skips() + 1))
    result = run_suite(tmp_path, "import pytest\n\ndef test_ok():\n    pass\n" + skips)
    assert result.returncode == 1, result.stdout
    assert "more than the" in result.stdout and "test_skipped_0" in result.stdout


def test_a_run_within_the_allowance_passes(tmp_path):
    result = run_suite(tmp_path, "def test_ok():\n    pass\n")
    assert result.returncode == 0, result.stdout + result.stderr
