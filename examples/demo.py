"""The main job in one go: embed text, images, audio, video and a mixed item, then search across them.

Uses LCO-Embedding-Omni-3B when the Hugging Face hub is reachable; otherwise a tiny random checkpoint (and says
so: its numbers then mean nothing).
"""

import time

import numpy as np
from _common import load_model, sample_media

media = sample_media()
model = load_model()
print(model)
items = {
    "text": "a cat on a mat",
    "image": media["png"],
    "audio": {"audio": media["wav"]},
    "video": {"video": media["mp4"]},
    "mixed": {"text": "a colourful gradient", "image": media["jpg"]},
}
start = time.perf_counter()
emb = model.encode(list(items.values()), show_progress_bar=False)
print(f"embedded {len(items)} items of 5 kinds in {time.perf_counter() - start:.2f} s -> {emb.shape}")
assert np.isfinite(emb).all() and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
sims = model.similarity(emb, emb).numpy()
print("cosine similarities:")
print("        " + " ".join(f"{k:>7}" for k in items))
for name, row in zip(items, sims, strict=True):
    print(f"{name:>7} " + " ".join(f"{v:+7.3f}" for v in row))
