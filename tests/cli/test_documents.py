"""``lco-embed encode`` on a folder of PDFs as a subprocess: one row per page (three PDFs, one with a page that
cannot be loaded) without ``--segment``, the file no modality reads and the failed page named in the summary;
``search`` prints each hit's page."""

from __future__ import annotations

import json

from tests.cli.conftest import run_cli
from tests.inputs.test_documents import image_pdf, text_pdf, with_broken_page


def test_a_folder_of_pdfs_is_embedded_page_by_page_and_search_prints_pages(tmp_path, tiny_omni):
    folder = tmp_path / "docs"
    folder.mkdir()
    image_pdf(folder / "scans.pdf", [(300, 400), (500, 200)])
    text_pdf(folder / "report.pdf")
    text_pdf(tmp_path / "memo.pdf", texts=("Memo", "Lost page", "Signed"))
    (folder / "memo.pdf").write_bytes(open(with_broken_page(tmp_path / "memo.pdf", 2), "rb").read())
    (folder / "notes.xyz").write_bytes(b"no modality reads this")
    out = tmp_path / "emb"
    result = run_cli("encode", folder, "--out", out, "--model", tiny_omni, "--dtype", "float32")
    said = result.stdout + result.stderr
    assert "notes.xyz" in said and "Embedded 3 of 4 items as 6 rows, 2 failed, 1 of them in part" in said, said
    (failure,) = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines() if "memo" in line]
    assert failure["pages"] == [2] and failure["error"].startswith("page 2 cannot be loaded")
    search = run_cli("search", out, "Quarterly report", "-k", "4")  # the model that made the store
    assert search.stdout.count("page ") >= 4 and "page 2" in search.stdout, search.stdout
