"""The namespace the package's docstring examples run in (``pytest --doctest-modules``): a real embedder on a tiny
random checkpoint, small media files, and a scratch folder the examples run in, so that every example that can run
without network or GPU does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def _doctest_world(tmp_path_factory) -> dict:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.testing import build_tiny_checkpoint, make_test_media

    root = tmp_path_factory.mktemp("doctest")
    checkpoint = str(build_tiny_checkpoint(root / "tiny"))
    reranker = str(build_tiny_checkpoint(root / "tiny-reranker", seed=3, words=("yes", "no")))
    media = {name: str(path) for name, path in make_test_media(root / "media").items()}
    model = LCOEmbedder(checkpoint, device="cpu")
    return {"root": root, "checkpoint": checkpoint, "reranker": reranker, "media": media, "model": model}


@pytest.fixture(autouse=True)
def _doctest_namespace(request, tmp_path, monkeypatch) -> None:
    """For docstring examples only: ``model``, ``tiny_checkpoint``, ``reranker_checkpoint`` (its tokenizer holds
    "yes" and "no"), ``cat_png``, ``meow_wav``, ``clip_mp4``,
    ``lance_folder`` (a LanceDB database folder to create), and a
    working folder holding ``photos/cat.png``, ``captions.jsonl``, ``pairs.jsonl`` (image and text pairs) and
    ``lecture.wav`` / ``lecture.mp4``."""
    if not isinstance(request.node, pytest.DoctestItem):
        return
    import shutil

    world = request.getfixturevalue("_doctest_world")
    media = world["media"]
    (tmp_path / "photos").mkdir()
    shutil.copyfile(media["png"], tmp_path / "photos" / "cat.png")
    shutil.copyfile(media["wav"], tmp_path / "lecture.wav")
    shutil.copyfile(media["mp4"], tmp_path / "lecture.mp4")
    rows = [{"id": "c1", "text": "a cat on a mat"}, {"id": "c2", "text": "a dog in the fog"}]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    images = [media[name] for name in ("png", "jpg", "gray_png", "png_rgba")] * 2
    pairs = [{"image": path, "text": f"picture number {i}"} for i, path in enumerate(images)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    request.getfixturevalue("doctest_namespace").update(
        model=world["model"],
        tiny_checkpoint=world["checkpoint"],
        reranker_checkpoint=world["reranker"],
        cat_png=media["png"],
        meow_wav=media["wav"],
        clip_mp4=media["mp4"],
        workdir=Path(os.getcwd()),
        lance_folder=str(tmp_path / "lancedb"),
    )
