"""The sentence-transformers surface of :class:`~lco_embedding.LCOEmbedder`: the attributes and methods that
``SentenceTransformer`` users reach for, with the same names and behaviour.

``max_seq_length``, ``tokenizer``, ``similarity_fn_name`` / ``similarity`` / ``similarity_pairwise``,
``get_embedding_dimension`` and the deprecated ``get_sentence_embedding_dimension``, ``encode_query`` /
``encode_document``, ``.to()`` / ``.half()`` / ``.bfloat16()`` / ``.float()``, and the check that ``encode`` got no
keyword it does not know (sentence-transformers 6 raises ``ValueError`` for those; so do we, naming the closest
valid one). ``tests/test_sentence_transformers.py`` checks each against ``SentenceTransformer`` itself.

Does not hold state of its own: everything lives on the embedder (``max_length``, ``processor``, ``model``).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

if TYPE_CHECKING:
    from lco_embedding.types import SingleInput

__all__ = ["SentenceTransformerSurface", "check_unknown_keywords"]

SimilarityName = Literal["cosine", "dot", "euclidean", "manhattan"]
SIMILARITY_FN_NAMES: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")


def check_unknown_keywords(method: str, given: dict[str, Any], valid: Iterable[str]) -> None:
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


class SentenceTransformerSurface:
    """Mixed into :class:`~lco_embedding.LCOEmbedder`; expects ``model``, ``processor``, ``max_length``,
    ``truncate_dim``, ``prompts``, ``_dimension`` and ``encode``."""

    model: torch.nn.Module
    processor: Any
    max_length: int | None
    truncate_dim: int | None
    prompts: dict[str, str]
    _dimension: int
    _similarity_fn_name: SimilarityName = "cosine"

    def encode(self, inputs: Any, **kwargs: Any) -> Any:  # pragma: no cover - provided by LCOEmbedder
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- attributes
    @property
    def max_seq_length(self) -> int | None:
        """User text is cut to this many tokens before the prompt is built (``max_length``; None: not cut). As in
        sentence-transformers, settable: ``model.max_seq_length = 512``."""
        return self.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"max_seq_length must be a positive integer or None, got {value!r}.")
        self.max_length = value

    @property
    def tokenizer(self) -> Any:
        """The checkpoint's tokenizer (``processor.tokenizer``)."""
        return self.processor.tokenizer

    @property
    def similarity_fn_name(self) -> SimilarityName:
        """The similarity :meth:`similarity` computes: ``"cosine"`` (the model's; default), ``"dot"``,
        ``"euclidean"`` or ``"manhattan"`` (negative distances), as in sentence-transformers."""
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        name = getattr(value, "value", value)  # sentence-transformers' SimilarityFunction enum, or its name
        if name not in SIMILARITY_FN_NAMES:
            raise ValueError(f"similarity_fn_name must be one of {', '.join(SIMILARITY_FN_NAMES)}, got {value!r}.")
        self._similarity_fn_name = name

    def similarity(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Similarity (``similarity_fn_name``, cosine by default) of every row of ``a`` with every row of ``b``:
        ``[len(a), len(b)]``."""
        from sentence_transformers.util import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self._similarity_fn_name)(a, b)

    def similarity_pairwise(self, a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Similarity (``similarity_fn_name``) of ``a[i]`` with ``b[i]``: ``[len(a)]``."""
        from sentence_transformers.util import SimilarityFunction

        return SimilarityFunction.to_similarity_pairwise_fn(self._similarity_fn_name)(a, b)

    def get_embedding_dimension(self) -> int:
        """The size of the embeddings ``encode`` returns (``truncate_dim`` if set)."""
        return min(self.truncate_dim, self._dimension) if self.truncate_dim else self._dimension

    def get_sentence_embedding_dimension(self) -> int:
        """Deprecated (as in sentence-transformers 6): use :meth:`get_embedding_dimension`."""
        warnings.warn(
            "The `get_sentence_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
            FutureWarning,
            stacklevel=2,
        )
        return self.get_embedding_dimension()

    # ---------------------------------------------------------------------------------------- device, dtype
    def to(self, *args: Any, **kwargs: Any) -> SentenceTransformerSurface:
        """Move the model to a device and/or dtype, as ``torch.nn.Module.to``: ``model.to("cuda")``,
        ``model.to(torch.bfloat16)``. Returns the embedder."""
        self.model.to(*args, **kwargs)
        return self

    def half(self) -> SentenceTransformerSurface:
        """Cast the weights to float16 (prone to overflow on CPU: NaN embeddings are then refused). Returns self."""
        return self.to(torch.float16)

    def bfloat16(self) -> SentenceTransformerSurface:
        """Cast the weights to bfloat16. Returns the embedder."""
        return self.to(torch.bfloat16)

    def float(self) -> SentenceTransformerSurface:
        """Cast the weights to float32. Returns the embedder."""
        return self.to(torch.float32)

    # ---------------------------------------------------------------------------------------------- encode
    def encode_query(self, inputs: SingleInput | Iterable[SingleInput], **kwargs: Any) -> Any:
        """``encode`` with the ``"query"`` prompt when ``prompts`` has one and no prompt is given."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None and "query" in self.prompts:
            kwargs["prompt_name"] = "query"
        return self.encode(inputs, **kwargs)

    def encode_document(self, inputs: SingleInput | Iterable[SingleInput], **kwargs: Any) -> Any:
        """``encode`` with the ``"document"`` prompt when ``prompts`` has one and no prompt is given."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None and "document" in self.prompts:
            kwargs["prompt_name"] = "document"
        return self.encode(inputs, **kwargs)
