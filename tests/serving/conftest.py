"""Servers on 127.0.0.1 (real uvicorn, real sockets) over the tiny checkpoint, and helpers to call them."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lco_embedding import LCOEmbedder, LCOReranker
from lco_embedding.serving import MainThreadRunner, ServerSettings, create_app

API_KEY = "test-key"
NAME = "lco-tiny"


class Gate:
    """A fault hook (``ModelParts.fault``) that holds every forward pass while closed: tests then know what is
    queued, without waiting for a time to pass. ``entered`` is set once a forward pass waits at the closed gate."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.entered = threading.Event()

    def close(self) -> None:
        self._open.clear()
        self.entered.clear()

    def open(self) -> None:
        self._open.set()

    def __call__(self, batch) -> None:
        if not self._open.is_set():
            self.entered.set()
            assert self._open.wait(120), "the gate was never opened"


@contextmanager
def running_server(
    checkpoint: str,
    gate: Gate | None = None,
    embedder_kwargs: dict | None = None,
    reranker: LCOReranker | None = None,
    **settings,
) -> Iterator[str]:
    """Serve ``checkpoint`` (``LCOEmbedder(checkpoint, **embedder_kwargs)``) with ``ServerSettings(**settings)`` on
    a free loopback port, as ``lco-embed serve`` does (``MainThreadRunner``: HTTP in a thread, the model's loop on
    the thread that runs the runner, here one of the test's); yields its base URL. With ``gate``, every forward
    pass passes through it; with ``reranker``, the rerank routes are served too."""
    embedder = LCOEmbedder(checkpoint, device="cpu", **(embedder_kwargs or {}))
    embedder.parts.fault = gate
    runner = MainThreadRunner()
    settings = ServerSettings(served_model_name=NAME, **settings)
    app = create_app(embedder, settings, model_loop=runner, reranker=reranker)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=runner.serve, args=(app,), kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    if not runner.started.wait(60) or not thread.is_alive():
        raise RuntimeError("the test server did not start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        runner.stop()
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def server(tiny_omni) -> Iterator[str]:
    """The main test server: API key, small limits, URLs off."""
    with running_server(tiny_omni, api_key=API_KEY, max_items_per_request=8, max_body_bytes=2**20) as url:
        yield url


@pytest.fixture(scope="module")
def batching_server(tiny_omni) -> Iterator[str]:
    """A server whose batches wait (up to a minute) until they hold 3 items: what shares a forward pass shows."""
    with running_server(tiny_omni, max_wait_ms=60_000, max_batch_items=3) as url:
        yield url


@pytest.fixture(scope="module")
def gated_server(tiny_omni) -> Iterator[tuple[str, Gate]]:
    """A server that holds at most 3 items and whose forward passes wait at a gate the test opens and closes."""
    gate = Gate()
    with running_server(tiny_omni, gate, max_wait_ms=0, max_queue_items=3) as url:
        yield url, gate


def data_uri(path: str | Path, mime: str) -> str:
    """A file as a base64 data URI."""
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"
