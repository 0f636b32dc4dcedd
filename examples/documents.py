"""Documents: PDF pages as inputs — one page, every page of a file, and a folder of PDFs searched page by page.

Needs the [pdf] extra (pypdfium2). The PDF here is written by Pillow (two image pages) so the example runs offline.
"""

import tempfile
from pathlib import Path

import numpy as np
from _common import load_model, sample_media
from PIL import Image

from lco_embedding.corpus import encode_corpus, search_folder

media = sample_media()
model = load_model()
folder = Path(tempfile.mkdtemp(prefix="lco-documents-")) / "reports"
folder.mkdir()
pages = [Image.open(media["png"]).convert("RGB"), Image.open(media["jpg"]).convert("RGB")]
pages[0].save(folder / "report.pdf", save_all=True, append_images=pages[1:])  # a two-page PDF

page = model.encode({"pdf": str(folder / "report.pdf"), "page": 2})
print("page 2:", page.shape)
every = model.encode_segments(str(folder / "report.pdf"))  # one row per page
print("pages:", every.start.tolist(), "same as page 2:", bool(np.allclose(every.embeddings[1], page, atol=1e-5)))

summary = encode_corpus([folder], folder.parent / "emb", model=model, show_progress_bar=False)
print(f"corpus: {summary.done} document(s) as {summary.embedded} page rows")
hit = search_folder(folder.parent / "emb", model.encode({"image": media["jpg"]}), k=1)[0][0]
print(f"best page for the photo: {Path(hit.source).name} {hit.span}")
