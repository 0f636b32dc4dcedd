"""Weight precision: the default dtype per machine, and quantized loading of the language model.

``dtype="auto"`` (the default): bfloat16 on CUDA; on a CPU, the checkpoint's own dtype when it is bfloat16 (every
LCO-Embedding checkpoint is) and the CPU computes bfloat16 natively (AVX-512 BF16 or AMX on x86, BF16 on Arm),
float32 otherwise (a float32 checkpoint, or a CPU that would emulate bfloat16 slowly); float32 on MPS.

``quantization=`` quantizes linear layers while the weights load (each tensor is read, quantized and kept, so the
whole model is never held in higher precision). int8 quantizes every linear layer, the vision and audio towers'
too (measured harmless: on the 28-layer benchmark model the cosine to float32 of image and audio embeddings is
0.9992 either way); int4 and nf4 quantize the language model only and keep the towers in the base dtype. The
embedding table stays in the base dtype:

========================  ===========================================================  ====================
name                      what                                                         where
========================  ===========================================================  ====================
``"int8"``                int8 weights, activations in the base dtype (torchao)        CPU, CUDA
``"int8-dynamic"``        int8 weights and dynamically quantized int8 activations      CPU, CUDA
``"int4"``                int4 language-model weights, groups of 128 (torchao)         CUDA
``"nf4"``                 4-bit NormalFloat language-model weights (bitsandbytes)      CUDA
========================  ===========================================================  ====================
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
from typing import Any, Literal

import torch

__all__ = [
    "QUANTIZATIONS",
    "Quantization",
    "check_quantization",
    "cpu_has_native_bf16",
    "default_dtype",
    "quantization_config",
    "stored_dtype",
]

Quantization = Literal["int8", "int8-dynamic", "int4", "nf4"]

QUANTIZATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "int8": ("torchao", ("cpu", "cuda")),
    "int8-dynamic": ("torchao", ("cpu", "cuda")),
    "int4": ("torchao", ("cuda",)),
    "nf4": ("bitsandbytes", ("cuda",)),
}
"""Each quantization: the package that does it and the devices it runs on."""

#: Modules left in the base dtype by the 4-bit schemes: the vision and audio towers, and the (unused) vocabulary head.
KEPT_BY_4BIT = ["model.visual", "model.audio_tower", "lm_head"]

_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 AVX-512 BF16, x86 AMX, Arm BF16


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 / AMX on x86, the BF16 extension on Arm)."""
    system = platform.system()
    if system == "Linux":
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                for line in f:
                    if line.startswith(("flags", "Features")):
                        return bool(_CPU_BF16_FLAGS & set(line.partition(":")[2].split()))
        except OSError:
            return False
        return False
    if system == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True)
        except OSError:
            return False
        return out.stdout.strip() == "1"
    return False


def stored_dtype(config: dict[str, Any]) -> torch.dtype | None:
    """The dtype a checkpoint's weights are stored in, from its ``config.json`` (``dtype`` or ``torch_dtype``)."""
    for source in (config, config.get("thinker_config") or {}, config.get("text_config") or {}):
        name = source.get("dtype") or source.get("torch_dtype")
        if isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
    return None


def default_dtype(device: torch.device, stored: torch.dtype | None, *, native_bf16: bool | None = None) -> torch.dtype:
    """What ``dtype="auto"`` resolves to (see the module): ``native_bf16`` defaults to :func:`cpu_has_native_bf16`."""
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and stored == torch.bfloat16:
        if native_bf16 is None:
            native_bf16 = cpu_has_native_bf16()
        return torch.bfloat16 if native_bf16 else torch.float32
    return torch.float32


def check_quantization(name: str | None, device: torch.device | None = None) -> None:
    """Refuse an unknown quantization, one this device cannot run, or one whose package is missing, with what to do.

    Raises:
        ValueError: Unknown name, or not available on ``device``.
        ImportError: The package it needs is not installed.
    """
    if name is None:
        return
    if name not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(map(repr, QUANTIZATIONS))} or None, got {name!r}.")
    package, devices = QUANTIZATIONS[name]
    if device is not None and device.type not in devices:
        hint = " On a CPU use quantization='int8' (or dtype='bfloat16')." if device.type == "cpu" else ""
        where = " and ".join(devices).upper()
        raise ValueError(f"quantization={name!r} runs on {where} only, not {device.type}.{hint}")
    if importlib.util.find_spec(package) is None:
        extra = "quantization" if package == "torchao" else "nf4"
        raise ImportError(
            f"quantization={name!r} needs {package}: pip install 'lco-embedding[{extra}]' (or pip install {package})."
        )


def quantization_config(name: str, device: torch.device, compute_dtype: torch.dtype) -> Any:
    """The transformers quantization config that quantizes the language model's linear layers as they load.

    Raises:
        ValueError, ImportError: As :func:`check_quantization`.
    """
    check_quantization(name, device)
    if name == "nf4":
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            bnb_4bit_use_double_quant=False,
            llm_int8_skip_modules=list(KEPT_BY_4BIT),
        )
    from torchao.quantization import Int4WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig
    from transformers import TorchAoConfig

    configs = {
        "int8": Int8WeightOnlyConfig,
        "int8-dynamic": Int8DynamicActivationInt8WeightConfig,
        "int4": lambda: Int4WeightOnlyConfig(group_size=128, int4_packing_format="tile_packed_to_4d"),
    }
    kept = list(KEPT_BY_4BIT) if name == "int4" else []
    return TorchAoConfig(configs[name](), modules_to_not_convert=kept)
