"""Embed images from a path, a PIL image and an array; they agree."""

import numpy as np
from _common import load_model, sample_media
from PIL import Image

media = sample_media()
model = load_model()
image = Image.open(media["jpg"])
emb = model.encode([media["jpg"], image, np.asarray(image.convert("RGB")), media["png"]])
print("path vs PIL vs array:", model.similarity(emb[:3], emb[:3]).numpy().round(4))
print("jpg vs png:", float(model.similarity(emb[:1], emb[3:])[0, 0]))
