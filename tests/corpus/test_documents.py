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


class PageCountingRunner(CountingRunner):
    """The local runner, keeping the items its model is given (a changed PDF's item lists the pages to embed)."""

    def start(self, spec):
        job = super().start(spec)
        outcomes = job.outcomes

        def kept(records, **encode_kwargs):
            def fed():
                for record in records:
                    self.items.append(record.item)
                    yield record

            return outcomes(fed(), **encode_kwargs)

        self.items = []
        job.outcomes = kept
        return job


@pytest.mark.parametrize("kind", ["parquet", "lancedb", "milvus"])
def test_a_failed_page_costs_only_itself_and_a_changed_pdf_re_embeds_only_its_changed_pages(tmp_path, embedder, kind):
    from lco_embedding.corpus import open_store
    from tests.inputs.test_documents import with_broken_page

    folder = tmp_path / "docs"
    folder.mkdir()
    report = folder / "report.pdf"
    text_pdf(report, texts=("Revenue rose", "Costs fell", "Outlook"))
    good = text_pdf(tmp_path / "scan.pdf", texts=("Scan one", "Scan two", "Scan three"))
    (folder / "scan.pdf").write_bytes(open(with_broken_page(tmp_path / "scan.pdf", 2), "rb").read())
    out = target(kind, tmp_path, "store")
    summary = encode_corpus([folder], out, model=embedder, show_progress_bar=False)
    assert (summary.done, summary.failed, summary.partial, summary.embedded) == (2, 1, 1, 5)
    (failure,) = open_store(out).read_errors()  # the failed page, named, beside the document's other pages
    assert failure["id"].endswith("scan.pdf") and failure["pages"] == [2]
    assert failure["error"].startswith("page 2 cannot be loaded")

    def pages(document):
        rows = [row for row in read_embeddings(out).to_pylist() if row["id"].endswith(document)]
        return {int(row["start"]): np.asarray(row["embedding"]) for row in rows}

    assert sorted(pages("scan.pdf")) == [1, 3]
    before = pages("report.pdf")
    # One page edited, one added: only those two go to the model; the others keep their vectors.
    text_pdf(report, texts=("Revenue rose", "Costs fell sharply", "Outlook", "Appendix"))
    runner = PageCountingRunner()
    update = encode_corpus([folder], out, model=embedder, runner=runner, show_progress_bar=False)
    assert [item["pages"] for item in runner.items] == [[2, 4]]
    assert (update.update["changed"], update.update["unchanged"], update.update["pages_kept"]) == (1, 1, 2)
    after = pages("report.pdf")
    assert sorted(after) == [1, 2, 3, 4]
    for page in (1, 3):
        np.testing.assert_allclose(after[page], before[page], atol=1e-6, rtol=0)  # copied (not given to the model)
    for page in (1, 2, 3, 4):
        np.testing.assert_allclose(after[page], embedder.encode({"pdf": str(report), "page": page}), atol=1e-5, rtol=0)
    # The broken document repaired: only its failed page is embedded; its failure goes.
    (folder / "scan.pdf").write_bytes(good)
    runner = PageCountingRunner()
    update = encode_corpus([folder], out, model=embedder, runner=runner, show_progress_bar=False)
    assert [item["pages"] for item in runner.items] == [[2]] and update.failed == update.partial == 0
    assert open_store(out).read_errors() == [] and sorted(pages("scan.pdf")) == [1, 2, 3]
