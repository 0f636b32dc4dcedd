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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lco_embedding.core.errors import CheckpointNotFoundError
from lco_embedding.core.memory import large_allocations_mapped
from lco_embedding.core.types import Modality
from lco_embedding.model.hub import LocatedCheckpoint, locate_checkpoint
from lco_embedding.model.quantization import default_dtype, stored_dtype

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "CheckpointInfo",
    "LoadedModel",
    "describe_checkpoint",
    "load_model",
    "read_config",
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
        stored_dtype: The dtype its weights are stored in (None when config.json does not say).
    """

    model_type: str
    modalities: tuple[Modality, ...]
    hidden_size: int
    num_layers: int
    commit: str | None
    stored_dtype: torch.dtype | None = None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The given device, else cuda if available, else mps, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(
    dtype: str | torch.dtype | None, device: torch.device, stored: torch.dtype | None = None
) -> torch.dtype:
    """The given dtype; else (``None`` or ``"auto"``) bfloat16 on CUDA, on a CPU the checkpoint's ``stored`` dtype
    when that is bfloat16 and the CPU computes it natively, and float32 otherwise (:mod:`.quantization`).
    """
    if dtype is None or dtype == "auto":
        return default_dtype(device, stored)
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


def read_config(checkpoint: LocatedCheckpoint) -> dict[str, Any]:
    """The parsed ``config.json`` of a located checkpoint.

    Raises:
        ValueError: It is not valid JSON, or not a JSON object.
    """
    try:
        with open(checkpoint.config_path, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{checkpoint.name!r}: config.json is not valid JSON ({e}); the checkpoint is damaged.") from e
    if not isinstance(config, dict):
        raise ValueError(f"{checkpoint.name!r}: config.json does not hold a JSON object; the checkpoint is damaged.")
    return config


def _check_model_type(name: str, config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        found = "no model_type" if model_type is None else f"model_type {model_type!r}"
        raise ValueError(
            f"{name!r} has {found} in its config.json, which lco-embedding cannot load. Supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (LCO-Embedding-Omni checkpoints are qwen2_5_omni_thinker)."
        )
    return model_type


def _check_weights(checkpoint: LocatedCheckpoint) -> None:
    """A local folder must hold safetensors weights (the hub's are checked by transformers as it downloads)."""
    if checkpoint.folder is None:
        return
    folder = Path(checkpoint.folder)
    if any(folder.glob("*.safetensors")):
        return
    other = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".gguf"))
    found = f" It has {', '.join(other[:3])}: lco-embedding reads safetensors only (never pickled weights)."
    found = found if other else ""
    raise CheckpointNotFoundError(
        f"{checkpoint.name!r} has a config.json but no *.safetensors weights.{found} Give a complete checkpoint "
        "folder (as written by save_pretrained or downloaded from the hub)."
    )


def describe_checkpoint(name: str, hub_kwargs: dict[str, Any] | None = None) -> CheckpointInfo:
    """Read a checkpoint's ``config.json`` (hub id or folder) without loading its weights.

    Raises:
        CheckpointNotFoundError: The checkpoint cannot be found or reached (the message says how to fix it).
        ValueError: Unsupported ``model_type``.
    """
    checkpoint = locate_checkpoint(name, **(hub_kwargs or {}))
    config = read_config(checkpoint)
    model_type = _check_model_type(name, config)
    text = config.get("thinker_config", config) if model_type == "qwen2_5_omni" else config
    text = text.get("text_config", text)
    return CheckpointInfo(
        model_type=model_type,
        modalities=SUPPORTED_MODEL_TYPES[model_type],
        hidden_size=int(text["hidden_size"]),
        num_layers=int(text["num_hidden_layers"]),
        commit=checkpoint.commit,
        stored_dtype=stored_dtype(config),
    )


def read_optional_json(name: str, filename: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The JSON file ``filename`` of a checkpoint (hub id or folder), or ``{}`` when it has none."""
    if os.path.isdir(name):
        path: str | None = os.path.join(name, filename)
        if not os.path.isfile(path):
            return {}
    else:
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


def _detach_from_files(model: torch.nn.Module) -> None:
    """Give the tensors that were not quantized memory of their own. Loading maps the checkpoint's files into
    memory and keeps them mapped while any tensor points into them, so every page read to quantize a weight would
    stay counted in the process's resident size; once the kept tensors (embedding table, norms) are copied, the
    files are unmapped and the resident size is what the weights take."""
    copies: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for module in model.modules():
            for table in (module._parameters, module._buffers):
                for name, tensor in list(table.items()):
                    if tensor is None or type(tensor.data) is not torch.Tensor:
                        continue  # absent, or quantized (a tensor subclass of its own)
                    if id(tensor) not in copies:  # tied weights stay tied
                        data = tensor.data.clone()
                        copies[id(tensor)] = (
                            torch.nn.Parameter(data, requires_grad=tensor.requires_grad)
                            if isinstance(tensor, torch.nn.Parameter)
                            else data
                        )
                    table[name] = copies[id(tensor)]


def load_model(
    checkpoint: LocatedCheckpoint,
    *,
    device: torch.device,
    dtype: torch.dtype,
    attn_implementation: str,
    model_kwargs: dict[str, Any] | None = None,
    processor_kwargs: dict[str, Any] | None = None,
    quantization: str | None = None,
) -> LoadedModel:
    """Load a supported checkpoint (located by :func:`~lco_embedding.model.hub.locate_checkpoint`) and its processor.

    Args:
        checkpoint: Where the checkpoint's files are, and the hub arguments to read them with.
        device: Where to put the model.
        dtype: Weight dtype.
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``, ...
        model_kwargs: Extra keyword arguments for ``from_pretrained`` of the model.
        processor_kwargs: Extra keyword arguments for ``from_pretrained`` of the processor.
        quantization: Quantize the language model's linear layers as they load
            (:mod:`lco_embedding.model.quantization`).

    Raises:
        ValueError: If ``config.json``'s ``model_type`` is not supported (the message lists the supported ones).
        CheckpointNotFoundError: A local folder without safetensors weights.
    """
    import transformers

    config = read_config(checkpoint)
    model_type = _check_model_type(checkpoint.name, config)
    _check_weights(checkpoint)
    model_name_or_path, hub_kwargs, commit = checkpoint.source, checkpoint.hub_kwargs, checkpoint.commit
    kwargs = {
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "use_safetensors": True,
        **hub_kwargs,
        **(model_kwargs or {}),
    }
    if quantization is not None:
        from lco_embedding.model.quantization import quantization_config

        kwargs["quantization_config"] = quantization_config(quantization, device, dtype)
        if quantization == "nf4":  # bitsandbytes places the weights itself; its models refuse .to()
            kwargs["device_map"] = {"": device}
    quantized_on_cpu = quantization is not None and device.type == "cpu"
    # While a quantized model loads on a CPU: each weight's full-precision staging copy goes back to the system as
    # soon as it is quantized. Measured on the Omni-3B architecture: the anonymous peak during an int8 load
    # 9.98 GB -> 5.52 GB, the final size.
    with large_allocations_mapped(quantized_on_cpu):
        if model_type == "qwen2_5_omni_thinker":
            thinker = transformers.Qwen2_5OmniThinkerForConditionalGeneration
            model = thinker.from_pretrained(model_name_or_path, **kwargs)
        elif model_type == "qwen2_5_omni":
            thinker_config = transformers.Qwen2_5OmniThinkerConfig(**config["thinker_config"])
            # Build the thinker alone and read only its tensors: talker / token2wav weights are never loaded.
            model = transformers.Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
                model_name_or_path, config=thinker_config, key_mapping={r"^thinker\.": ""}, **kwargs
            )
        else:
            model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(model_name_or_path, **kwargs)
        if quantized_on_cpu:
            _detach_from_files(model)
    if quantization != "nf4":
        model.to(device)
    model.eval()
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
