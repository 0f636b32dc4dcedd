"""Every read is bounded: URLs against a real 127.0.0.1 server that trickles, stalls or sends too much, and files
that are not regular files (a real FIFO, socket, folder and dangling link) — each a clear per-item error, never a
hang."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from lco_embedding import LCOInputError
from lco_embedding.core.files import file_problem, file_url_path, local_file
from lco_embedding.preprocessing.sources import fetch_url, read_bytes

GENEROUS = 60  # seconds: a bound that only a hang can break (the servers below would trickle forever)


class _HostileServer:
    """HTTP on 127.0.0.1 whose routes misbehave on purpose; each connection is served in its own thread until the
    client goes away."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/{route}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            request = connection.recv(65536).decode("latin-1")
            route = request.split(" ", 2)[1].lstrip("/")
            getattr(self, "_" + route.replace("-", "_"))(connection)
        except OSError:
            pass  # the client hung up: what these routes wait for
        finally:
            connection.close()

    @staticmethod
    def _trickle(connection: socket.socket, data: bytes) -> None:
        for byte in data:
            connection.sendall(bytes([byte]))
            time.sleep(0.05)

    def _ok(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.payload) + self.payload)

    def _trickle_headers(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        self._trickle(connection, b"X-Slow: " + b"a" * 10**6)

    def _trickle_body(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        self._trickle(connection, b"b" * 10**6)

    def _huge_declared(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1500000000\r\n\r\n")
        connection.recv(1)  # waits until the client leaves

    def _huge_chunked(self, connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 65536 + b"c" * 65536 + b"\r\n"
        for _ in range(1500000000 // 65536):
            connection.sendall(chunk)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def hostile(media):
    server = _HostileServer(Path(media["png"]).read_bytes())
    yield server
    server.close()


@pytest.mark.parametrize("route", ["trickle-headers", "trickle-body"])
def test_a_trickling_server_is_cut_off_at_the_deadline_of_the_whole_download(hostile, route):
    began = time.monotonic()
    with pytest.raises(LCOInputError, match=r"did not arrive within 1 s \(the whole download, not one read\)"):
        fetch_url(hostile.url(route), timeout=1.0, max_bytes=2**20)
    assert time.monotonic() - began < GENEROUS


def test_bodies_above_the_cap_are_refused_or_cut_off(hostile):
    with pytest.raises(LCOInputError, match=r"larger than the limit of 1,048,576 bytes \(it declares 1,500,000,000\)"):
        fetch_url(hostile.url("huge-declared"), timeout=30, max_bytes=2**20)
    with pytest.raises(LCOInputError, match=r"larger than the limit of 1,048,576 bytes\. .*max_url_bytes"):
        fetch_url(hostile.url("huge-chunked"), timeout=30, max_bytes=2**20)
    assert fetch_url(hostile.url("ok"), timeout=30, max_bytes=2**20) == hostile.payload


def test_encode_and_its_table_items_stop_at_the_deadline(hostile, tiny_omni, media):
    from lco_embedding import EncodeReport, LCOEmbedder

    model = LCOEmbedder(tiny_omni, device="cpu", url_timeout=1.0, max_url_bytes=2**20)
    began = time.monotonic()
    report = EncodeReport()
    out = model.encode(
        [{"image": hostile.url("trickle-body")}, {"image": hostile.url("ok")}, {"image": hostile.url("huge-chunked")}],
        on_error="skip",
        report=report,
    )
    assert time.monotonic() - began < GENEROUS
    assert out.shape == (1, 64) and report.kept == [1]
    assert "within 1 s" in report.errors[0] and "larger than" in report.errors[2]
    np.testing.assert_allclose(out[0], model.encode({"image": media["png"]}), atol=1e-5, rtol=0)


def test_only_regular_files_are_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    unix = tmp_path / "socket.png"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(unix))
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "dangling.png").symlink_to(tmp_path / "gone.png")
    (tmp_path / "real.png").write_bytes(b"png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    try:
        cases = {
            "pipe.png": "is a FIFO (named pipe); only regular files are read",
            "socket.png": "is a socket",
            "folder.png": "is a folder, not a file",
            "dangling.png": "is a broken symbolic link (to '" + str(tmp_path / "gone.png"),
            "missing.png": "file not found",
        }
        for name, message in cases.items():
            assert message in (file_problem(str(tmp_path / name)) or ""), name
            with pytest.raises(LCOInputError, match="file not found|FIFO|socket|folder|broken"):
                read_bytes(str(tmp_path / name))  # returns at once: a FIFO is never opened
        assert file_problem(str(tmp_path / "link.png")) is None and read_bytes(str(tmp_path / "link.png")) == b"png"
    finally:
        listener.close()


def test_paths_with_spaces_newlines_and_file_urls_name_their_file(tmp_path):
    folder = tmp_path / "My Photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"x")
    path = str(folder / "cat.png")
    assert local_file(path) == path
    assert local_file(path + "\n") == path  # the newline is dropped because only the stripped path exists
    (tmp_path / "odd.png\n").write_bytes(b"y")
    assert local_file(str(tmp_path / "odd.png\n")) == str(tmp_path / "odd.png\n")  # a name that has one keeps it
    assert file_url_path("file://" + path) == path
    assert file_url_path("file://" + path.replace(" ", "%20")) == path
    assert local_file("http://example.com/a b.png") == "http://example.com/a b.png"
