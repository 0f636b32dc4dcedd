"""Haystack: ``@component`` embedders backed by :class:`~lco_embedding.LCOEmbedder`.

* :class:`LCOTextEmbedder` — a query string -> ``embedding`` (the embedder's ``"query"`` prompt, if it has one).
* :class:`LCODocumentEmbedder` — ``Document.content`` -> ``Document.embedding`` (``"document"`` prompt).
* :class:`LCODocumentImageEmbedder` — the image at ``Document.meta["file_path"]`` -> ``Document.embedding``.
* :class:`LCORanker` — documents reranked for a query by an :class:`~lco_embedding.LCOReranker`, ``Document.score``
  their relevance.

They serialise (``to_dict`` / ``from_dict``, so ``Pipeline.dumps()`` / ``loads()`` work; importing this module adds
it to Haystack 3's deserialisation allowlist) and load the model in ``warm_up``, which ``Pipeline.run`` calls.
Several components given the same settings share one loaded model.

Example:
    >>> from haystack import Pipeline
    >>> pipe = Pipeline()
    >>> _ = pipe.add_component("embed", LCOTextEmbedder(tiny_checkpoint))  # or "LCO-Embedding/LCO-Embedding-Omni-3B"
    >>> len(pipe.run({"embed": {"text": "a cat"}})["embed"]["embedding"])
    64
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from lco_embedding.core.require import require

haystack = require("haystack", "haystack")
component, Document = haystack.component, haystack.Document
default_to_dict, default_from_dict = haystack.default_to_dict, haystack.default_from_dict

__all__ = ["LCOTextEmbedder", "LCODocumentEmbedder", "LCODocumentImageEmbedder", "LCORanker"]

_LOADED: dict[str, Any] = {}

# Haystack 3 refuses to deserialise classes from modules outside its allowlist. These components only load a
# checkpoint by name (safetensors, never remote code), so importing this module puts it on the list.
_allow = getattr(require("haystack.core.serialization", "haystack"), "allow_deserialization_module", None)
if _allow is not None:
    _allow(__name__)


class _LCOComponent:
    """Settings, lazy loading and serialisation shared by the three components."""

    def __init__(
        self,
        model: str = "LCO-Embedding/LCO-Embedding-Omni-3B",
        *,
        prompts: dict[str, str] | None = None,
        embedder_kwargs: dict[str, Any] | None = None,
        encode_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.prompts = dict(prompts or {})
        self.embedder_kwargs = dict(embedder_kwargs or {})
        self.encode_kwargs = dict(encode_kwargs or {})
        self._embedder: Any = None

    def warm_up(self) -> None:
        """Load the model (once per process for the same settings)."""
        if self._embedder is not None:
            return
        from lco_embedding.embedder import LCOEmbedder

        key = json.dumps([self.model, self.prompts, self.embedder_kwargs], sort_keys=True, default=str)
        if key not in _LOADED:
            _LOADED[key] = LCOEmbedder(self.model, prompts=self.prompts, **self.embedder_kwargs)
        self._embedder = _LOADED[key]

    @property
    def embedder(self) -> Any:
        """The loaded :class:`~lco_embedding.LCOEmbedder` (after ``warm_up``)."""
        if self._embedder is None:
            raise RuntimeError(f"{type(self).__name__} is not warmed up: call warm_up() first (Pipeline.run does).")
        return self._embedder

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component's settings."""
        return default_to_dict(
            self,
            model=self.model,
            prompts=self.prompts,
            embedder_kwargs=self.embedder_kwargs,
            encode_kwargs=self.encode_kwargs,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild the component from ``to_dict``'s output."""
        return default_from_dict(cls, data)


@component
class LCOTextEmbedder(_LCOComponent):
    """Embed a query string (with the ``"query"`` prompt when ``prompts`` has one)."""

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        """Embed ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"LCOTextEmbedder takes one string; use LCODocumentEmbedder for documents, got {text!r}.")
        return {"embedding": self.embedder.encode_query([text], modality="text", **self.encode_kwargs)[0].tolist()}


@component
class LCODocumentEmbedder(_LCOComponent):
    """Embed ``Document.content`` as text (with the ``"document"`` prompt when ``prompts`` has one)."""

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Return copies of ``documents`` with their ``embedding`` set."""
        for position, document in enumerate(documents):
            if not document.content:
                raise ValueError(f"Document {position} (id {document.id}) has no text content to embed.")
        texts = [document.content for document in documents]
        embeddings = self.embedder.encode_document(texts, modality="text", **self.encode_kwargs)
        return {"documents": [replace(d, embedding=e.tolist()) for d, e in zip(documents, embeddings, strict=True)]}


@component
class LCODocumentImageEmbedder(_LCOComponent):
    """Embed the image whose path is in ``Document.meta[file_path_meta_field]`` (default ``"file_path"``).

    Args:
        file_path_meta_field: The meta key holding the image's path or URL.
        root_path: Folder that relative paths are resolved against.
    """

    def __init__(self, *args: Any, file_path_meta_field: str = "file_path", root_path: str | None = None, **kwargs):
        # @component rebuilds the class, so the zero-argument super() does not apply here.
        _LCOComponent.__init__(self, *args, **kwargs)
        self.file_path_meta_field = file_path_meta_field
        self.root_path = root_path

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component's settings."""
        data = _LCOComponent.to_dict(self)
        data["init_parameters"].update(file_path_meta_field=self.file_path_meta_field, root_path=self.root_path)
        return data

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Return copies of ``documents`` with the embedding of their image."""
        items = []
        for position, document in enumerate(documents):
            source = document.meta.get(self.file_path_meta_field)
            if not source:
                raise ValueError(
                    f"Document {position} (id {document.id}) has no meta[{self.file_path_meta_field!r}]: "
                    "LCODocumentImageEmbedder embeds the image found there."
                )
            if self.root_path and "://" not in str(source):
                source = str(Path(self.root_path) / str(source))
            items.append({"image": str(source)})
        embeddings = self.embedder.encode_document(items, **self.encode_kwargs)
        return {"documents": [replace(d, embedding=e.tolist()) for d, e in zip(documents, embeddings, strict=True)]}


@component
class LCORanker:
    """Rerank documents for a query by an :class:`~lco_embedding.LCOReranker` (``Document.content`` as text), best
    first, ``Document.score`` their relevance; the model loads in ``warm_up``.

    Args:
        model: A checkpoint (generative) or CrossEncoder name.
        top_k: Documents kept (None: all); ``run`` may override it.
        reranker_kwargs: ``LCOReranker``'s constructor arguments.
    """

    def __init__(self, model: str, *, top_k: int | None = 10, reranker_kwargs: dict[str, Any] | None = None) -> None:
        self.model, self.top_k, self.reranker_kwargs = model, top_k, dict(reranker_kwargs or {})
        self._reranker: Any = None

    def warm_up(self) -> None:
        """Load the model (once per process for the same settings)."""
        if self._reranker is None:
            from lco_embedding.integrations import resolve_reranker

            key = json.dumps(["rerank", self.model, self.reranker_kwargs], sort_keys=True, default=str)
            if key not in _LOADED:
                _LOADED[key] = resolve_reranker(self.model, self.reranker_kwargs)
            self._reranker = _LOADED[key]

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, Any]:
        """The best ``top_k`` of ``documents`` for ``query``, best first, as copies with ``score`` set."""
        from lco_embedding.integrations import rank_texts

        if self._reranker is None:
            raise RuntimeError("LCORanker is not warmed up: call warm_up() first (Pipeline.run does).")
        for position, document in enumerate(documents):
            if not document.content:
                raise ValueError(f"Document {position} (id {document.id}) has no text content to rank.")
        ranked = rank_texts(self._reranker, query, [d.content for d in documents], top_k or self.top_k)
        return {"documents": [replace(documents[i], score=relevance) for i, relevance in ranked]}

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component's settings."""
        return default_to_dict(self, model=self.model, top_k=self.top_k, reranker_kwargs=self.reranker_kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild the component from ``to_dict``'s output."""
        return default_from_dict(cls, data)
