"""LoRA on the language model only: add it to an :class:`~lco_embedding.LCOEmbedder`, save and load adapters, and
merge an adapter into a full checkpoint.

The adapters wrap the decoder's linear layers (``q/k/v/o_proj``, ``gate/up/down_proj`` of every
``language_model.layers.N``); the vision and audio towers, the embeddings and the vocabulary head stay frozen, as in
the paper. peft injects the adapters into the embedder's own modules, so ``encode`` embeds through them with the
same prompts and last-token pooling as always.

An adapter folder holds peft's ``adapter_config.json`` and ``adapter_model.safetensors``, plus
``lco_adapter.json``: the base checkpoint (name, revision, commit) and how the adapter was trained.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lco_embedding.core.require import require
from lco_embedding.embedder import LCOEmbedder
from lco_embedding.model.loading import read_optional_json

__all__ = [
    "ADAPTER_INFO_FILE",
    "LANGUAGE_MODEL_LINEAR_LAYERS",
    "LoraSettings",
    "add_lora",
    "attach_adapter",
    "load_adapter",
    "merge_adapter",
    "save_adapter",
]

LANGUAGE_MODEL_LINEAR_LAYERS = (
    r"(?:.*\.)?language_model\.layers\.\d+\.(?:self_attn\.(?:q|k|v|o)_proj|mlp\.(?:gate|up|down)_proj)"
)
"""peft ``target_modules`` pattern (full match on module names): the decoder's linear layers, nothing else."""

ADAPTER_INFO_FILE = "lco_adapter.json"
"""The file of an adapter folder that names its base checkpoint."""


@contextlib.contextmanager
def _quiet_peft() -> Iterator[None]:
    """peft reads transformers' deprecated ``is_gradient_checkpointing``; its FutureWarning is not the user's."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (defaults: the authors' rank 64, alpha 128, dropout 0.05).

    Attributes:
        rank: Rank of the update matrices.
        alpha: Scaling numerator (the update is scaled by ``alpha / rank``).
        dropout: Dropout on the adapters' input during training.
    """

    rank: int = 64
    alpha: int = 128
    dropout: float = 0.05

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA needs rank >= 1, alpha > 0 and 0 <= dropout < 1, got {self}.")


def add_lora(embedder: LCOEmbedder, settings: LoraSettings | None = None) -> Any:
    """Freeze ``embedder``'s weights and add trainable LoRA adapters to its language model's linear layers.

    Returns:
        The ``peft.PeftModel`` around ``embedder.model`` (for saving); ``embedder`` itself now embeds through the
        adapters.
    """
    peft = require("peft", "train")
    settings = settings or LoraSettings()
    config = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=LANGUAGE_MODEL_LINEAR_LAYERS,
        bias="none",
        base_model_name_or_path=embedder.model_name_or_path,
        revision=embedder.revision,
    )
    for parameter in embedder.model.parameters():
        parameter.requires_grad_(False)
    with _quiet_peft():
        return peft.get_peft_model(embedder.model, config)


def save_adapter(peft_model: Any, embedder: LCOEmbedder, path: str | os.PathLike[str], **info: Any) -> Path:
    """Write the adapter of ``peft_model`` and its ``lco_adapter.json`` (base checkpoint, plus ``info``) to ``path``."""
    path = Path(path)
    peft_model.save_pretrained(str(path))
    document = {
        "base_model": embedder.model_name_or_path,
        "revision": embedder.revision,
        "commit": embedder.commit,
        "model_type": embedder.model_type,
        **info,
    }
    (path / ADAPTER_INFO_FILE).write_text(json.dumps(document, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def _base_of(adapter: str | os.PathLike[str]) -> tuple[str, str | None]:
    """The base checkpoint an adapter folder names: ``(name or path, revision)``."""
    info = read_optional_json(str(adapter), ADAPTER_INFO_FILE, {})
    if info.get("base_model"):
        return info["base_model"], info.get("revision")
    config = read_optional_json(str(adapter), "adapter_config.json", {})
    if not config:
        raise ValueError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json).")
    if not config.get("base_model_name_or_path"):
        raise ValueError(f"the adapter {adapter} does not name its base model; give it with base=.")
    return config["base_model_name_or_path"], config.get("revision")


def attach_adapter(embedder: LCOEmbedder, adapter: str | os.PathLike[str], *, trainable: bool = False) -> Any:
    """Apply the adapter folder ``adapter`` to ``embedder`` (frozen base weights); returns the ``peft.PeftModel``."""
    peft = require("peft", "train")
    for parameter in embedder.model.parameters():
        parameter.requires_grad_(False)
    with _quiet_peft():
        peft_model = peft.PeftModel.from_pretrained(embedder.model, str(adapter), is_trainable=trainable)
    embedder.model.eval()
    return peft_model


def load_adapter(adapter: str | os.PathLike[str], *, base: str | None = None, **embedder_kwargs: Any) -> LCOEmbedder:
    """An :class:`LCOEmbedder` of the adapter's base checkpoint with the adapter applied (not merged).

    Args:
        adapter: An adapter folder written by ``lco-embed train`` / :func:`~lco_embedding.training.train`.
        base: The base checkpoint (default: the one the adapter names, at its revision).
        **embedder_kwargs: Passed to :class:`LCOEmbedder` (``device``, ``dtype``, ...).
    """
    embedder = _base_embedder(adapter, base, embedder_kwargs)
    attach_adapter(embedder, adapter)
    return embedder


def _base_embedder(adapter: str | os.PathLike[str], base: str | None, embedder_kwargs: dict[str, Any]) -> LCOEmbedder:
    name, revision = _base_of(adapter)
    if base is None:
        base = name
        embedder_kwargs.setdefault("revision", revision)
    return LCOEmbedder(base, **embedder_kwargs)


def merge_adapter(
    adapter: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    base: str | None = None,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> Path:
    """Merge a LoRA adapter into its base and save a full checkpoint that ``LCOEmbedder(out)``,
    ``SentenceTransformer(out, trust_remote_code=True)`` and transformers load.

    The merge runs in float32; the weights are then saved in ``dtype`` (default: the base checkpoint's own dtype).

    Args:
        adapter: The adapter folder.
        out: The folder to write (weights, processor, tokenizer, chat template, settings, sentence-transformers
            files).
        base: The base checkpoint (default: the one the adapter names).
        device: Where to merge (default: as :class:`LCOEmbedder`).
        dtype: dtype of the saved weights.
    """
    embedder = _base_embedder(adapter, base, {"device": device, "dtype": torch.float32})
    peft_model = attach_adapter(embedder, adapter)
    if dtype is None:
        config = read_optional_json(embedder.model_name_or_path, "config.json", {"revision": embedder.revision})
        dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    merged = peft_model.merge_and_unload()
    if merged is not embedder.model:
        raise RuntimeError("peft returned a new model object on merging; cannot save it through the embedder.")
    merged.to(dtype)
    embedder.save_pretrained(out)
    return Path(out)
