"""PDF pages to the model's pixel values: ours (pypdfium2, each page rendered once at the pixel budget) against the
ColPali-style path (pdf2image, which runs poppler's ``pdftoppm`` at a fixed DPI, then the reference resize), both
ending in the same Qwen2-VL image processor call at the same output size; and the peak memory growth of walking a
1,000-page PDF page by page.

Needs the ``[pdf]`` extra, plus, for the comparison only, ``pip install pdf2image`` and poppler's binaries
(``apt-get install poppler-utils``). One process, paths alternated, the best of three runs each; nothing else should
run on the machine (see docs/performance.md).

    python benchmarks/documents.py                 # 40 pages timed per path, a 1,000-page PDF for memory
    python benchmarks/documents.py --pages 100 --dpi 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_PIXELS = 1280 * 28 * 28  # the default image budget (1,280 visual tokens)


def write_pdf(path: Path, pages: int) -> None:
    """A text PDF of A4 pages (vector text, as reports are), written by fpdf2."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=11)
    for number in range(pages):
        pdf.add_page()
        for line in range(45):
            pdf.cell(text=f"Page {number + 1}, line {line + 1}: quarterly revenue, costs and outlook in detail.")
            pdf.ln(5)
    pdf.output(str(path))


def ours(path: Path, pages: int, processor) -> float:
    from lco_embedding.preprocessing.image import ImageOptions, preprocess_image
    from lco_embedding.preprocessing.pdf import PdfPage

    options = ImageOptions(max_pixels=MAX_PIXELS)
    start = time.perf_counter()
    for number in range(1, pages + 1):
        image = preprocess_image(PdfPage(str(path), number), options)
        processor(images=[image], return_tensors="pt")
    return time.perf_counter() - start


def poppler(path: Path, pages: int, processor, dpi: int) -> float:
    from pdf2image import convert_from_path
    from qwen_omni_utils.v2_5.vision_process import fetch_image

    start = time.perf_counter()
    for image in convert_from_path(str(path), dpi=dpi, first_page=1, last_page=pages, thread_count=1):
        resized = fetch_image({"image": image.convert("RGB"), "max_pixels": MAX_PIXELS}, image_patch_size=14)
        processor(images=[resized], return_tensors="pt")
    return time.perf_counter() - start


def memory(path: Path, pages: int) -> int:
    from lco_embedding.preprocessing.image import ImageOptions, preprocess_image
    from lco_embedding.preprocessing.pdf import PdfPage
    from lco_embedding.testing import peak_memory_growth

    options = ImageOptions(max_pixels=MAX_PIXELS)

    def walk() -> int:
        return sum(preprocess_image(PdfPage(str(path), n), options).size[0] for n in range(1, pages + 1))

    _, grown = peak_memory_growth(walk)
    return grown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=40, help="pages timed per path")
    parser.add_argument("--dpi", type=int, default=200, help="pdf2image's DPI (ColPali-style pipelines use 200)")
    parser.add_argument("--memory-pages", type=int, default=1000)
    args = parser.parse_args()
    from lco_embedding.testing import build_tiny_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(str(build_tiny_checkpoint(root / "tiny"))).image_processor
        timed, big = root / "timed.pdf", root / "big.pdf"
        write_pdf(timed, args.pages)
        write_pdf(big, args.memory_pages)
        # Memory first, before any other rendering has grown the heap: the first pages' growth (buffers, PDFium's
        # caches), then the whole walk's growth above that (what more pages cost: flat means nothing accumulates).
        first = memory(big, 10)
        grown = memory(big, args.memory_pages)
        print(f"{os.cpu_count()} CPUs; {args.pages} A4 text pages to pixel values at max_pixels={MAX_PIXELS:,}")
        results: dict[str, list[float]] = {"ours (pypdfium2 at the budget)": [], f"pdf2image {args.dpi} dpi": []}
        try:
            import pdf2image  # noqa: F401
        except ImportError:
            results.pop(f"pdf2image {args.dpi} dpi")
            print("pdf2image is not installed: only our path is timed")
        for _ in range(3):
            results["ours (pypdfium2 at the budget)"].append(ours(timed, args.pages, processor))
            if len(results) > 1:
                results[f"pdf2image {args.dpi} dpi"].append(poppler(timed, args.pages, processor, args.dpi))
        best = {name: min(times) for name, times in results.items()}
        for name, seconds in best.items():
            print(f"  {name:32s} {args.pages / seconds:7.1f} pages/s  ({seconds:.2f} s, best of 3)")
        if len(best) > 1:
            ratio = best[f"pdf2image {args.dpi} dpi"] / best["ours (pypdfium2 at the budget)"]
            print(f"  ours / pdf2image: {ratio:.2f}x")
        print(
            f"peak RSS growth walking the first 10 pages: {first / 2**20:.0f} MB; then all {args.memory_pages:,} "
            f"pages one by one: {grown / 2**20:.0f} MB above that"
        )


if __name__ == "__main__":
    main()
