"""Model loading: decide the architecture from ``config.json``, pick device, dtype and attention, load.

Supported ``model_type`` values:

* ``qwen2_5_omni_thinker`` — the LCO-Embedding-Omni checkpoints: text, image, audio, video.
* ``qwen2_5_omni`` — full Qwen2.5-Omni checkpoints: only the thinker is built and loaded (the talker and
  token2wav weights are never read).
* ``qwen2_5_vl`` — Qwen2.5-VL-based checkpoints: text, image, video (no audio encoder).

Weights load from safetensors only; ``trust_remote_code`` is never used.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from lco_embedding.types import Modality

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "CheckpointInfo",
    "LoadedModel",
    "describe_checkpoint",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "resolve_attn",
    "read_optional_json",
]

logger = logging.getLogger(__name__)

SUPPORTED_MODEL_TYPES: dict[str, tuple[Modality, ...]] = {
    "qwen2_5_omni_thinker": ("text", "image", "audio", "video"),
    "qwen2_5_omni": ("text", "image", "audio", "video"),
    "qwen2_5_vl": ("text", "image", "video"),
}
"""``model_type`` -> the modalities a checkpoint of that type can embed."""


@dataclass
class LoadedModel:
    """A loaded checkpoint.

    Attributes:
        model: The ``...ForConditionalGeneration`` module (holds the weights).
        backbone: Its inner model, whose forward returns hidden states without the vocabulary head.
        processor: The checkpoint's processor (tokenizer, image/video processors, feature extractor).
        model_type: The ``model_type`` of ``config.json``.
        modalities: What the checkpoint can embed.
        hidden_size: The embedding dimension.
        patch_size: The vision encoder's patch size.
        commit: The hub commit the files came from (None for a local folder).
    """

    model: torch.nn.Module
    backbone: torch.nn.Module
    processor: Any
    model_type: str
    modalities: tuple[Modality, ...]
    hidden_size: int
    patch_size: int
    commit: str | None = None


@dataclass
class CheckpointInfo:
    """What ``config.json`` says about a checkpoint, read without loading its weights.

    Attributes:
        model_type: The ``model_type``.
        modalities: What it can embed.
        hidden_size: The embedding dimension.
        num_layers: Decoder layers of the language model.
        commit: The hub commit (None for a local folder).
    """

    model_type: str
    modalities: tuple[Modality, ...]
    hidden_size: int
    num_layers: int
    commit: str | None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The given device, else cuda if available, else mps, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The given dtype, else bfloat16 on CUDA and float32 elsewhere (CPU, and MPS where bf16 is unproven)."""
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"dtype must be a torch dtype or its name ('bfloat16', 'float32', ...), got {dtype!r}.")
        dtype = resolved
    if dtype == torch.float16 and device.type in ("cpu", "mps"):
        warnings.warn(
            f"float16 on {device.type} is prone to overflow (NaN embeddings are then refused); prefer float32.",
            stacklevel=3,
        )
    return dtype


def resolve_attn(attn_implementation: str | None, device: torch.device) -> str:
    """The given attention implementation, else flash_attention_2 on CUDA when importable, else sdpa."""
    if attn_implementation is not None:
        return attn_implementation
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


_SNAPSHOT = re.compile(r"[/\\]snapshots[/\\]([0-9a-f]{40})[/\\]")


def _read_config(name: str, hub_kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``config.json`` of a checkpoint, and the hub commit it came from (from the cache's snapshot folder)."""
    from transformers.utils import cached_file

    path = cached_file(name, "config.json", **hub_kwargs)
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    match = _SNAPSHOT.search(str(path))
    return config, match.group(1) if match and not os.path.isdir(name) else None


def _check_model_type(name: str, config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{name!r} has model_type {model_type!r}, which lco-embedding cannot load. Supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (LCO-Embedding-Omni checkpoints are qwen2_5_omni_thinker)."
        )
    return model_type


def describe_checkpoint(name: str, hub_kwargs: dict[str, Any] | None = None) -> CheckpointInfo:
    """Read a checkpoint's ``config.json`` (hub id or folder) without loading its weights.

    Raises:
        ValueError: Unsupported ``model_type``.
        OSError: The checkpoint cannot be found or reached.
    """
    config, commit = _read_config(name, hub_kwargs or {})
    model_type = _check_model_type(name, config)
    text = config.get("thinker_config", config) if model_type == "qwen2_5_omni" else config
    text = text.get("text_config", text)
    return CheckpointInfo(
        model_type=model_type,
        modalities=SUPPORTED_MODEL_TYPES[model_type],
        hidden_size=int(text["hidden_size"]),
        num_layers=int(text["num_hidden_layers"]),
        commit=commit,
    )


def read_optional_json(name: str, filename: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON file ``filename`` of a checkpoint (hub id or folder), or ``{}`` when it has none."""
    from transformers.utils import cached_file

    path = cached_file(
        name,
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )
    if path is None:
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_model(
    model_name_or_path: str,
    *,
    device: torch.device,
    dtype: torch.dtype,
    attn_implementation: str,
    hub_kwargs: dict[str, Any],
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load a supported checkpoint (hub id or local folder) and its processor.

    Args:
        model_name_or_path: Hub id or local folder.
        device: Where to put the model.
        dtype: Weight dtype.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``, ...
        hub_kwargs: ``revision``, ``cache_dir``, ``token``, ``local_files_only``.
        model_kwargs: Extra keyword arguments for ``from_pretrained`` of the model.
        processor_kwargs: Extra keyword arguments for ``from_pretrained`` of the processor.

    Raises:
        ValueError: If ``config.json``'s ``model_type`` is not supported (the message lists the supported ones).
    """
    import transformers

    config, commit = _read_config(model_name_or_path, hub_kwargs)
    model_type = _check_model_type(model_name_or_path, config)
    kwargs = {
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "use_safetensors": True,
        **hub_kwargs,
        **(model_kwargs or {}),
    }
    if model_type == "qwen2_5_omni_thinker":
        model = transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(model_name_or_path, **kwargs)
    elif model_type == "qwen2_5_omni":
        thinker_config = transformers.Qwen2_5OmniThinkerConfig(**config["thinker_config"])
        # Build the thinker alone and read only its tensors: talker / token2wav weights are never loaded.
        model = transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
            model_name_or_path, config=thinker_config, key_mapping={r"^thinker\.": ""}, **kwargs
        )
    else:
        model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(model_name_or_path, **kwargs)
    model.to(device).eval()
    processor = transformers.AutoProcessor.from_pretrained(model_name_or_path, **hub_kwargs, **(processor_kwargs or {}))
    text_config = model.config.get_text_config()
    vision_config = model.config.vision_config
    return LoadedModel(
        model=model,
        backbone=model.model,
        processor=processor,
        model_type=model_type,
        modalities=SUPPORTED_MODEL_TYPES[model_type],
        hidden_size=text_config.hidden_size,
        patch_size=int(getattr(vision_config, "patch_size", 14)),
        commit=commit,
    )
