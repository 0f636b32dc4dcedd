"""Read the bytes behind a media reference: local path, ``file://`` path, http(s) URL or base64 data URI — every read
bounded.

Local paths: regular files only (:mod:`lco_embedding.core.files`: a FIFO, socket, device, folder or dangling link is a
clear per-item error, never a block). URLs: one deadline for the whole download (connecting, the headers and the
body: a server that trickles one byte at a time is cut off at the deadline, not only when a single read stalls)
and a size cap (a ``Content-Length`` above it is refused before the body is read; a longer body is cut at the
cap). The same :func:`fetch_url` serves the embedder, the corpus job's tables and the server (which adds its
address checks, :mod:`lco_embedding.serving.fetch`).

Does not bound a download made through a proxy while its headers arrive (each read is still bounded by the
deadline); the body is bounded in any case.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.files import file_problem, local_file

__all__ = [
    "MAX_URL_BYTES",
    "URL_TIMEOUT",
    "ReadLimits",
    "fetch_url",
    "is_file_object",
    "is_reference",
    "local_copy",
    "local_path",
    "read_bytes",
]

URL_TIMEOUT = 20.0
"""Seconds a whole URL download may take (connect, headers and body)."""
MAX_URL_BYTES = 256 * 2**20
"""Largest body a URL may have (256 MiB)."""


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading one item's media from a URL.

    Attributes:
        url_timeout: Seconds for the whole download (default 20).
        max_url_bytes: Largest body in bytes (default 256 MiB).
    """

    url_timeout: float = URL_TIMEOUT
    max_url_bytes: int = MAX_URL_BYTES

    def __post_init__(self) -> None:
        if not self.url_timeout > 0:
            raise ValueError(f"url_timeout must be a positive number of seconds, got {self.url_timeout}.")
        if not isinstance(self.max_url_bytes, int) or self.max_url_bytes < 1:
            raise ValueError(f"max_url_bytes must be a positive integer, got {self.max_url_bytes}.")


def is_reference(source: Any) -> bool:
    """True for a string or path that names media (as opposed to in-memory media)."""
    return isinstance(source, str | PurePath)


def is_file_object(source: Any) -> bool:
    """True for an open binary file object (``open(path, "rb")``, ``io.BytesIO``)."""
    return isinstance(source, io.BufferedIOBase | io.RawIOBase)


def local_path(source: str | PurePath) -> str | None:
    """Return the local file path of ``source``, or None for URLs and data URIs.

    Raises:
        LCOInputError: If it is a local path and not a readable regular file (missing, a folder, a FIFO, a
            dangling link, unreadable).
    """
    text = str(source)
    if text.startswith(("http://", "https://", "data:")):
        return None
    path = local_file(text)
    problem = file_problem(path)
    if problem is not None:
        raise LCOInputError(problem)
    return path


def read_bytes(source: str | PurePath | bytes | io.IOBase, *, limits: ReadLimits = ReadLimits()) -> bytes:
    """Return the raw bytes of a media reference.

    Raises:
        LCOInputError: For a file that cannot be read, a URL that cannot be fetched within the limits, or a
            malformed data URI.
    """
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    if is_file_object(source):
        try:
            data = source.read()
        except (OSError, ValueError) as e:  # closed, or not readable
            name = getattr(source, "name", type(source).__name__)
            raise LCOInputError(f"cannot read the file object {name!r} ({e}).") from e
        if not isinstance(data, bytes | bytearray):
            raise LCOInputError("the file object gave text, not bytes: open media files in binary mode ('rb').")
        return bytes(data)
    text = str(source)
    if text.startswith("data:"):
        header, sep, payload = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise LCOInputError("a data URI must look like 'data:image/png;base64,<base64 data>'.")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as e:
            raise LCOInputError(f"the data URI holds invalid base64 ({e}).") from e
    if text.startswith(("http://", "https://")):
        return fetch_url(text, timeout=limits.url_timeout, max_bytes=limits.max_url_bytes)
    path = local_path(text)
    assert path is not None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise LCOInputError(f"{path!r} cannot be read ({e.strerror or e}).") from e


@contextmanager
def local_copy(
    source: str | PurePath | bytes | io.IOBase, *, limits: ReadLimits = ReadLimits(), suffix: str = ""
) -> Iterator[str]:
    """A local path to the media ``source`` names or holds, for decoders that read files: a local path as it is;
    a URL, data URI, bytes or file object read once (within ``limits``) into a temporary file, deleted afterwards.

    Raises:
        LCOInputError: As :func:`read_bytes`.
    """
    path = local_path(source) if is_reference(source) else None
    if path is not None:
        yield path
        return
    name = str(source).split("?", 1)[0] if is_reference(source) else str(getattr(source, "name", ""))
    extension = os.path.splitext(name)[1][:8] if not str(source).startswith("data:") else ""
    with tempfile.NamedTemporaryFile(suffix=extension or suffix, delete=False) as f:
        f.write(read_bytes(source, limits=limits))
    try:
        yield f.name
    finally:
        os.unlink(f.name)


_SDK_ADVICE = {
    "slow": "Download the file and pass its local path, or allow more time (url_timeout).",
    "large": "Download it and pass a local path, or raise the limit (max_url_bytes).",
    "failed": "Check the URL and the network, or download the file and pass its local path.",
}
"""What the embedder's messages advise; the server gives its own (its clients cannot set these)."""


def fetch_url(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_redirects: bool = True,
    advice: dict[str, str] | None = None,
    limit_name: str = "the limit",
) -> bytes:
    """Download ``url`` within ``timeout`` seconds in all and ``max_bytes`` bytes.

    A watchdog shuts the connection down at the deadline, so a read blocked on a server that trickles its
    headers or body returns at once. ``advice`` (keys ``slow``, ``large``, ``failed``) ends the messages; ``limit_name``
    names the size limit in them.

    Raises:
        LCOInputError: Too slow, too large, an HTTP error, a redirect (with ``allow_redirects=False``), or the
            network.
    """
    import requests

    shown = url if len(url) <= 100 else url[:97] + "..."
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        for sock in list(sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(timeout, expire)
    watchdog.daemon = True
    session = requests.Session()
    adapter = _adapter_type()(sockets)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    advice = _SDK_ADVICE if advice is None else advice
    too_slow = LCOInputError(
        f"{shown!r} did not arrive within {timeout:g} s (the whole download, not one read); the server is too "
        f"slow or stalled. {advice.get('slow', '')}".strip()
    )
    watchdog.start()
    started = time.monotonic()
    try:
        with session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=allow_redirects) as response:
            if response.is_redirect and not allow_redirects:
                raise LCOInputError(f"{shown!r} redirects; redirects are not followed (give the final URL).")
            response.raise_for_status()
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(shown, max_bytes, limit_name, advice, int(declared))
            chunks, size = [], 0
            for chunk in response.iter_content(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(shown, max_bytes, limit_name, advice)
                chunks.append(chunk)
                if expired.is_set():
                    raise too_slow
        if expired.is_set() or time.monotonic() - started > timeout:
            raise too_slow
        return b"".join(chunks)
    except requests.RequestException as e:
        if expired.is_set():
            raise too_slow from e
        raise LCOInputError(
            f"could not fetch {shown!r} ({type(e).__name__}: {e}). {advice.get('failed', '')}".strip()
        ) from e
    finally:
        watchdog.cancel()
        session.close()


def _too_large(
    shown: str, limit: int, limit_name: str, advice: dict[str, str], declared: int | None = None
) -> LCOInputError:
    size = f" (it declares {declared:,})" if declared is not None else ""
    return LCOInputError(
        f"{shown!r} is larger than {limit_name} of {limit:,} bytes{size}. {advice.get('large', '')}".strip()
    )


def _watched_pool_classes(sockets: list[socket.socket]) -> dict[str, type]:
    """urllib3 connection pools whose connections add each new socket to ``sockets`` (for the watchdog)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Watched(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.append(sock)
            return sock

    class WatchedTLS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.append(sock)
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Watched

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedTLS

    return {"http": Pool, "https": TLSPool}


@functools.cache
def _adapter_type() -> type:
    from requests.adapters import HTTPAdapter

    class WatchedAdapter(HTTPAdapter):
        """A requests adapter whose connections the download's watchdog can shut down."""

        def __init__(self, sockets: list[socket.socket]) -> None:
            self._sockets = sockets
            super().__init__(max_retries=0)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _watched_pool_classes(self._sockets)

    return WatchedAdapter
