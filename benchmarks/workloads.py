"""The benchmark workloads, written to disk with a fixed seed so every path embeds the same files.

Each workload is a list of items in the forms :meth:`LCOEmbedder.encode` accepts (strings, ``{"image": path}``, ...)
plus, for the reference loop, the same items as model-card message contents.

* text: a long-tailed mix of lengths from 10 to 1,000 tokens (log-uniform: most short, a few long), in random order.
* images: JPEGs from 160x120 to 1600x1200 (in the quick run up to 800x600), in random order.
* audio: 16 kHz WAV clips of 1 to 30 s (quick: 1 to 10 s).
* video: MPEG-4 clips of 2 to 6 s at 8 fps, 320x240, sampled at 2 fps (quick: 2 s).
* mixed: text + image, text + audio, image + audio and text + video items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lco_embedding.testing import synthetic_image, write_mp4, write_wav
from lco_embedding.testing.reference import media_content, mixed_content, text_content

_WORDS = (
    "the model embeds text images audio and video into one space so that a query finds the document that answers it "
    "across languages and modalities while generative pretraining already aligns what contrastive refinement sharpens"
).split()

SIZES = {
    "quick": {"text": 8, "images": 3, "audio": 3, "video": 2, "mixed": 3, "audio_max_s": 10, "video_max_s": 2},
    "full": {"text": 192, "images": 32, "audio": 16, "video": 8, "mixed": 32, "audio_max_s": 30, "video_max_s": 6},
}


@dataclass
class Workload:
    """Items for the SDK and for sentence-transformers, and the same items as model-card contents."""

    name: str
    items: list[Any]
    contents: list[list[dict]]


def _text(rng: np.random.Generator, tokens: int, tokenizer) -> str:
    words = list(rng.choice(_WORDS, size=tokens))
    text = " ".join(words)
    while len(tokenizer(text, add_special_tokens=False)["input_ids"]) > tokens and len(words) > 1:
        words = words[: max(1, int(len(words) * 0.9))]
        text = " ".join(words)
    return text


def build_workloads(folder: str | Path, tokenizer, size: str = "quick", seed: int = 0) -> dict[str, Workload]:
    """Write the media of every workload under ``folder`` and return the workloads by name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = SIZES[size]
    out: dict[str, Workload] = {}

    lengths = np.exp(rng.uniform(np.log(10), np.log(1000), size=n["text"])).astype(int)
    texts = [_text(rng, int(length), tokenizer) for length in lengths]
    out["text"] = Workload("text", list(texts), [text_content(t) for t in texts])

    sides = [(120, 160), (240, 320), (480, 640), (600, 800)] + ([] if size == "quick" else [(768, 1024), (1200, 1600)])
    images = []
    for i in range(n["images"]):
        h, w = sides[rng.integers(len(sides))]
        path = folder / f"image_{i}.jpg"
        Image.fromarray(synthetic_image(h, w, rng)).save(path, quality=90)
        images.append(str(path))
    out["images"] = Workload("images", [{"image": p} for p in images], [media_content("image", p) for p in images])

    audios = []
    for i in range(n["audio"]):
        seconds = float(rng.uniform(1, n["audio_max_s"]))
        t = np.arange(int(16000 * seconds)) / 16000
        path = folder / f"audio_{i}.wav"
        write_wav(path, 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800) * t) + 0.05 * rng.standard_normal(t.size), 16000)
        audios.append(str(path))
    out["audio"] = Workload("audio", [{"audio": p} for p in audios], [media_content("audio", p) for p in audios])

    videos = []
    for i in range(n["video"]):
        path = folder / f"video_{i}.mp4"
        write_mp4(path, seconds=int(rng.integers(2, n["video_max_s"] + 1)), fps=8, width=320, height=240, rng=rng)
        videos.append(str(path))
    out["video"] = Workload("video", [{"video": p} for p in videos], [media_content("video", p) for p in videos])

    items, contents = [], []
    for i in range(n["mixed"]):
        text = _text(rng, int(rng.integers(10, 200)), tokenizer)
        image, audio, video = images[i % len(images)], audios[i % len(audios)], videos[i % len(videos)]
        kind = i % 4
        if kind == 0:
            items.append({"text": text, "image": image})
            contents.append(mixed_content([("image", image), ("text", text)]))
        elif kind == 1:
            items.append({"text": text, "audio": audio})
            contents.append(mixed_content([("audio", audio), ("text", text)]))
        elif kind == 2:
            items.append({"image": image, "audio": audio})
            contents.append(mixed_content([("audio", audio), ("image", image)]))
        else:
            items.append({"text": text, "video": video})
            contents.append(mixed_content([("video", video), ("text", text)]))
    out["mixed"] = Workload("mixed", items, contents)
    return out
