"""Running ``lco-embed`` as a real subprocess (the installed console script), offline, on the tiny checkpoint."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tests.cli.zygote import LCO_EMBED, READ_AT_USE

REPOSITORY = Path(__file__).resolve().parents[2]
# LCO_TEST_FRESH_PROCESS=1: every command a fresh ``lco-embed`` process instead of a fork of the server.
FRESH = os.environ.get("LCO_TEST_FRESH_PROCESS") == "1"


class _ForkServer:
    """This test process's tests/cli/zygote.py: started at the first command, ended with this process."""

    _instance: _ForkServer | None = None
    environment: dict[str, str] | None = None
    """The environment the server was started with: this process's at the first command (after the fixtures that
    set variables at start-up, e.g. ``OMP_NUM_THREADS`` in xdist workers, have run), offline."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="lco-zygote-")
        self.path = os.path.join(self.folder, "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli.zygote", self.path],
            cwd=REPOSITORY,
            env=_ForkServer.base(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.folder, "log"), "w"),
            text=True,
        )
        started = self.process.stdout.readline().strip() == "ready"
        assert started, "the fork server did not start:\n" + Path(self.folder, "log").read_text()[-3000:]
        atexit.register(self.close)

    @classmethod
    def base(cls) -> dict[str, str]:
        """The server's environment (fixed at the first command of this process)."""
        if cls.environment is None:
            cls.environment = {**os.environ, "HF_HUB_OFFLINE": "1"}
        return cls.environment

    @classmethod
    def get(cls) -> _ForkServer:
        if cls._instance is None or cls._instance.process.poll() is not None:
            cls._instance = cls()
        return cls._instance

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, args: list[str], cwd, environment: dict, files: list, stop_at: str | None = None) -> _Run:
        """Fork ``lco-embed ARGS`` with ``files`` as its stdin, stdout and stderr."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.path)
        request = {"args": args, "cwd": os.path.abspath(cwd or os.getcwd()), "env": environment, "stop_at": stop_at}
        socket.send_fds(connection, [(json.dumps(request) + "\n").encode()], [f.fileno() for f in files])
        return _Run(connection)


class _Run:
    """A command the fork server started: its pid and what its watcher reports."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.reports = connection.makefile("r")
        self.pid = self.next(timeout=60)["pid"]

    def next(self, timeout: float) -> dict:
        """The next report (``{"stopped": True}`` or ``{"exit": code}``) within ``timeout`` seconds."""
        self.connection.settimeout(timeout)
        line = self.reports.readline()
        assert line, "the fork server's watcher ended without reporting"
        return json.loads(line)

    def wait(self, timeout: float) -> int:
        """The exit code (minus the signal that ended it); kills the run after ``timeout`` seconds."""
        try:
            report = self.next(timeout)
        except TimeoutError:
            self.kill()
            raise
        while "exit" not in report:  # stopped, then continued by someone
            report = self.next(timeout)
        self.connection.close()
        return report["exit"]

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _environment(env: dict | None, words: list[str]) -> tuple[dict, bool]:
    """The command's environment, and whether a fork of the server can run it: only variables read when used differ
    from the server's, and the command does not start Ray (whose shared-memory mutexes abort a forked child at its
    exit: such runs start fresh)."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    base = _ForkServer.base()
    changed = {k for k in environment.keys() | base.keys() if environment.get(k) != base.get(k)}
    return environment, not FRESH and changed <= READ_AT_USE and not any(w.startswith("--ray") for w in words)


def run_cli(*args, cwd=None, stdin=None, env=None, check=True, timeout=300) -> subprocess.CompletedProcess:
    """Run ``lco-embed ARGS`` and return the finished process (asserting exit code 0 unless ``check=False``).

    The command runs in a child of this process's fork server (tests/cli/zygote.py) when only ``PATH`` or
    ``TMPDIR`` differ from the environment at collection, else as a fresh process of the console script."""
    words = [str(arg) for arg in args]
    environment, forkable = _environment(env, words)
    if forkable:
        files = [tempfile.TemporaryFile("w+") for _ in range(3)]
        given, out, err = files
        with given, out, err:
            given.write(stdin or "")
            given.seek(0)
            code = _ForkServer.get().start(words, cwd, environment, files).wait(timeout)
            out.seek(0), err.seek(0)
            result = subprocess.CompletedProcess([str(LCO_EMBED), *words], code, out.read(), err.read())
    else:
        result = subprocess.run(
            [str(LCO_EMBED), *words], cwd=cwd, input=stdin, env=environment, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
    if check:
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


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
    words = [str(arg) for arg in args]
    environment, forkable = _environment(None, words)
    if not forkable:
        return _kill_fresh_at(words, stop_at, environment, timeout)
    with open(os.devnull, "r+") as null:
        run = _ForkServer.get().start(words, None, environment, [null, null, null], stop_at=stop_at)
    try:
        report = run.next(timeout)
        assert "stopped" in report, f"the run ended ({report}) before it reached {stop_at}"
    finally:
        run.kill()
    assert run.wait(timeout) == -signal.SIGKILL


def _kill_fresh_at(words: list[str], stop_at: str, environment: dict, timeout: float) -> None:
    """:func:`kill_at` in a fresh process (tests/cli/stop_at.py as its main module)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.cli.stop_at", stop_at, *words],
        cwd=REPOSITORY,
        env=environment,
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
