"""How far ``preprocessing="fast"`` lands from the reference preprocessing: per item cosine and max |diff| of the
normalized embeddings, on a tiny model with std-0.2 weights (``build_tiny_checkpoint``'s default), for noise JPEGs
of several sizes (:func:`lco_embedding.testing.write_noise_jpegs`), the test media and two videos; then, on
checkpoints whose image processor's own pixel limits lie below, at and above the embedder's, 120 photos of three
sizes: tokens per photo in each mode, whether every grid is the reference's, min cosine and seconds per mode.

    python benchmarks/fast_preprocessing.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lco_embedding import LCOEmbedder
from lco_embedding.testing import build_tiny_checkpoint, make_test_media, synthetic_image, write_noise_jpegs


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
        processor_limits(folder, checkpoint)


LIMITS = {"below": (56 * 56, 64 * 28 * 28), "equal": (4 * 28 * 28, 1280 * 28 * 28), "above": (56 * 56, 16384 * 28 * 28)}


def processor_limits(folder: Path, checkpoint: Path) -> None:
    """The same grids and tokens whatever the checkpoint processor's own limits (120 photos of three sizes)."""
    rng = np.random.default_rng(11)
    photos = []
    for index in range(120):
        path = folder / "photos" / f"{index}.jpg"
        path.parent.mkdir(exist_ok=True)
        height, width = [(200, 300), (480, 640), (1200, 1600)][index % 3]
        Image.fromarray(synthetic_image(height, width, rng)).save(path, quality=90)
        photos.append({"image": str(path)})
    print("\n| processor limits | tokens of a 640x480 photo (ref / fast) | same grids | min cosine | s (ref / fast) |")
    print("|---|---|---|---|---|")
    for name, (low, high) in LIMITS.items():
        copy = folder / f"tiny-{name}"
        shutil.copytree(checkpoint, copy)
        config = json.loads((copy / "processor_config.json").read_text())
        config["image_processor"]["size"] = {"shortest_edge": low, "longest_edge": high}
        (copy / "processor_config.json").write_text(json.dumps(config))
        reference = LCOEmbedder(str(copy), device="cpu")
        fast = LCOEmbedder(str(copy), device="cpu", preprocessing="fast")
        grids = all(
            reference.pipeline().featurizer(0, p, None, None).inputs["image_grid_thw"].tolist()
            == fast.pipeline().featurizer(0, p, None, None).inputs["image_grid_thw"].tolist()
            for p in photos
        )
        tokens = [model.pipeline().featurizer(0, photos[1], None, None).length for model in (reference, fast)]
        timed = []
        for model in (reference, fast):
            began = time.perf_counter()
            timed.append((model.encode(photos, batch_size=8), time.perf_counter() - began))
        cosine = (timed[0][0] * timed[1][0]).sum(axis=1).min()
        print(f"| {name} ({low:,}-{high:,}) | {tokens[0]} / {tokens[1]} | {grids} | {cosine:.5f} | "
              f"{timed[0][1]:.1f} / {timed[1][1]:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
