"""A BEIR-layout dataset of four modalities whose answers are known: each query is a copy, or a light edit, of one
corpus row (the same file, or the same words), and that row is its one relevant document."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lco_embedding.testing import synthetic_image, write_mp4, write_wav

WORDS = "river stone light field cloud market engine garden letter winter signal harbor".split()


def write_dataset(root: Path, *, texts: int = 12, images: int = 6, sounds: int = 6, videos: int = 3, seed: int = 0):
    """Write the dataset under ``root``; returns ``{query id: its document id}``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "media").mkdir(parents=True, exist_ok=True)
    corpus, queries, answers = [], [], {}
    for i in range(texts):
        words = " ".join(rng.choice(WORDS, size=8))
        corpus.append({"_id": f"t{i}", "title": f"note {i}", "text": words})
        if i % 2 == 0:
            queries.append({"_id": f"qt{i}", "text": f"note {i} {words}."})  # a light edit: one more character
            answers[f"qt{i}"] = f"t{i}"
    for i in range(images):
        Image.fromarray(synthetic_image(56, 84, rng)).save(root / "media" / f"image{i}.png")
        corpus.append({"_id": f"i{i}", "image": f"media/image{i}.png"})
        queries.append({"_id": f"qi{i}", "image": f"media/image{i}.png"})  # a copy
        answers[f"qi{i}"] = f"i{i}"
    for i in range(sounds):
        t = np.arange(16000) / 16000
        write_wav(root / "media" / f"sound{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 90 * i) * t), 16000)
        corpus.append({"_id": f"a{i}", "audio": f"media/sound{i}.wav"})
        queries.append({"_id": f"qa{i}", "audio": f"media/sound{i}.wav"})
        answers[f"qa{i}"] = f"a{i}"
    for i in range(videos):
        write_mp4(root / "media" / f"clip{i}.mp4", seconds=1, fps=4, width=56, height=56, rng=rng)
        corpus.append({"_id": f"v{i}", "video": f"media/clip{i}.mp4"})
        queries.append({"_id": f"qv{i}", "video": f"media/clip{i}.mp4"})
        answers[f"qv{i}"] = f"v{i}"
    corpus.append({"_id": "m0", "text": "a caption", "image": "media/image0.png"})  # a mixed row, never relevant
    (root / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries))
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, d in answers.items()]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return answers


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("beir")
    return root, write_dataset(root)


def copy_dataset(root: Path, target: Path) -> Path:
    shutil.copytree(root, target)
    return target
