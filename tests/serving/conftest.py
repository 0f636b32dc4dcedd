"""Servers on 127.0.0.1 (real uvicorn, real sockets) over the tiny checkpoint, and helpers to call them."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lco_embedding import LCOEmbedder
from lco_embedding.serving import ServerSettings, create_app

API_KEY = "test-key"
NAME = "lco-tiny"


@contextmanager
def running_server(checkpoint: str, **settings) -> Iterator[str]:
    """Serve ``checkpoint`` with ``ServerSettings(**settings)`` on a free loopback port; yields its base URL."""
    import uvicorn

    app = create_app(LCOEmbedder(checkpoint, device="cpu"), ServerSettings(served_model_name=NAME, **settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="module")
def server(tiny_omni) -> Iterator[str]:
    """The main test server: API key, small limits, URLs off."""
    with running_server(tiny_omni, api_key=API_KEY, max_items_per_request=8, max_body_bytes=2**20) as url:
        yield url


@pytest.fixture(scope="module")
def slow_server(tiny_omni) -> Iterator[str]:
    """A server whose batches wait 400 ms and that holds at most 3 items: batching, 429 and disconnects show."""
    with running_server(tiny_omni, max_wait_ms=400, max_queue_items=3) as url:
        yield url


def data_uri(path: str | Path, mime: str) -> str:
    """A file as a base64 data URI."""
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode()}"
