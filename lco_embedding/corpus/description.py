"""What describes a loaded model in a corpus manifest: the entries that decide its embeddings.

Shared by the local job (:mod:`.job`) and the Ray job (:mod:`lco_embedding.distributed`), which makes the
description on a worker where the model is loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["describe_embedder", "model_name"]


def model_name(model: LCOEmbedder | str) -> str:
    """The model's name as the manifest records it: a folder made absolute, a hub id as given."""
    name = model if isinstance(model, str) else model.model_name_or_path
    return os.path.abspath(name) if os.path.isdir(name) else name


def describe_embedder(embedder: LCOEmbedder, prompt_name: str | None, prompt: str | None) -> dict[str, Any]:
    """The manifest entries that describe a loaded model: what decides its embeddings.

    Made where the model is loaded: in this process, or on a Ray worker for ``lco-embed encode --ray``.
    """
    from lco_embedding.inputs.prompts import MIXED_SUFFIX, SUFFIXES
    from lco_embedding.pipeline.options import resolve_prompt

    return {
        "model": {
            "name": model_name(embedder),
            "revision": embedder.revision,
            "commit": embedder.commit,
            "model_type": embedder.model_type,
            "dtype": str(embedder.dtype).removeprefix("torch."),
            # recorded only when set, so that folders written before quantization existed still resume
            **({"quantization": embedder.quantization} if embedder.quantization else {}),
        },
        "dimension": embedder.get_embedding_dimension(),
        "prompts": {
            "instruction": resolve_prompt(embedder, prompt_name, prompt),
            "named": dict(embedder.prompts),
            "suffixes": {**SUFFIXES, "mixed": MIXED_SUFFIX},
            "mixed_rule": embedder.embedder_settings.mixed_suffix,
        },
        "settings": embedder.embedder_settings.saved(),
    }
