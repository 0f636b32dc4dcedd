"""Media URLs: off by default; with --allow-url, public hosts only unless allow-listed; no redirects; size limits."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import numpy as np
import pytest

from lco_embedding.serving import ServerSettings
from lco_embedding.serving.fetch import FetchError, check_url, fetch
from tests.serving.conftest import NAME, running_server


@pytest.fixture(scope="module")
def files(tmp_path_factory, media) -> Iterator[str]:
    """A plain HTTP server on loopback serving the test media (and a redirect)."""
    folder = tmp_path_factory.mktemp("served")
    (folder / "cat.png").write_bytes(Path(media["png"]).read_bytes())

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/cat.png")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost/x.png",
        "http://10.1.2.3/x.png",
        "http://192.168.0.1/x.png",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://[::1]/x.png",
        "http://0.0.0.0/x.png",
    ],
)
def test_internal_addresses_are_refused(url):
    with pytest.raises(FetchError, match="internal address"):
        check_url(url, ServerSettings(allow_url=True))


def test_urls_are_off_by_default_and_only_http_with_a_host():
    with pytest.raises(FetchError, match="not fetched by this server"):
        check_url("https://example.com/a.png", ServerSettings())
    for url in ("ftp://example.com/a.png", "file:///etc/passwd", "http:///nohost"):
        with pytest.raises(FetchError, match="only http"):
            check_url(url, ServerSettings(allow_url=True))
    with pytest.raises(FetchError, match="not on this server's allow-list"):
        check_url("https://example.com/a.png", ServerSettings(allow_url=True, allowed_hosts=["images.example.org"]))


def test_allow_listed_hosts_redirects_and_size(files):
    allowed = ServerSettings(allow_url=True, allowed_hosts=["127.0.0.1"])
    assert fetch(f"{files}/cat.png", allowed)[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FetchError, match="redirects are not followed"):
        fetch(f"{files}/moved", allowed)
    with pytest.raises(FetchError, match="larger than this server's limit"):
        fetch(f"{files}/cat.png", ServerSettings(allow_url=True, allowed_hosts=["127.0.0.1"], max_item_bytes=100))
    with pytest.raises(FetchError, match="404"):
        fetch(f"{files}/missing.png", allowed)


def test_a_server_with_allow_url_embeds_fetched_media(tiny_omni, files, media, embedder):
    with running_server(tiny_omni, allow_url=True, allowed_hosts=["127.0.0.1"]) as url:
        body = {"model": NAME, "input": [{"image": f"{files}/cat.png"}, {"image": f"{files}/moved"}]}
        response = httpx.post(f"{url}/v1/embeddings", json=body, timeout=60)
        assert response.status_code == 400 and "input[1]: " in response.json()["error"]["message"]
        body["input"] = body["input"][:1]
        response = httpx.post(f"{url}/v1/embeddings", json=body, timeout=60)
        assert response.status_code == 200, response.text
        got = response.json()["data"][0]["embedding"]
        np.testing.assert_allclose(got, embedder.encode({"image": media["png"]}), atol=1e-5, rtol=0)
    with running_server(tiny_omni, allow_url=True) as url:  # no allow-list: loopback is internal
        body = {"model": NAME, "input": [{"image": f"{files}/cat.png"}]}
        response = httpx.post(f"{url}/v1/embeddings", json=body, timeout=60)
        assert response.status_code == 400 and "internal address" in response.json()["error"]["message"]
