"""LangChain: :class:`LCOEmbeddings`, a ``langchain_core.embeddings.Embeddings``, and :class:`LCORerank`, a
document compressor that reranks retrieved documents with an :class:`~lco_embedding.LCOReranker`.

Documents are embedded with the embedder's ``"document"`` prompt and queries with its ``"query"`` prompt when it
has them (``LCOEmbedder(prompts={...})``); strings are always treated as text (a document that looks like a file
name stays text). ``embed_images`` embeds image paths or URLs into the same space.

Example:
    >>> from langchain_core.vectorstores import InMemoryVectorStore
    >>> store = InMemoryVectorStore(LCOEmbeddings(tiny_checkpoint))  # or "LCO-Embedding/LCO-Embedding-Omni-3B"
    >>> _ = store.add_texts(["a cat", "a dog"])
    >>> len(store.similarity_search("kitten", k=1))
    1
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from lco_embedding.core.require import require
from lco_embedding.integrations import rank_texts, resolve_embedder, resolve_reranker

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker

Embeddings = require("langchain_core.embeddings", "langchain").Embeddings
BaseDocumentCompressor = require("langchain_core.documents", "langchain").BaseDocumentCompressor
_ConfigDict = require("pydantic", "langchain").ConfigDict

__all__ = ["LCOEmbeddings", "LCORerank"]


class LCOEmbeddings(Embeddings):
    """LangChain embeddings backed by :class:`~lco_embedding.LCOEmbedder`.

    Args:
        model: An ``LCOEmbedder``, or a hub id / folder to load one from.
        encode_kwargs: Extra keyword arguments for every ``encode`` call (e.g. ``{"batch_size": 16}``).
        **embedder_kwargs: Constructor arguments when ``model`` is a name or path.
    """

    def __init__(
        self, model: LCOEmbedder | str, encode_kwargs: dict[str, Any] | None = None, **embedder_kwargs: Any
    ) -> None:
        self.model = resolve_embedder(model, embedder_kwargs)
        self.encode_kwargs = dict(encode_kwargs or {})

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents (text)."""
        return self.model.encode_document(list(texts), modality="text", **self.encode_kwargs).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (text)."""
        return self.model.encode_query([text], modality="text", **self.encode_kwargs)[0].tolist()

    def embed_images(self, uris: list[str]) -> list[list[float]]:
        """Embed images given as paths, URLs or data URIs, as documents."""
        return self.model.encode_document([{"image": uri} for uri in uris], **self.encode_kwargs).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` in a worker thread."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """``embed_query`` in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)


class LCORerank(BaseDocumentCompressor):
    """A LangChain document compressor: the ``top_n`` documents most relevant to the query by an
    :class:`~lco_embedding.LCOReranker` (use it in a ``ContextualCompressionRetriever``), each with its
    ``relevance_score`` in ``metadata``.

    Args:
        model: An ``LCOReranker``, or a checkpoint (generative) or CrossEncoder name to load one from.
        top_n: Documents kept (None: all, reordered).
        **reranker_kwargs: Constructor arguments when ``model`` is a name or path.
    """

    model_config = _ConfigDict(arbitrary_types_allowed=True)
    reranker: Any = None
    top_n: int | None = 3

    def __init__(self, model: LCOReranker | str, top_n: int | None = 3, **reranker_kwargs: Any) -> None:
        super().__init__(reranker=resolve_reranker(model, reranker_kwargs), top_n=top_n)

    def compress_documents(self, documents: Any, query: str, callbacks: Any = None) -> Any:
        """The best ``top_n`` of ``documents`` for ``query``, best first, with ``metadata["relevance_score"]``."""
        listed = list(documents)
        ranked = rank_texts(self.reranker, query, [document.page_content for document in listed], self.top_n)
        kept = []
        for position, relevance in ranked:
            document = listed[position].model_copy(deep=True)
            document.metadata["relevance_score"] = relevance
            kept.append(document)
        return kept
