"""Read the bytes behind a media reference: local path, ``file://`` path, http(s) URL or base64 data URI."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import PurePath
from typing import Any

from lco_embedding.errors import LCOInputError

__all__ = ["URL_TIMEOUT", "is_reference", "local_path", "read_bytes"]

URL_TIMEOUT = 20.0
"""Seconds to wait for a URL before giving up (connect and read)."""


def is_reference(source: Any) -> bool:
    """True for a string or path that names media (as opposed to in-memory media)."""
    return isinstance(source, str | PurePath)


def local_path(source: str | PurePath) -> str | None:
    """Return the local file path of ``source``, or None for URLs and data URIs.

    Raises:
        LCOInputError: If it is a local path and the file does not exist.
    """
    text = str(source)
    if text.startswith(("http://", "https://", "data:")):
        return None
    path = text[7:] if text.startswith("file://") else text
    if not os.path.isfile(path):
        raise LCOInputError(f"file not found: {path!r}. Check the path (relative paths start at {os.getcwd()!r}).")
    return path


def read_bytes(source: str | PurePath | bytes, *, timeout: float = URL_TIMEOUT) -> bytes:
    """Return the raw bytes of a media reference.

    Raises:
        LCOInputError: For a missing file, a URL that cannot be fetched within ``timeout`` seconds, or a
            malformed data URI.
    """
    if isinstance(source, bytes | bytearray):
        return bytes(source)
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
        import requests

        try:
            response = requests.get(text, timeout=timeout)
            response.raise_for_status()
        except requests.RequestException as e:
            raise LCOInputError(
                f"could not fetch {text!r} within {timeout:g} s ({type(e).__name__}: {e}). Check the URL and "
                "your network, or download the file and pass its local path."
            ) from e
        return response.content
    path = local_path(text)
    assert path is not None
    with open(path, "rb") as f:
        return f.read()
