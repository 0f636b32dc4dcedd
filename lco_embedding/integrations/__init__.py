"""Integrations with other frameworks, one module each, imported only when asked for.

* :mod:`lco_embedding.integrations.sentence_transformers` — ``LCOModule``, behind
  ``LCOEmbedder.to_sentence_transformer()`` and ``save_pretrained()``
* :mod:`lco_embedding.integrations.mteb` — ``LCOMtebEncoder`` (``pip install 'lco-embedding[mteb]'``)
* :mod:`lco_embedding.integrations.langchain` — ``LCOEmbeddings`` (``pip install 'lco-embedding[langchain]'``)
* :mod:`lco_embedding.integrations.llama_index` — ``LCOEmbedding`` (``pip install 'lco-embedding[llama-index]'``)
* :mod:`lco_embedding.integrations.haystack` — ``LCOTextEmbedder``, ``LCODocumentEmbedder``,
  ``LCODocumentImageEmbedder`` (``pip install 'lco-embedding[haystack]'``)

``import lco_embedding`` imports none of these frameworks.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["require", "resolve_embedder"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ImportError that names the pip extra providing it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{module} is not installed; install it with: pip install 'lco-embedding[{extra}]'") from e


def resolve_embedder(model: Any, embedder_kwargs: dict[str, Any] | None = None) -> Any:
    """An :class:`~lco_embedding.LCOEmbedder`: ``model`` itself, or one loaded from the name or path ``model``."""
    from lco_embedding import LCOEmbedder  # the package's name, resolved when first used

    if isinstance(model, LCOEmbedder):
        if embedder_kwargs:
            raise ValueError("embedder_kwargs apply only when the model is given by name or path.")
        return model
    return LCOEmbedder(str(model), **(embedder_kwargs or {}))
