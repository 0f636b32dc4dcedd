"""Shared by the examples: load the real checkpoint, or a tiny random one when the hub is out of reach."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from lco_embedding import CheckpointNotFoundError, LCOEmbedder
from lco_embedding.testing import build_tiny_checkpoint, make_test_media

DEFAULT_MODEL = os.environ.get("LCO_MODEL", "LCO-Embedding/LCO-Embedding-Omni-3B")
WORKDIR = Path(tempfile.gettempdir()) / "lco-embedding-examples"


def load_model(name: str = DEFAULT_MODEL) -> LCOEmbedder:
    """Load ``name``; if it cannot be found or reached, say so plainly and use a tiny random checkpoint instead."""
    try:
        return LCOEmbedder(name)
    except CheckpointNotFoundError as e:  # no network and no cached copy, no such folder, ...
        print(
            f"!! {e}\n!! Running on a TINY RANDOM checkpoint instead: the pipeline is real, but the embeddings and "
            "similarities below mean nothing.",
            file=sys.stderr,
        )
        tiny = WORKDIR / "tiny-checkpoint"
        if not (tiny / "model.safetensors").is_file():
            build_tiny_checkpoint(tiny)
        return LCOEmbedder(str(tiny))


def sample_media() -> dict[str, str]:
    """Small synthetic media files (png, jpg, wav, flac, mp4) to embed."""
    return {name: str(path) for name, path in make_test_media(WORKDIR / "media").items()}
