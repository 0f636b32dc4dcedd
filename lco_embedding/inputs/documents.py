"""Documents (PDFs) as inputs: a PDF is a container of pages, as a long recording is a container of windows.

A page is an item of its own, ``{"pdf": source, "page": n}`` (pages numbered from 1), embedded as the image of that
page rendered at the item's pixel budget (:mod:`lco_embedding.preprocessing.pdf`); ``"pdf_text": True`` adds the
page's text layer, making a mixed item of the page image and its text (read when the item is parsed; a page with no
text layer, e.g. a scan, stays its image alone; the text is cut at ``max_length`` as any text).
``"pdf_password"`` opens an encrypted file.
Sources are those of any media: a path, ``file://`` path, URL, data URI (``application/pdf``) or bytes (known by
their ``%PDF-`` signature).

A whole PDF given where one item is expected (``encode("report.pdf")``) is refused with the two ways to get pages:
one page as above, or every page with ``encode_segments`` (one row per page; a segment's ``start`` and ``end`` are
its page number; ``{"pdf": source, "pages": [1, 3]}`` embeds only those pages). A page that fails there costs only
itself (``Segments.failed_pages``). Without ``pdf_text`` nothing is read here: the document is opened when the page
is rendered.
"""

from __future__ import annotations

import os
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import DOCUMENT_KEYS, PDF
from lco_embedding.preprocessing.pdf import PdfPage, page_text

__all__ = [
    "DOCUMENT_KEYS",
    "PDF",
    "PAGES",
    "PDF_SIGNATURE",
    "PdfPage",
    "is_pdf",
    "page_item",
    "whole_document",
    "whole_document_problem",
]

PAGE, PASSWORD, WITH_TEXT = DOCUMENT_KEYS[1:]
PAGES = "pages"
"""A whole document's pages to embed with ``encode_segments`` (``{"pdf": source, "pages": [1, 3]}``); all by
default."""
PDF_SIGNATURE = b"%PDF-"
_DATA_URI = "data:application/pdf"


def is_pdf(value: Any) -> bool:
    """True for a PDF source: a path or ``file://`` path ending in ``.pdf``, a ``data:application/pdf`` URI, or bytes
    that start with ``%PDF-``. A URL counts when its path ends in ``.pdf``."""
    if isinstance(value, bytes | bytearray):
        return bytes(value[: len(PDF_SIGNATURE)]) == PDF_SIGNATURE
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        return False
    if value.startswith(_DATA_URI):
        return True
    return value.split("?", 1)[0].split("#", 1)[0].lower().endswith(".pdf")


def whole_document_problem(value: Any) -> str:
    """What to say of a whole PDF given as one item."""
    shown = f"<{len(value)} bytes of PDF>" if isinstance(value, bytes | bytearray) else repr(str(value))
    return (
        f"{shown} is a PDF, a container of pages: embed one page with {{'pdf': source, 'page': 1}} (pages are "
        "numbered from 1), or every page with encode_segments(source) (one row per page)."
    )


def whole_document(item: Any) -> dict[str, Any] | None:
    """A whole PDF given as an item — a PDF source, or ``{"pdf": source}`` without a page (its other keys kept:
    ``pdf_password``, ``pdf_text``, the image settings) — as ``{"pdf": source, ...}``; None for anything else."""
    if isinstance(item, dict):
        return dict(item) if PDF in item and item.get(PAGE) is None else None
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if isinstance(item, bytes | bytearray) and is_pdf(item):
        return {PDF: bytes(item)}
    if isinstance(item, str) and is_pdf(item):
        return {PDF: item}
    return None


def page_item(item: dict[str, Any]) -> dict[str, Any]:
    """A document item (``{"pdf": source, "page": n, ...}``) as the image item of that page (with its text under
    ``pdf_text=True``); other keys (the image settings) are kept.

    Raises:
        LCOInputError: No page, a page that is not a positive integer, a source that is not a PDF, or a bad
            ``pdf_text`` / ``pdf_password``.
    """
    source, number = item[PDF], item.get(PAGE)
    if number is None:
        raise LCOInputError(whole_document_problem(source))
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise LCOInputError(f"'page' must be a page number from 1, got {number!r}.")
    password, with_text = item.get(PASSWORD), item.get(WITH_TEXT, False)
    if password is not None and not isinstance(password, str):
        raise LCOInputError(f"'pdf_password' must be a string, got {type(password).__name__}.")
    if not isinstance(with_text, bool):
        raise LCOInputError(f"'pdf_text' must be True or False, got {with_text!r}.")
    if not (is_pdf(source) or isinstance(source, str)):
        raise LCOInputError(f"'pdf' must be a path, URL, data URI or the bytes of a PDF, got {type(source).__name__}.")
    page = PdfPage(source, number, password)
    rest = {key: value for key, value in item.items() if key not in DOCUMENT_KEYS}
    text = ""
    if with_text:
        text = page_text(page)
    return {**rest, "image": page, **({"text": text} if text.strip() else {})}
