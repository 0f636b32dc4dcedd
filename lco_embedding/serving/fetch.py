"""Download media that a client names by URL, without letting the client reach inside the server's network.

Off unless the server runs with ``--allow-url``. A URL must be http(s); its host must resolve only to public
addresses (no loopback, private, link-local, multicast, reserved or unspecified ones) unless the host is on the
allow-list, which is then also the only hosts fetched from; redirects are not followed (a redirect could point
inside); the download stops at the per-item byte limit and at the timeout.

Does not pin the address it checked: a host whose DNS answer changes between the check and the download (DNS
rebinding) can still reach an internal address. Use ``--allowed-host`` for servers exposed to untrusted clients.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlparse

from lco_embedding.core.errors import LCOError
from lco_embedding.serving.settings import ServerSettings

__all__ = ["FetchError", "check_url", "fetch"]


class FetchError(LCOError, ValueError):
    """A URL the server will not or could not fetch; the message says why."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def check_url(url: str, settings: ServerSettings) -> None:
    """Refuse a URL the server must not fetch.

    Raises:
        FetchError: URLs are off, the scheme is not http(s), the host is not allowed, or it resolves to an
            internal address.
    """
    if not settings.allow_url:
        raise FetchError(
            "remote URLs are not fetched by this server; send the media as a data URI (data:image/png;"
            "base64,...), or start the server with --allow-url."
        )
    parsed = urlparse(url)
    host = parsed.hostname
    if parsed.scheme not in ("http", "https") or not host:
        raise FetchError(f"only http(s) URLs with a host are fetched, got {url[:100]!r}.")
    allowed = {h.lower() for h in settings.allowed_hosts}
    if allowed and host.lower() not in allowed:
        raise FetchError(f"host {host!r} is not on this server's allow-list.")
    if host.lower() in allowed:
        return
    try:
        infos = socket.getaddrinfo(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except OSError as e:
        raise FetchError(f"cannot resolve host {host!r} ({e}).") from e
    internal = sorted({str(info[4][0]) for info in infos if not _public(str(info[4][0]))})
    if internal:
        raise FetchError(
            f"host {host!r} resolves to an internal address ({', '.join(internal)}); this server fetches only public "
            "addresses (add the host with --allowed-host to allow it)."
        )


def fetch(url: str, settings: ServerSettings) -> bytes:
    """The bytes behind ``url``, within the size limit and one deadline for the whole download
    (:func:`lco_embedding.preprocessing.sources.fetch_url`, the embedder's own download).

    Raises:
        FetchError: Refused by :func:`check_url`, a redirect, an HTTP error, too large, or too slow.
    """
    from lco_embedding.core.errors import LCOInputError
    from lco_embedding.preprocessing.sources import fetch_url

    check_url(url, settings)
    try:
        return fetch_url(
            url,
            timeout=settings.url_timeout_s,
            max_bytes=settings.max_item_bytes,
            allow_redirects=False,
            advice={"slow": "Send the media as a data URI instead.", "large": "Send a smaller file."},
            limit_name="this server's limit",
        )
    except LCOInputError as e:
        raise FetchError(e.reason) from e
