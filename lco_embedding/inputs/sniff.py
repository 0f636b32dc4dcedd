"""What a bare input is, from its extension, its signature or its form: a string (text, or a path, URL or data URI
of a media file), bytes, a file object — without reading more than a file's first bytes. Used by
:func:`~lco_embedding.inputs.parse.infer_modality`.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from PIL.Image import Image as PILImage

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.files import local_file
from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITY_TABLE, TEXT, Modality
from lco_embedding.inputs.documents import is_pdf, whole_document_problem

__all__ = [
    "EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "bytes_modality",
    "data_uri_modality",
    "describe_item",
    "extension_modality",
    "file_object_modality",
    "is_url",
    "local_media_path",
    "looks_like_file",
    "sniff_modality",
    "string_modality",
]

EXTENSIONS: dict[Modality, tuple[str, ...]] = {
    name: spec.extensions for name, spec in MODALITY_TABLE.items() if spec.extensions
}
"""Media file extension -> modality (the modality table's)."""
MEDIA_EXTENSIONS = ", ".join(ext for extensions in EXTENSIONS.values() for ext in extensions)
_FRAME_MODALITY: Modality = next(name for name, spec in MODALITY_TABLE.items() if spec.frame)


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and not any(c.isspace() for c in text)


def extension_modality(path: str) -> Modality | None:
    lower = path.lower()
    for modality, extensions in EXTENSIONS.items():
        if lower.endswith(extensions):
            return modality
    return None


_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")


def string_modality(text: str) -> Modality:
    """Decide whether a string is text or a reference to a media file (see docs/inputs.md)."""
    if is_pdf(text) and (text.startswith(("data:", "http://", "https://")) or local_media_path(text) is not None):
        raise LCOInputError(whole_document_problem(text))
    if text.startswith("data:"):
        return data_uri_modality(text) or TEXT.name
    if is_url(text):
        try:
            url_path = urlparse(text).path
        except ValueError:
            return TEXT.name
        return extension_modality(url_path) or TEXT.name
    path = local_media_path(text)
    if path is not None:
        modality = extension_modality(path)
        if modality is not None:
            return modality
        raise LCOInputError(
            f"{text!r} is an existing file with an unknown extension ({os.path.splitext(path)[1]}; media files end "
            f"in {MEDIA_EXTENSIONS}). Pass {{'image': path}}, {{'audio': path}} or {{'video': path}} if it is one of "
            "those, or {'text': ...} (or modality='text') to embed the string itself as text."
        )
    candidate = local_file(text).rstrip()
    modality = extension_modality(candidate)
    if modality is None or (any(c.isspace() for c in candidate) and not text.startswith("file://")):
        return TEXT.name
    if os.path.isdir(candidate):
        raise LCOInputError(
            f"{text!r} is a folder, not {_article(modality)} file: pass the files in it one by one (lco-embed encode "
            f"and encode_corpus take folders), or {{'text': {text!r}}} (or modality='text') to embed the string."
        )
    raise LCOInputError(
        f"{text!r} looks like a path to {_article(modality)} file, but no such file exists. Fix the path, or pass "
        f"{{'text': {text!r}}} (or modality='text') to embed the string as text."
    )


def looks_like_file(text: str) -> bool:
    """True when ``text`` ends in something like a file extension (``.png``, ``.m4v``): only such strings can name a
    file as an input, so only they are looked up on disk."""
    return _SUFFIX.search(text.rstrip()) is not None


def local_media_path(text: str) -> str | None:
    """The path of an existing file (or FIFO, socket, link: reading it says what is wrong) that ``text`` names,
    or None. Whatever characters the path holds, spaces included; ``file://`` URLs are decoded, and trailing
    whitespace is dropped only when the path with it does not exist (:func:`lco_embedding.core.files.local_file`). Only
    strings ending in an extension (``.png``, ``.m4v``, ...) are looked up, so ordinary text costs no file-system
    call."""
    if len(text) > 4096 or "\x00" in text or not looks_like_file(text):
        return None
    path = local_file(text)
    return path if os.path.lexists(path) and not os.path.isdir(path) else None


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


_MAGIC = [(name, re.compile(spec.magic, re.DOTALL)) for name, spec in MODALITY_TABLE.items() if spec.magic]


def sniff_modality(head: bytes) -> Modality | None:
    """The media modality a file's first bytes say it holds (its container's signature: PNG, JPEG, WAV, MP3,
    FLAC, Ogg, MP4 and its audio brands, Matroska/WebM, AVI, ...), or None when they say nothing known.

    Example:
        >>> sniff_modality(b"RIFF" + bytes(4) + b"WAVEfmt ")
        'audio'
    """
    for modality, pattern in _MAGIC:
        if pattern.match(head):
            return modality
    return None


def bytes_modality(data: bytes | bytearray) -> Modality:
    """Bytes given bare: the modality their signature names, else an image (whose decoder then says what it
    cannot read, and how to name another modality)."""
    if is_pdf(data):
        raise LCOInputError(whole_document_problem(data))
    return sniff_modality(bytes(data[:32])) or _FRAME_MODALITY


def file_object_modality(item: io.IOBase) -> Modality:
    """A binary file object is media: named by its file's extension, or by its first bytes when it has no name (an
    image when they say nothing known, as for bytes)."""
    if isinstance(item, io.TextIOBase):
        raise LCOInputError(
            f"{describe_item(item)} is open in text mode; open media files in binary mode ('rb'), or pass text "
            "as a string."
        )
    name = getattr(item, "name", None)
    if not isinstance(name, str):
        return bytes_modality(_peek(item))
    modality = extension_modality(name)
    if modality is None:
        raise LCOInputError(
            f"{describe_item(item)} has an unknown extension; pass it as {{'image': f}}, {{'audio': f}} or "
            "{'video': f} to say what it is."
        )
    return modality


def _peek(item: io.IOBase) -> bytes:
    """The first bytes of a seekable binary file object, its position kept (nothing for an unseekable one)."""
    try:
        if not item.seekable():
            return b""
        position = item.tell()
        head = item.read(32)
        item.seek(position)
    except (OSError, ValueError):
        return b""
    return head if isinstance(head, bytes) else b""


def describe_item(item: Any, width: int = 120) -> str:
    """A short description of an input for messages: file objects by their file's name, bytes and arrays by size,
    long strings cut (never ``<_io.BytesIO object at 0x...>``).

    Example:
        >>> describe_item({"text": "a caption", "image": b"\\x89PNG..."})
        "{'text': 'a caption', 'image': <7 bytes>}"
    """

    def short(value: Any) -> str:
        if isinstance(value, io.IOBase):
            name = getattr(value, "name", None)
            return f"<file {name!r}>" if isinstance(name, str) else f"<in-memory file ({type(value).__name__})>"
        if isinstance(value, bytes | bytearray):
            return f"<{len(value):,} bytes>"
        if isinstance(value, np.ndarray | torch.Tensor):
            return f"<{type(value).__name__} {'x'.join(map(str, value.shape))} {value.dtype}>"
        if isinstance(value, PILImage):
            return f"<PIL image {value.width}x{value.height} {value.mode}>"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {short(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list | tuple) and value:
            inner = ", ".join(short(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
            return f"[{inner}]"
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    shown = short(item)
    return shown if len(shown) <= width else shown[: width - 3] + "..."


def data_uri_modality(text: str) -> Modality | None:
    """The media modality a data URI's MIME type names (``data:audio/wav;...``), or None."""
    kind = text[5:].split(";", 1)[0].split(",", 1)[0].split("/", 1)[0]
    return kind if kind in MEDIA_MODALITIES else None  # type: ignore[return-value]
