"""Serving with the model's loop on the main thread and the HTTP event loop in a thread of its own: what
``lco-embed serve`` does, and how a program that builds its own app gets the same.

The model then runs on the thread that loaded it, and the event loop's Python work and the forward pass's do not
pass the interpreter back and forth between two busy threads the way a model thread beside the main thread's event
loop does. Measured on 2 cores with the tiny model and 32 connections: +20-40 % requests/s (docs/performance.md).
Every guarantee of the server is the same either way: it is the same batcher and the same routes.

Example:
    >>> from lco_embedding.serving import MainThreadRunner, ServerSettings, create_app
    >>> runner = MainThreadRunner()
    >>> app = create_app(model, ServerSettings(), model_loop=runner)
    >>> # runner.serve(app, host="0.0.0.0", port=8000)  # blocks: HTTP in a thread, the model here, until stopped

Does not apply to ``--workers N`` (uvicorn's supervisor runs each worker's server on its main thread).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from typing import Any

__all__ = ["MainThreadRunner"]


class MainThreadRunner:
    """Runs an app's server in a thread and its model's loop on the thread that calls :meth:`serve`.

    Pass it to :func:`~lco_embedding.serving.create_app` as ``model_loop``: the app's batcher then hands its loop
    over (:meth:`attach`) instead of starting a thread for it.
    """

    def __init__(self) -> None:
        self._batchers: queue.Queue[Any] = queue.Queue()
        self._server: Any = None
        self.started = threading.Event()
        """Set once the server listens."""

    def attach(self, batcher: Any) -> None:
        """Called by the app when it starts: ``batcher``'s model loop is to run on the serving thread."""
        self._batchers.put(batcher)

    def serve(self, app: Any, *, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning",
              sockets: list[Any] | None = None) -> None:  # fmt: skip
        """Serve ``app`` until the server stops (SIGINT or SIGTERM on the main thread stops it gracefully)."""
        import uvicorn

        server = self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
        http = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name="lco-serve-http", daemon=True)

        def stop(*_: Any) -> None:
            self.stop()

        previous = _handle_signals(stop)
        http.start()
        try:
            threading.Thread(target=self._watch_start, args=(server, http), daemon=True).start()
            while http.is_alive():
                try:
                    batcher = self._batchers.get(timeout=0.2)
                except queue.Empty:
                    continue
                batcher.run_model()  # until the app shuts down and closes its batcher
        except KeyboardInterrupt:
            stop()
        finally:
            stop()
            http.join(timeout=60)
            _restore_signals(previous)

    def _watch_start(self, server: Any, http: threading.Thread) -> None:
        while http.is_alive() and not server.started:
            time.sleep(0.01)
        if server.started:
            self.started.set()

    def stop(self) -> None:
        """Ask the server to shut down (its app then closes the batcher, and :meth:`serve` returns)."""
        if self._server is not None:
            self._server.should_exit = True


def _handle_signals(handler: Any) -> dict[int, Any]:
    """Install ``handler`` for SIGINT and SIGTERM where this is the main thread; the handlers it replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.signal(number, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
