"""``lco-embed encode`` on a folder of PDFs as a subprocess: one row per page (two PDFs, four pages) without
``--segment``, the file no modality reads named in the summary; ``search`` prints each hit's page."""

from __future__ import annotations

from tests.cli.conftest import run_cli
from tests.inputs.test_documents import image_pdf, text_pdf


def test_a_folder_of_pdfs_is_embedded_page_by_page_and_search_prints_pages(tmp_path, tiny_omni):
    folder = tmp_path / "docs"
    folder.mkdir()
    image_pdf(folder / "scans.pdf", [(300, 400), (500, 200)])
    text_pdf(folder / "report.pdf")
    (folder / "notes.xyz").write_bytes(b"no modality reads this")
    out = tmp_path / "emb"
    result = run_cli("encode", folder, "--out", out, "--model", tiny_omni, "--dtype", "float32")
    said = result.stdout + result.stderr
    assert "notes.xyz" in said and "Embedded 2 of 3 items as 4 rows, 1 failed" in said, said
    search = run_cli("search", out, "Quarterly report", "-k", "4")  # the model that made the store
    assert search.stdout.count("page ") >= 4 and "page 2" in search.stdout, search.stdout
