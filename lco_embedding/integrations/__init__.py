"""Integrations with other frameworks, one module each, imported only when asked for.

* :mod:`lco_embedding.integrations.sentence_transformers` — ``LCOModule``, behind
  ``LCOEmbedder.to_sentence_transformer()`` and ``save_pretrained()``
* :mod:`lco_embedding.integrations.mteb` — ``LCOMtebEncoder`` (``pip install 'lco-embedding[mteb]'``)
* :mod:`lco_embedding.integrations.langchain` — ``LCOEmbeddings`` (``pip install 'lco-embedding[langchain]'``)
* :mod:`lco_embedding.integrations.llama_index` — ``LCOEmbedding`` (``pip install 'lco-embedding[llama-index]'``)
* :mod:`lco_embedding.integrations.haystack` — ``LCOTextEmbedder``, ``LCODocumentEmbedder``,
  ``LCODocumentImageEmbedder`` (``pip install 'lco-embedding[haystack]'``)
* :mod:`lco_embedding.integrations.lancedb` — the ``"lco-embedding"`` embedding function in LanceDB's registry
  (``pip install 'lco-embedding[lancedb]'``)

``import lco_embedding`` imports none of these frameworks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["resolve_embedder"]


def resolve_embedder(model: LCOEmbedder | str, embedder_kwargs: dict[str, Any] | None = None) -> LCOEmbedder:
    """An :class:`~lco_embedding.LCOEmbedder`: ``model`` itself, or one loaded from the name or path ``model``."""
    from lco_embedding.embedder import LCOEmbedder

    if isinstance(model, LCOEmbedder):
        if embedder_kwargs:
            raise ValueError("embedder_kwargs apply only when the model is given by name or path.")
        return model
    return LCOEmbedder(str(model), **(embedder_kwargs or {}))
