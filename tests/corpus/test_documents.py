"""PDF pages in a corpus job: a table's rows name a PDF and a page (``pdf``, ``page`` columns); each row is that
page's image (with the row's other content), in every store, equal to ``encode`` of the same item; an update
re-embeds only the rows that changed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lco_embedding.corpus import encode_corpus, read_embeddings
from tests.corpus.test_update import CountingRunner, target
from tests.inputs.test_documents import image_pdf, text_pdf

SMALL = 40 * 28 * 28


@pytest.mark.parametrize("kind", ["parquet", "lancedb", "milvus"])
def test_a_table_of_pdf_pages_is_embedded_as_encode_embeds_each_page(tmp_path, embedder, kind):
    folder = tmp_path / "library"
    folder.mkdir()
    image_pdf(folder / "scans.pdf", [(300, 400), (500, 200)])
    text_pdf(folder / "report.pdf")
    rows = [
        {"id": "s1", "pdf": "scans.pdf", "page": 1, "max_pixels": SMALL},
        {"id": "s2", "pdf": "scans.pdf", "page": 2, "max_pixels": SMALL},
        {"id": "r2", "pdf": "report.pdf", "page": 2, "pdf_text": True, "max_pixels": SMALL},
        {"id": "r1", "pdf": "report.pdf", "page": 1, "text": "a caption", "max_pixels": SMALL},
        {"id": "bad", "pdf": "report.pdf", "page": 9, "max_pixels": SMALL},
    ]
    table = folder / "pages.jsonl"
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = target(kind, tmp_path, "pages")
    summary = encode_corpus([table], out, model=embedder, show_progress_bar=False)
    assert (summary.embedded, summary.failed) == (4, 1)
    got = read_embeddings(out).to_pylist()
    by_id = {row["id"]: row for row in got}
    assert {row["id"]: row["modality"] for row in got} == {"s1": "image", "s2": "image", "r2": "mixed", "r1": "mixed"}
    assert by_id["s2"]["page"] == 2  # the page column is carried to the output
    for row in rows[:4]:
        item = {key: (str(folder / value) if key == "pdf" else value) for key, value in row.items() if key != "id"}
        np.testing.assert_allclose(by_id[row["id"]]["embedding"], embedder.encode(item), atol=1e-5, rtol=0)
    # An edited row whose page another row already has reuses that row's vector: no model call.
    rows[0]["page"] = 2
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    runner = CountingRunner()
    encode_corpus([table], out, model=embedder, runner=runner, show_progress_bar=False)
    assert runner.embedded == []
    again = {row["id"]: row for row in read_embeddings(out).to_pylist()}
    np.testing.assert_allclose(again["s1"]["embedding"], by_id["s2"]["embedding"], atol=1e-5, rtol=0)
    # A page no row had is embedded, alone.
    rows[0]["pdf"] = "report.pdf"
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    runner = CountingRunner()
    update = encode_corpus([table], out, model=embedder, runner=runner, show_progress_bar=False)
    assert runner.embedded == ["s1"] and update.update["changed"] == 1
    new = {row["id"]: row for row in read_embeddings(out).to_pylist()}["s1"]
    want = embedder.encode({"pdf": str(folder / "report.pdf"), "page": 2, "max_pixels": SMALL})
    np.testing.assert_allclose(new["embedding"], want, atol=1e-5, rtol=0)
