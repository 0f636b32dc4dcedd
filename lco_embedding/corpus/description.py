"""What describes a loaded model in a corpus manifest: the entries that decide its embeddings.

Shared by the local job (:mod:`.job`) and the Ray job (:mod:`lco_embedding.distributed`), which makes the
description on a worker where the model is loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["describe_embedder", "load_store_model", "model_name", "store_model_differences"]


def model_name(model: LCOEmbedder | str) -> str:
    """The model's name as the manifest records it: a folder made absolute, a hub id as given."""
    name = model if isinstance(model, str) else model.model_name_or_path
    return os.path.abspath(name) if os.path.isdir(name) else name


def describe_embedder(
    embedder: LCOEmbedder, prompt_name: str | None, prompt: str | None, use_audio_in_video: Any = None
) -> dict[str, Any]:
    """The manifest entries that describe a loaded model: what decides its embeddings (its settings with a call's
    ``use_audio_in_video`` over them).

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
        "settings": embedder.embedder_settings.for_call(use_audio_in_video).saved(),
    }


def store_model_differences(model: LCOEmbedder | str, manifest: dict[str, Any]) -> list[str]:
    """How ``model`` (a loaded model, or a name) differs from the one that made a store: its name, and of a loaded
    model also its quantization, settings and dimension. Empty when it is the store's model."""
    spec = manifest["model"]
    found = []
    if model_name(model) != spec["name"]:
        found.append(f"model {model_name(model)!r}, the store's {spec['name']!r}")
    if isinstance(model, str):
        return found
    if model.quantization != spec.get("quantization"):
        found.append(f"quantization {model.quantization!r}, the store's {spec.get('quantization')!r}")
    saved = model.embedder_settings.saved()
    found += [
        f"setting {name} {saved.get(name)!r}, the store's {manifest['settings'].get(name)!r}"
        for name in sorted(set(saved) | set(manifest["settings"]))
        if saved.get(name) != manifest["settings"].get(name)
    ]
    if model.get_embedding_dimension() != manifest["dimension"]:
        found.append(f"{model.get_embedding_dimension()} dimensions, the store's {manifest['dimension']}")
    return found


def load_store_model(
    manifest: dict[str, Any], *, model: str | None = None, device: str | None = None, preset: str | None = None
) -> LCOEmbedder:
    """The model that made a store, loaded as the store's manifest records it — checkpoint, revision, dtype,
    quantization and settings — so that queries are embedded exactly as its rows were. ``search``, ``eval
    --corpus-from`` and the Python API load it here.

    Args:
        manifest: The store's manifest.
        model: A copy of the store's model elsewhere (a moved folder); default: the recorded name and revision.
        device: Where to load it.
        preset: A preset the caller asked for: refused unless it is the store's own (queries are embedded like the
            rows, so a store's settings are never overridden).

    Raises:
        ValueError: ``preset`` differs from the store's, or the loaded model's settings or dimension differ from
            the store's.
    """
    from lco_embedding.embedder import LCOEmbedder

    spec, settings = manifest["model"], manifest["settings"]
    stored_preset = settings.get("preset", "default")
    if preset is not None and preset != stored_preset:
        raise ValueError(
            f"the store's rows were embedded with preset {stored_preset!r}, not {preset!r}, and queries are embedded "
            "like the rows: leave out the preset (or embed the corpus again with it)."
        )
    embedder = LCOEmbedder(
        model or spec["name"],
        revision=None if model else spec.get("revision"),
        device=device,
        dtype=spec["dtype"],
        quantization=spec.get("quantization"),
        **settings,
    )
    if embedder.embedder_settings.saved() != settings:
        raise ValueError(
            f"the model's preprocessing settings {embedder.embedder_settings.saved()} differ from the store's "
            f"{settings}: the query would not be embedded like the rows."
        )
    if embedder.get_embedding_dimension() != manifest["dimension"]:
        raise ValueError(
            f"{embedder.model_name_or_path!r} makes {embedder.get_embedding_dimension()}-dimensional embeddings; the "
            f"store holds {manifest['dimension']}-dimensional ones from {spec['name']!r}."
        )
    return embedder
