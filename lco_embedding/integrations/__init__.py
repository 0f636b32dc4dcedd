"""Integrations with other frameworks, one module each, imported only when asked for.

* :mod:`lco_embedding.integrations.sentence_transformers` — ``LCOModule``, behind
  ``LCOEmbedder.to_sentence_transformer()`` and ``save_pretrained()``
* :mod:`lco_embedding.integrations.mteb` — ``LCOMtebEncoder`` (``pip install 'lco-embedding[mteb]'``)
* :mod:`lco_embedding.integrations.langchain` — ``LCOEmbeddings``, ``LCORerank`` (a document compressor)
  (``pip install 'lco-embedding[langchain]'``)
* :mod:`lco_embedding.integrations.llama_index` — ``LCOEmbedding``, ``LCORerank`` (a node postprocessor)
  (``pip install 'lco-embedding[llama-index]'``)
* :mod:`lco_embedding.integrations.haystack` — ``LCOTextEmbedder``, ``LCODocumentEmbedder``,
  ``LCODocumentImageEmbedder``, ``LCORanker`` (``pip install 'lco-embedding[haystack]'``)
* :mod:`lco_embedding.integrations.lancedb` — the ``"lco-embedding"`` embedding function in LanceDB's registry
  (``pip install 'lco-embedding[lancedb]'``)

``import lco_embedding`` imports none of these frameworks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker

__all__ = ["rank_texts", "resolve_embedder", "resolve_reranker"]


def resolve_embedder(model: LCOEmbedder | str, embedder_kwargs: dict[str, Any] | None = None) -> LCOEmbedder:
    """An :class:`~lco_embedding.LCOEmbedder`: ``model`` itself, or one loaded from the name or path ``model``."""
    from lco_embedding.embedder import LCOEmbedder

    if isinstance(model, LCOEmbedder):
        if embedder_kwargs:
            raise ValueError("embedder_kwargs apply only when the model is given by name or path.")
        return model
    return LCOEmbedder(str(model), **(embedder_kwargs or {}))


def resolve_reranker(model: LCOReranker | str, reranker_kwargs: dict[str, Any] | None = None) -> LCOReranker:
    """An :class:`~lco_embedding.LCOReranker`: ``model`` itself, or one loaded from the name or path ``model``."""
    from lco_embedding.rerank import LCOReranker

    if isinstance(model, LCOReranker):
        if reranker_kwargs:
            raise ValueError("reranker_kwargs apply only when the model is given by name or path.")
        return model
    return LCOReranker(str(model), **(reranker_kwargs or {}))


def rank_texts(reranker: LCOReranker, query: str, texts: list[str], top_n: int | None) -> list[tuple[int, float]]:
    """``(position, relevance)`` of the ``top_n`` best of ``texts`` for ``query`` (all when None), best first: the
    frameworks' documents are texts (a text that looks like a file name stays text); relevance is
    :meth:`LCOReranker.relevance` of the score, in [0, 1] for the generative backend."""
    if not texts:
        return []
    ranked = reranker.rank({"text": query}, [{"text": text} for text in texts], top_k=top_n)
    return [(hit["corpus_id"], reranker.relevance(hit["score"])) for hit in ranked]
