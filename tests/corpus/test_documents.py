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


def test_a_folder_of_pdfs_and_images_gives_a_row_per_page_and_names_what_it_did_not_take(tmp_path, embedder):
    from lco_embedding.corpus import search_folder
    from lco_embedding.testing import synthetic_image

    folder = tmp_path / "docs"
    folder.mkdir()
    image_pdf(folder / "scans.pdf", [(300, 400), (500, 200), (400, 400)])
    text_pdf(folder / "report.pdf")
    from PIL import Image

    Image.fromarray(synthetic_image(32, 48, np.random.default_rng(1))).save(folder / "photo.png")
    (folder / "data.xyz").write_bytes(b"no modality reads this")
    summary = encode_corpus([folder], tmp_path / "out", model=embedder, show_progress_bar=False)
    assert summary.not_taken == [f"{folder}/data.xyz"]
    rows = read_embeddings(tmp_path / "out").to_pylist()
    pages = [(row["id"].rsplit("/", 1)[1], row["segment"], row["start"]) for row in rows if row["modality"] == "pdf"]
    assert pages == [("report.pdf", 0, 1.0), ("report.pdf", 1, 2.0), ("scans.pdf", 0, 1.0), ("scans.pdf", 1, 2.0),
                     ("scans.pdf", 2, 3.0)]  # fmt: skip
    photo = next(row for row in rows if row["modality"] == "image")
    assert photo["start"] is None  # every other item whole, one row
    third = next(row for row in rows if row["id"].endswith("scans.pdf") and row["start"] == 3.0)
    want = embedder.encode({"pdf": str(folder / "scans.pdf"), "page": 3})
    np.testing.assert_allclose(third["embedding"], want, atol=1e-5, rtol=0)
    hit = search_folder(tmp_path / "out", want, k=1)[0][0]
    assert hit.source.endswith("scans.pdf") and hit.span == "page 3"
    best = search_folder(tmp_path / "out", want, k=5, group_by="source")[0]
    assert len({h.source for h in best}) == len(best) == 3  # each document's best page (and the photo)
