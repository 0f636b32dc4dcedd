"""Training fixtures: a tiny checkpoint that LoRA can visibly train, and toy data written in the test."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from lco_embedding.testing import build_tiny_checkpoint

WORDS = (
    "cat dog fox mat fog lazy quick brown jumps over the of and to in is that for it with as was on be by at this"
).split()


def toy_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Pairs of unrelated three-word phrases: the model can only match them by learning the pairs."""
    rng = random.Random(seed)
    return [(" ".join(rng.sample(WORDS, 3)), " ".join(rng.sample(WORDS, 3))) for _ in range(count)]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def top1(embedder, pairs: list[tuple[str, str]]) -> float:
    """Share of anchors whose nearest positive (cosine) is their own."""
    queries = embedder.encode([a for a, _ in pairs], normalize_embeddings=True)
    documents = embedder.encode([b for _, b in pairs], normalize_embeddings=True)
    return float(((queries @ documents.T).argmax(1) == np.arange(len(pairs))).mean())


@pytest.fixture(scope="session")
def trainable_checkpoint(tmp_path_factory) -> str:
    """A tiny Omni thinker with init std 0.1: distinct embeddings, yet smooth enough for LoRA to train quickly."""
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("trainable"), "omni-thinker", seed=3, init_std=0.1))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory, media) -> tuple[Path, list[tuple[str, str]]]:
    """24 text pairs (some with a hard negative: another pair's positive) and 2 image-anchored pairs, as JSONL."""
    folder = tmp_path_factory.mktemp("toy-data")
    pairs = toy_pairs(24)
    rows: list = []
    for i, (anchor, positive) in enumerate(pairs):
        row = {"anchor": {"text": anchor, "image_path": ""}, "positive": {"text": positive}}
        if i % 3 == 0:
            row["negative"] = {"text": pairs[(i + 1) % len(pairs)][1]}
        rows.append(row)
    rows.append({"anchor": {"image": media["png"]}, "positive": "a picture of a cat"})
    rows.append({"anchor": {"image_path": media["jpg"], "text": "a dog"}, "positive": "a dog in the fog"})
    return write_jsonl(folder / "pairs.jsonl", rows), pairs
