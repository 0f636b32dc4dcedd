"""PDF pages rendered as images with ``pypdfium2`` (PDFium inside the wheel: no system binary such as poppler's
``pdftoppm``), ``pip install 'lco-embedding[pdf]'``.

A page is rendered once, directly at the scale that puts it within the item's pixel budget
(``scale = sqrt(max_pixels / (width * height))`` in pixels per PDF point), never rendered large and shrunk; the image
preprocessor then only rounds its sides to the model's patch grid, as for any image. A poster-sized page is rendered
at a small scale, a small page at a large one: every page costs about ``max_pixels``. Local files are opened in
place (PDFium reads the pages it is asked for, so memory stays flat on a 1,000-page file); URLs, data URIs and bytes
are read once within the download limits.

Errors name the page and say what to do: an encrypted file without its password (``pdf_password``), a corrupt or
truncated file, a file with no pages, a page number past the end, a page that does not render. PDFium is not
thread-safe, so every call into it holds one lock.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PIL import Image

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.require import require
from lco_embedding.preprocessing.sources import ReadLimits, is_reference, read_bytes

__all__ = ["PdfPage", "page_count", "page_digests", "page_text", "render_page", "render_scale"]

_DEFAULT_LIMITS = ReadLimits()
_PDFIUM = threading.Lock()
"""PDFium is not thread-safe: one call into it at a time, across the featurize threads."""


@dataclass(frozen=True)
class PdfPage:
    """One page of a PDF, not yet rendered: what the image part of a document item holds
    (:mod:`lco_embedding.inputs.documents`).

    Attributes:
        source: The PDF (path, URL, data URI or bytes).
        number: The page, from 1.
        password: The password of an encrypted PDF, or None.
    """

    source: Any
    number: int
    password: str | None = None

    def __repr__(self) -> str:
        shown = f"<{len(self.source)} bytes>" if isinstance(self.source, bytes | bytearray) else repr(self.source)
        return f"PdfPage({shown}, page {self.number})"


def render_scale(width: float, height: float, max_pixels: int) -> float:
    """Pixels per PDF point that make a ``width x height``-point page about ``max_pixels`` pixels.

    Example:
        >>> round(render_scale(612, 792, 612 * 792), 6)  # a Letter page at 72 dpi is 612 x 792 pixels
        1.0
    """
    if width <= 0 or height <= 0:
        raise LCOInputError(f"the page has no area ({width:g} x {height:g} points).")
    return math.sqrt(max_pixels / (width * height))


@contextmanager
def _document(source: Any, password: str | None, limits: ReadLimits) -> Iterator[Any]:
    """The open PDF (within the lock), closed afterwards."""
    pdfium = require("pypdfium2", "pdf")
    local = is_reference(source) and not str(source).startswith(("http://", "https://", "data:"))
    data = str(source).removeprefix("file://") if local else read_bytes(source, limits=limits)
    with _PDFIUM:
        try:
            document = pdfium.PdfDocument(data, password=password)
        except FileNotFoundError:
            raise LCOInputError(f"PDF file {str(source)!r} not found.") from None
        except pdfium.PdfiumError as e:
            raise LCOInputError(_open_problem(str(e), password, data)) from None
        try:
            if len(document) == 0:
                raise LCOInputError("the PDF has no pages.")
            yield document
        finally:
            document.close()


_NO_PAGES = re.compile(rb"/Count\s+0\b")
_SOME_PAGES = re.compile(rb"/Count\s+[1-9]")


def _open_problem(reason: str, password: str | None, data: bytes | str) -> str:
    if "password" in reason.lower():
        if password is None:
            return "the PDF is encrypted: give its password, {'pdf': source, 'page': n, 'pdf_password': '...'}."
        return "the PDF is encrypted and 'pdf_password' is not its password."
    head = data if isinstance(data, bytes) else _read_head(data)
    if _NO_PAGES.search(head) and not _SOME_PAGES.search(head):  # PDFium refuses an empty page tree without a reason
        return "the PDF has no pages."
    return f"cannot open the PDF ({reason.removeprefix('Failed to load document ')}); the file is corrupt or truncated."


def _read_head(path: str, size: int = 1 << 20) -> bytes:
    """The first MiB of a file that PDFium refused (to tell an empty document from a broken one)."""
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _page(document: Any, number: int) -> Any:
    if not 1 <= number <= len(document):
        raise LCOInputError(f"page {number} is not in the PDF: it has {len(document)} pages, numbered from 1.")
    try:
        return document[number - 1]
    except Exception as e:  # PDFium's own failure on a page object that is missing or broken
        raise LCOInputError(f"page {number} cannot be loaded ({type(e).__name__}: {e}); the file is damaged.") from None


def page_count(source: Any, password: str | None = None, limits: ReadLimits = _DEFAULT_LIMITS) -> int:
    """The number of pages of a PDF.

    Raises:
        LCOInputError: The PDF cannot be opened (missing, encrypted, corrupt) or has no pages.
    """
    with _document(source, password, limits) as document:
        return len(document)


_SAVED_STAMPS = re.compile(rb"/ID\s*\[\s*<[0-9A-Fa-f]*>\s*<[0-9A-Fa-f]*>\s*\]|/CreationDate\s*\([^)]*\)")
"""What PDFium writes into every saved document that is not the page: a random file identifier and the time of
the save (left out of a page's hash)."""


def page_digests(source: Any, password: str | None = None, limits: ReadLimits = _DEFAULT_LIMITS) -> list[str | None]:
    """A content hash of each page (None for a page that cannot be loaded): the page copied alone into a new
    document with the objects it uses (content streams, fonts, images) and saved, its random file identifier and
    time of saving left out. Equal hashes mean equal objects, so equal renderings: an update in place re-embeds
    only the pages of a changed PDF whose hash changed, wherever they moved. A page re-saved with other bytes for
    the same look (another writer, another PDFium) hashes differently and is embedded again. About 0.5 ms a page
    (no rendering).

    Raises:
        LCOInputError: The PDF cannot be opened (missing, encrypted, corrupt) or has no pages.
    """
    pdfium = require("pypdfium2", "pdf")
    digests: list[str | None] = []
    with _document(source, password, limits) as document:
        for number in range(len(document)):
            alone = pdfium.PdfDocument.new()
            try:
                alone.import_pages(document, [number])
                saved = io.BytesIO()
                alone.save(saved)
            except Exception:  # a page PDFium cannot load: no hash, so never taken as unchanged
                digests.append(None)
                continue
            finally:
                alone.close()
            body = _SAVED_STAMPS.sub(b"", saved.getvalue())
            digests.append(hashlib.blake2b(body, digest_size=16).hexdigest())
    return digests


def render_page(page: PdfPage, max_pixels: int, limits: ReadLimits = _DEFAULT_LIMITS) -> Image.Image:
    """``page`` as an RGB image of about ``max_pixels`` pixels (see the module).

    Raises:
        LCOInputError: The PDF cannot be opened, the page is not in it, or it does not render (naming the page).
    """
    with _document(page.source, page.password, limits) as document:
        pdf_page = _page(document, page.number)
        try:
            width, height = pdf_page.get_size()
            bitmap = pdf_page.render(scale=render_scale(width, height, max_pixels))
            return bitmap.to_pil().convert("RGB")
        except LCOInputError as e:
            raise LCOInputError(f"page {page.number}: {e.reason}") from None
        except Exception as e:  # PDFium's own failures on a broken page
            raise LCOInputError(f"page {page.number} does not render ({type(e).__name__}: {e}).") from None


def page_text(page: PdfPage, limits: ReadLimits = _DEFAULT_LIMITS) -> str:
    """The text layer of ``page`` ("" for a page without one, e.g. a scan).

    Raises:
        LCOInputError: As :func:`render_page`.
    """
    with _document(page.source, page.password, limits) as document:
        text_page = _page(document, page.number).get_textpage()
        try:
            return text_page.get_text_range().replace("\r\n", "\n")
        finally:
            text_page.close()
