"""PDF pages as inputs: rendered at the item's budget by pypdfium2, embedded as that image (and its text layer with
``pdf_text``), one row per page with ``encode_segments``, and clear errors for documents that cannot be read. The
PDFs are made here: PIL writes image pages, fpdf2 pages with a text layer (and encryption), pypdfium2 an empty
document."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from lco_embedding import LCOInputError
from lco_embedding.preprocessing.pdf import PdfPage, page_text, render_page, render_scale
from lco_embedding.testing.reference import media_content

TOL = 1e-5
SMALL = 40 * 28 * 28  # a small budget keeps the tiny model fast; the rendering follows it


def image_pdf(path, sizes) -> str:
    """A PDF of image pages of the given sizes (in points: PIL writes 72 dpi), each a different gradient."""
    rng = np.random.default_rng(5)
    pages = []
    for width, height in sizes:
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
        colour = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        pages.append(Image.fromarray(((x + y) / 2 * colour).astype(np.uint8)))
    pages[0].save(path, format="PDF", save_all=True, append_images=pages[1:])
    return str(path)


def with_broken_page(path, page: int) -> str:
    """The PDF at ``path`` with its page ``page`` pointing at an object that does not exist (PDFium counts the page
    and cannot load it); written beside it as ``broken-<name>``. Its other pages' objects are untouched."""
    import re
    from pathlib import Path

    data = Path(path).read_bytes()
    kids = re.search(rb"/Kids\s*\[([^\]]*)\]", data)
    references = re.findall(rb"\d+ 0 R", kids.group(1))
    missing = b"999 0 R".ljust(len(references[page - 1]))
    broken = data[: kids.start()] + kids.group(0).replace(references[page - 1], missing) + data[kids.end() :]
    out = Path(path).with_name("broken-" + Path(path).name)
    out.write_bytes(broken)
    return str(out)


def text_pdf(path=None, texts=("Quarterly report: revenue rose", "Second page: costs fell"), **encryption) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for text in texts:
        pdf.add_page()
        pdf.set_font("helvetica", size=24)
        pdf.cell(text=text)
    if encryption:
        pdf.set_encryption(**encryption)
    data = bytes(pdf.output())
    if path is not None:
        path.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    import pypdfium2 as pdfium

    root = tmp_path_factory.mktemp("pdfs")
    empty = pdfium.PdfDocument.new()
    empty.new_page(100, 100)
    empty.del_page(0)
    buffer = io.BytesIO()
    empty.save(buffer)
    empty.close()
    text = text_pdf(root / "text.pdf")
    return {
        "pages": image_pdf(root / "pages.pdf", [(300, 400), (500, 200), (3000, 2000)]),  # the last a poster
        "text": str(root / "text.pdf"),
        "text_bytes": text,
        "encrypted": text_pdf(root / "locked.pdf", owner_password="owner", user_password="secret")
        and root / "locked.pdf",
        "corrupt": b"%PDF-1.7\n" + bytes(range(256)) * 4,
        "truncated": text[: len(text) // 2],
        "empty": buffer.getvalue(),
    }


def test_a_page_is_rendered_once_at_the_budget_and_a_poster_stays_within_it(pdfs):
    for number, (width, height) in enumerate([(300, 400), (500, 200), (3000, 2000)], 1):
        image = render_page(PdfPage(pdfs["pages"], number), SMALL)
        assert image.mode == "RGB"
        scale = render_scale(width, height, SMALL)
        assert image.size == (pytest.approx(width * scale, abs=1), pytest.approx(height * scale, abs=1))
        assert 0.97 * SMALL <= image.size[0] * image.size[1] <= 1.01 * SMALL


def test_a_page_equals_its_rendered_image_and_the_model_cards_loop(embedder, reference, pdfs, tmp_path):
    image = render_page(PdfPage(pdfs["pages"], 2), 1280 * 28 * 28)  # the reference's own budget
    image.save(tmp_path / "page2.png")  # lossless: the reference reads the same pixels
    got = embedder.encode({"pdf": pdfs["pages"], "page": 2})
    np.testing.assert_allclose(got, embedder.encode({"image": image}), atol=TOL, rtol=0)
    want = reference.embed([media_content("image", str(tmp_path / "page2.png"))])[0]
    np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_the_text_layer_makes_a_mixed_item_of_the_page_and_its_text(embedder, pdfs):
    page = PdfPage(pdfs["text"], 1)
    text = page_text(page)
    assert "Quarterly report" in text
    image = render_page(page, SMALL)
    got = embedder.encode({"pdf": pdfs["text"], "page": 1, "pdf_text": True, "max_pixels": SMALL})
    np.testing.assert_allclose(got, embedder.encode({"image": image, "text": text}), atol=TOL, rtol=0)
    alone = embedder.encode({"pdf": pdfs["text"], "page": 1, "max_pixels": SMALL})
    assert float(got @ alone) < 0.999  # the text changed the embedding
    # A page without a text layer (a scan) stays its image alone.
    scan = embedder.encode({"pdf": pdfs["pages"], "page": 1, "pdf_text": True, "max_pixels": SMALL})
    np.testing.assert_allclose(scan, embedder.encode({"pdf": pdfs["pages"], "page": 1, "max_pixels": SMALL}), atol=TOL)


def test_every_source_form_gives_the_same_page(embedder, pdfs):
    data = pdfs["text_bytes"]
    uri = "data:application/pdf;base64," + base64.b64encode(data).decode()
    want = embedder.encode({"pdf": pdfs["text"], "page": 2, "max_pixels": SMALL})
    for source in (data, uri, "file://" + pdfs["text"]):
        np.testing.assert_allclose(embedder.encode({"pdf": source, "page": 2, "max_pixels": SMALL}), want, atol=TOL)


def test_encode_segments_gives_one_row_per_page_numbered_from_one(embedder, pdfs):
    segments = embedder.encode_segments({"pdf": pdfs["pages"], "max_pixels": SMALL})
    assert segments.start.tolist() == segments.end.tolist() == [1.0, 2.0, 3.0]
    assert segments.segment.tolist() == [0, 1, 2] and set(segments.modality.tolist()) == {"pdf"}
    pages = [embedder.encode({"pdf": pdfs["pages"], "page": n, "max_pixels": SMALL}) for n in (1, 2, 3)]
    np.testing.assert_allclose(segments.embeddings, np.stack(pages), atol=TOL, rtol=0)
    from_bytes = embedder.encode_segments({"pdf": pdfs["text_bytes"], "max_pixels": SMALL})
    assert from_bytes.start.tolist() == [1.0, 2.0]


def test_a_whole_pdf_as_one_item_says_how_to_get_pages(embedder, pdfs):
    for item in (pdfs["pages"], pdfs["text_bytes"], {"pdf": pdfs["pages"]}):
        with pytest.raises(LCOInputError, match=r"container of pages.*'page': 1.*encode_segments"):
            embedder.encode(item)


@pytest.mark.parametrize(
    ("name", "item", "message"),
    [
        ("encrypted", {"page": 1}, r"encrypted: give its password.*pdf_password"),
        ("encrypted", {"page": 1, "pdf_password": "wrong"}, r"not its password"),
        ("corrupt", {"page": 1}, r"cannot open the PDF .*corrupt or truncated"),
        ("truncated", {"page": 1}, r"cannot open the PDF .*corrupt or truncated"),
        ("empty", {"page": 1}, r"the PDF has no pages"),
        ("pages", {"page": 4}, r"page 4 is not in the PDF: it has 3 pages"),
        ("pages", {"page": 0}, r"'page' must be a page number from 1"),
    ],
)
def test_bad_documents_are_input_errors_that_name_the_item_and_the_fix(embedder, pdfs, name, item, message):
    source = pdfs[name]
    source = str(source) if not isinstance(source, bytes) else source
    with pytest.raises(LCOInputError, match=message) as error:
        embedder.encode(["a text first", {"pdf": source, "max_pixels": SMALL, **item}])
    assert error.value.index == 1


def test_an_encrypted_pdf_opens_with_its_password(embedder, pdfs):
    locked = embedder.encode({"pdf": pdfs["encrypted"], "page": 1, "pdf_password": "secret", "max_pixels": SMALL})
    plain = embedder.encode({"pdf": pdfs["text"], "page": 1, "max_pixels": SMALL})
    np.testing.assert_allclose(locked, plain, atol=TOL, rtol=0)  # the same page, once opened


def test_a_document_that_fails_in_a_segmented_call_is_that_sources_error(embedder, pdfs):
    report_items = [{"pdf": pdfs["corrupt"], "max_pixels": SMALL}, {"pdf": pdfs["pages"], "max_pixels": SMALL}]
    segments = embedder.encode_segments(report_items, on_error="skip")
    assert segments.source.tolist() == [1, 1, 1]
    assert "corrupt or truncated" in segments.errors[0]


def test_a_page_that_fails_costs_only_itself(embedder, pdfs, tmp_path):
    from lco_embedding.core.errors import EncodeReport

    broken = with_broken_page(pdfs["pages"], 2)
    report = EncodeReport()
    segments = embedder.encode_segments({"pdf": broken, "max_pixels": SMALL}, on_error="skip", report=report)
    assert segments.start.tolist() == [1.0, 3.0]  # the other pages embedded
    assert segments.failed_pages == report.errors == {0: segments.failed_pages[0]}
    assert segments.failed_pages[0].startswith("page 2 cannot be loaded")
    for row, page in enumerate((1, 3)):
        want = embedder.encode({"pdf": pdfs["pages"], "page": page, "max_pixels": SMALL})
        np.testing.assert_allclose(segments.embeddings[row], want, atol=TOL, rtol=0)
    with pytest.raises(LCOInputError, match="page 2 cannot be loaded"):
        embedder.encode_segments({"pdf": broken, "max_pixels": SMALL})  # on_error="raise" (the default)
    with pytest.raises(LCOInputError, match="page 2 cannot be loaded"):
        embedder.encode({"pdf": broken, "page": 2, "max_pixels": SMALL})


def test_listed_pages_are_embedded_alone_in_the_order_given(embedder, pdfs):
    segments = embedder.encode_segments({"pdf": pdfs["pages"], "pages": [3, 1], "max_pixels": SMALL})
    assert segments.start.tolist() == [3.0, 1.0] and segments.segment.tolist() == [0, 1]
    whole = embedder.encode_segments({"pdf": pdfs["pages"], "max_pixels": SMALL})
    np.testing.assert_allclose(segments.embeddings, whole.embeddings[[2, 0]], atol=TOL, rtol=0)
    for pages, message in (([4], r"pages \[4\] are not in the PDF: it has 3"), ([1, 1], "a page twice"),
                           ([], "non-empty list")):  # fmt: skip
        with pytest.raises(LCOInputError, match=message):
            embedder.encode_segments({"pdf": pdfs["pages"], "pages": pages})


def test_a_page_hash_follows_the_page_not_the_file(tmp_path):
    from lco_embedding.preprocessing.pdf import page_digests

    first = page_digests(text_pdf(texts=("one", "two", "three")))
    assert first == page_digests(text_pdf(texts=("one", "two", "three")))  # the same pages, written again
    edited = page_digests(text_pdf(texts=("zero", "one", "TWO", "three")))  # a page inserted, one edited
    assert edited[1] == first[0] and edited[3] == first[2] and edited[2] not in first and edited[0] not in first
    broken = page_digests(with_broken_page(text_pdf(tmp_path / "t.pdf", texts=("one", "two", "three")) and
                                           tmp_path / "t.pdf", 2))  # fmt: skip
    assert broken == [first[0], None, first[2]]
