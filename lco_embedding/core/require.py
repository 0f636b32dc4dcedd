"""Optional dependencies: import one, or say which pip extra provides it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ImportError that names the pip extra providing it.

    Example:
        >>> require("json", "core").dumps([1])
        '[1]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is not installed; install it with: pip install 'lco-embedding[{extra}]'") from e
