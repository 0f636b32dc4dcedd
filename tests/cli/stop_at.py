"""Run ``lco-embed ARGS`` stopping itself (``SIGSTOP``) at a point of its corpus job, for a test to ``kill -9`` it
in a known state instead of after a delay (POSIX only):

    python -m tests.cli.stop_at commit:2 encode ... --out out

Points: ``start`` (before the model loads), ``commit:N`` (right after the run's N-th shard commit), ``record:N``
(after its N-th record, before any commit that completes); in an update also ``fingerprint:N`` (after planning read
its N-th changed item) and ``update`` (every shard staged, right before the update's commit). The hook reaches the
job as ``lco-embed``'s own ``job_events`` hook (``lco_embedding.cli.main.main(hooks=...)``).
"""

from __future__ import annotations

import os
import signal
import sys


def stopper(point: str):
    """The job-events callback that stops this process at ``point``."""
    event, _, number = point.partition(":")
    if event not in ("start", "commit", "record", "fingerprint", "update") or (
        event not in ("start", "update") and not number.isdigit()
    ):
        raise SystemExit(f"a stop point is start, commit:N, record:N, fingerprint:N or update, got {point!r}")

    def events(name: str, count: int) -> None:
        if name == event and count == int(number or 0):
            os.kill(os.getpid(), signal.SIGSTOP)

    return events


if __name__ == "__main__":
    from lco_embedding.cli.main import main

    main(sys.argv[2:], hooks={"job_events": stopper(sys.argv[1])})
