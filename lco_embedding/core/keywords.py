"""Keyword arguments checked as sentence-transformers 6 checks them: an unknown one is a ``ValueError`` naming the
closest valid name, so a typo never passes silently."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["check_unknown_keywords"]


def check_unknown_keywords(method: str, given: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise ``ValueError`` for keywords ``method`` does not take, naming the closest valid one (as
    sentence-transformers 6 raises for keywords a model does not use), so a typo never passes silently.

    Example:
        >>> check_unknown_keywords("encode", {"normalise_embeddings": False}, ["normalize_embeddings"])
        Traceback (most recent call last):
        ...
        ValueError: encode() got an unknown keyword argument 'normalise_embeddings' (did you mean \
'normalize_embeddings'?). Valid keyword arguments: normalize_embeddings.
    """
    if not given:
        return
    valid = sorted(valid)
    parts = []
    for name in sorted(given):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "an unknown keyword argument" if len(parts) == 1 else "unknown keyword arguments"
    raise ValueError(f"{method}() got {noun} {', '.join(parts)}. Valid keyword arguments: {', '.join(valid)}.")
