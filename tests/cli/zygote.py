"""A fork server for the command-line tests: ``lco-embed`` runs as a real child process with its own files, exit
code and signals, without paying torch's and transformers' imports (≈7 s a run on 2 cores) every time.

    python -m tests.cli.zygote SOCKET

imports what every command needs, then serves requests on the Unix socket ``SOCKET`` until its standard input
closes (the test process that started it ended). A request is one JSON line ``{"args", "cwd", "env", "stop_at"}``
sent with three file descriptors (the run's stdin, stdout, stderr). For each, the server forks a watcher, which
forks the run and reports on the connection, one JSON line each: ``{"pid"}``, ``{"stopped": true}`` when the run
stopped itself (``stop_at``, tests/cli/stop_at.py) and ``{"exit"}`` (the exit code, or minus the signal that ended
it, like :mod:`subprocess`).

The run sees what the console script would: ``sys.argv`` and ``__main__`` of the installed ``lco-embed`` script, the
requested folder and environment, default signal handlers; at its end the interpreter's shutdown (threads joined,
``atexit`` callbacks, streams flushed). Nothing a run changes reaches the server or another run: each is a fresh
copy of the server's memory. The client is :func:`tests.cli.conftest.run_cli`; only environment variables read at
use (``PATH``, ``TMPDIR``) may differ from the server's — others can be read at import, so such runs start fresh.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import traceback
import types
from pathlib import Path

LCO_EMBED = Path(sys.executable).with_name("lco-embed")
# Variables a run may change without a fresh interpreter: read when used, not when a module is imported.
READ_AT_USE = frozenset(
    {
        "PATH",
        "TMPDIR",
        "PYTEST_CURRENT_TEST",
        "TORCHINDUCTOR_CACHE_DIR",
        "RAY_CLIENT_MODE",
        "RAY_AUTH_MODE",
        "RAY_USAGE_STATS_ENABLED",
        "PYTHONBREAKPOINT",
        "TRANSFORMERS_VERBOSITY",
        "HF_HUB_VERBOSITY",
        "HF_HUB_DISABLE_PROGRESS_BARS",
    }
)
"""(torch sets ``TORCHINDUCTOR_CACHE_DIR`` in the test process when a fixture first imports its inductor; only a
compilation reads it, and no command compiles. ``ray.init`` in the test process sets the ``RAY_*`` variables and
``PYTHONBREAKPOINT``; only Ray reads them, and commands that start Ray run fresh anyway. A command run in the test
process sets the logging variables (``lco_embedding.core.logs.configure_logging``), which every command sets for
itself again, through the libraries' functions. Without them here, every command of a test file that an xdist
worker ran after those tests started a fresh interpreter: 8-10 s each.)"""


def _preload() -> None:
    """Import what every command needs. No thread may start (the server forks): torch's thread pool is made with one
    thread here and resized in each run; pyarrow, whose allocator starts a thread, is imported by the runs."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch  # noqa: F401
    import transformers  # noqa: F401
    from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerForConditionalGeneration  # noqa: F401

    import lco_embedding.cli.main  # noqa: F401
    import lco_embedding.embedder  # noqa: F401
    import tests.cli.stop_at  # noqa: F401

    assert len(os.listdir("/proc/self/task")) == 1, "a preloaded import started a thread"


def _run(request: dict, fds: list[int]) -> None:
    """In the forked run: become ``lco-embed ARGS`` and exit with its code (never returns)."""
    for number, fd in enumerate(fds):
        os.dup2(fd, number)
        os.close(fd)
    for name in ("SIGCHLD", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # TMPDIR is read again
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count()))  # as OpenMP sizes its pool
    sys.argv = [str(LCO_EMBED), *request["args"]]
    sys.path[0] = str(LCO_EMBED.parent)
    script = types.ModuleType("__main__")
    script.__file__ = str(LCO_EMBED)
    sys.modules["__main__"] = script
    code = 0
    try:
        from lco_embedding.cli.main import main
        from tests.cli.stop_at import stopper

        hooks = {"job_events": stopper(request["stop_at"])} if request.get("stop_at") else None
        main(request["args"], hooks=hooks)
    except SystemExit as done:
        code = _exit_code(done.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # what the interpreter does at exit, in its order
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _exit_code(code) -> int:
    """The process exit status ``sys.exit(code)`` gives."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _watch(connection: socket.socket, request: dict, fds: list[int]) -> None:
    """In the forked watcher: fork the run, report its pid, stop and exit on ``connection`` (never returns)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        connection.close()
        _run(request, fds)
    for fd in fds:
        os.close(fd)
    send = connection.makefile("w")

    def report(message: dict) -> None:
        send.write(json.dumps(message) + "\n")
        send.flush()

    try:
        report({"pid": pid})
        while True:
            _, status = os.waitpid(pid, os.WUNTRACED)
            if os.WIFSTOPPED(status):
                report({"stopped": True})
                continue
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
            report({"exit": code})
            break
    finally:
        os._exit(0)


def serve(path: str) -> None:
    """Serve requests on the Unix socket ``path`` until standard input closes."""
    _preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # watchers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in readable:  # the test process ended (or asked: it closed our stdin)
            return
        connection, _ = listener.accept()
        with connection:
            message, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
            chunk = message
            while chunk and not message.endswith(b"\n"):
                chunk = connection.recv(1 << 16)
                message += chunk
            request = json.loads(message)
            if os.fork() == 0:
                listener.close()
                _watch(connection, request, fds)
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    serve(sys.argv[1])
