"""The software and hardware an embedding was made with: versions and devices, for manifests and ``lco-embed info``."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

__all__ = ["devices", "versions"]

_PACKAGES = ("lco-embedding", "torch", "torchvision", "transformers", "sentence-transformers", "numpy", "pyarrow")


def versions() -> dict[str, str | None]:
    """Versions of Python and of the packages that decide the embeddings (None when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def devices() -> dict[str, Any]:
    """The accelerators torch sees: CUDA devices by name, and whether MPS is available."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cuda = [torch.cuda.get_device_name(i) for i in range(count)]
    mps = getattr(torch.backends, "mps", None)
    return {
        "cuda": cuda,
        "cuda_version": torch.version.cuda,
        "mps": bool(mps is not None and mps.is_available()),
        "cpu_threads": torch.get_num_threads(),
    }
