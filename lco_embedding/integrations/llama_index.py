"""LlamaIndex: :class:`LCOEmbedding`, a ``MultiModalEmbedding`` for text and images (sync and async), and
:class:`LCORerank`, a node postprocessor that reranks retrieved nodes with an :class:`~lco_embedding.LCOReranker`.

Text is embedded with the embedder's ``"document"`` prompt and queries with its ``"query"`` prompt when it has
them (``LCOEmbedder(prompts={...})``) — unlike LlamaIndex's stock ``HuggingFaceEmbedding``, whose saved query
prompts are silently dropped. Images may be paths, URLs or ``BytesIO`` objects.

Example:
    >>> from llama_index.core import Document, VectorStoreIndex
    >>> embed = LCOEmbedding(tiny_checkpoint)  # or "LCO-Embedding/LCO-Embedding-Omni-3B"
    >>> index = VectorStoreIndex.from_documents([Document(text="a cat")], embed_model=embed)
    >>> len(embed.get_query_embedding("kitten"))
    64
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

from lco_embedding.core.require import require
from lco_embedding.integrations import rank_texts, resolve_embedder, resolve_reranker

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker

_core = require("llama_index.core.embeddings", "llama-index")
_bridge = require("llama_index.core.bridge.pydantic", "llama-index")
MultiModalEmbedding = _core.MultiModalEmbedding
BaseNodePostprocessor = require("llama_index.core.postprocessor.types", "llama-index").BaseNodePostprocessor

__all__ = ["LCOEmbedding", "LCORerank"]


class LCOEmbedding(MultiModalEmbedding):
    """LlamaIndex embeddings backed by :class:`~lco_embedding.LCOEmbedder`.

    Args:
        model: An ``LCOEmbedder``, or a hub id / folder to load one from.
        embed_batch_size: Items per ``encode`` call made by LlamaIndex (default 32).
        encode_kwargs: Extra keyword arguments for every ``encode`` call.
        embedder_kwargs: Constructor arguments when ``model`` is a name or path.
    """

    encode_kwargs: dict[str, Any] = _bridge.Field(default_factory=dict, description="Extra encode arguments.")
    _model: Any = _bridge.PrivateAttr()

    def __init__(
        self,
        model: LCOEmbedder | str,
        embed_batch_size: int = 32,
        encode_kwargs: dict[str, Any] | None = None,
        embedder_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        embedder = resolve_embedder(model, embedder_kwargs)
        super().__init__(
            model_name=str(embedder.model_name_or_path),
            embed_batch_size=embed_batch_size,
            encode_kwargs=dict(encode_kwargs or {}),
            **kwargs,
        )
        self._model = embedder

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's name of this class."""
        return "LCOEmbedding"

    @property
    def embedder(self) -> Any:
        """The underlying :class:`~lco_embedding.LCOEmbedder`."""
        return self._model

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._model.encode_query([query], modality="text", **self.encode_kwargs)[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode_document(list(texts), modality="text", **self.encode_kwargs).tolist()

    def _get_image_embedding(self, img_file_path: Any) -> list[float]:
        return self._get_image_embeddings([img_file_path])[0]

    def _get_image_embeddings(self, img_file_paths: list[Any]) -> list[list[float]]:
        items = [{"image": _image_source(image)} for image in img_file_paths]
        return self._model.encode_document(items, **self.encode_kwargs).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    async def _aget_image_embedding(self, img_file_path: Any) -> list[float]:
        return await asyncio.to_thread(self._get_image_embedding, img_file_path)

    async def _aget_image_embeddings(self, img_file_paths: list[Any]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_image_embeddings, img_file_paths)


def _image_source(image: Any) -> Any:
    """LlamaIndex's ``ImageType`` (a path or a ``BytesIO``) as an ``encode`` image source."""
    if isinstance(image, io.BytesIO):
        return image.getvalue()
    return image


class LCORerank(BaseNodePostprocessor):
    """A LlamaIndex node postprocessor: the ``top_n`` nodes most relevant to the query by an
    :class:`~lco_embedding.LCOReranker`, best first, each node's ``score`` its relevance (``node_postprocessors=
    [LCORerank(...)]`` on a query engine).

    Args:
        model: An ``LCOReranker``, or a checkpoint (generative) or CrossEncoder name to load one from.
        top_n: Nodes kept (None: all, reordered).
        reranker_kwargs: Constructor arguments when ``model`` is a name or path.
    """

    top_n: int | None = _bridge.Field(default=3, description="Nodes kept (None: all).")
    _reranker: Any = _bridge.PrivateAttr()

    def __init__(
        self, model: LCOReranker | str, top_n: int | None = 3, reranker_kwargs: dict[str, Any] | None = None
    ) -> None:
        super().__init__(top_n=top_n)
        self._reranker = resolve_reranker(model, reranker_kwargs)

    @classmethod
    def class_name(cls) -> str:
        """LlamaIndex's name of this class."""
        return "LCORerank"

    def _postprocess_nodes(self, nodes: list[Any], query_bundle: Any = None) -> list[Any]:
        if query_bundle is None:
            raise ValueError("LCORerank needs the query: give query_bundle (a query engine does).")
        texts = [node.node.get_content() for node in nodes]
        ranked = rank_texts(self._reranker, query_bundle.query_str, texts, self.top_n)
        return [type(nodes[i])(node=nodes[i].node, score=relevance) for i, relevance in ranked]
