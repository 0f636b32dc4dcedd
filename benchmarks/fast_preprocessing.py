"""How far ``preprocessing="fast"`` lands from the reference preprocessing: per item cosine and max |diff| of the
normalized embeddings, on a tiny model with std-0.2 weights (``build_tiny_checkpoint``'s default), for noise JPEGs
of several sizes (:func:`lco_embedding.testing.write_noise_jpegs`), the test media and two videos.

    python benchmarks/fast_preprocessing.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from lco_embedding import LCOEmbedder
from lco_embedding.testing import build_tiny_checkpoint, make_test_media, write_noise_jpegs


def deviation_items(folder: Path) -> list:
    """Noise JPEGs, the test media's images and videos, and one caption + image item."""
    noise = [str(path) for path in write_noise_jpegs(folder / "noise")]
    media = {name: str(path) for name, path in make_test_media(folder / "media").items()}
    items: list = [{"image": path} for path in noise]
    items += [{"image": media[name]} for name in ("png", "png_rgba", "jpg", "gray_png")]
    items += [{"video": media["mp4_short"]}, {"video": media["mp4"]}, {"text": "a caption", "image": noise[0]}]
    return items


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = build_tiny_checkpoint(folder / "tiny")
        items = deviation_items(folder)
        reference = LCOEmbedder(checkpoint, device="cpu").encode(items)
        fast = LCOEmbedder(checkpoint, device="cpu", preprocessing="fast").encode(items)
        cosine = (reference * fast).sum(axis=1)
        for item, value, diff in zip(items, cosine, np.abs(reference - fast).max(axis=1), strict=True):
            name = ", ".join(f"{key}={Path(str(v)).name}" for key, v in item.items())
            print(f"{name:45s} cosine {value:.6f}  max|diff| {diff:.2e}")
        print(f"min cosine {cosine.min():.6f}, max |diff| {np.abs(reference - fast).max():.2e} over {len(items)} items")


if __name__ == "__main__":
    main()
