"""A pytest hook that fails a run in which more tests skip than ``tests/allowed_skips.txt`` allows.

A test skipped for a missing optional dependency would let a broken install drop a whole suite quietly; this makes
the count visible and binding (raise the number there deliberately, with the reason, when a skip is intended).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")


def allowed_skips() -> int:
    """The number of skipped tests the suite accepts: the first number in tests/allowed_skips.txt."""
    lines = [line.split("#")[0].strip() for line in ALLOWED_SKIPS.read_text().splitlines()]
    return int(next(line for line in lines if line))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn a run that skipped more tests than allowed into a failed one, naming the skipped tests."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the workers' reports reach the controller, which counts them
    skipped = reporter.stats.get("skipped", [])
    if len(skipped) > allowed_skips() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        names = ", ".join(report.nodeid for report in skipped[:10])
        reporter.write_line(
            f"{len(skipped)} tests skipped, more than the {allowed_skips()} tests/allowed_skips.txt allows: {names}. "
            "Install what they need, or raise the number there on purpose.",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
