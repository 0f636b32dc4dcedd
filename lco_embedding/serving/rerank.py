"""The rerank routes: ``POST /v1/rerank`` (Jina's and vLLM's shape, which Cohere's v1 client also reads) and
``POST /v2/rerank`` (Cohere's v2), answered by the server's :class:`~lco_embedding.LCOReranker`.

Both take a ``query`` and ``documents``: strings, or items and content-part lists as ``/v1/embeddings`` takes them
(media as data URIs, or URLs where the server fetches them); ``top_n`` keeps the best; ``return_documents`` echoes
them (``{"text": ...}`` for a string, the item as sent otherwise; default true on ``/v1``, false on ``/v2``). Each
result's ``relevance_score`` is :meth:`LCOReranker.relevance` of its score: for the generative backend
``sigmoid(logit(yes) - logit(no))``, the model's probability of "yes", in [0, 1] as Cohere's scores are.

A generative reranker's pairs go through the same admission (``max_queue_items``), limits, batching and errors as
the embedding routes — they are conversation items for a :class:`~lco_embedding.serving.batcher.DynamicBatcher` (the
embedder's own when the reranker shares its weights). A bad document is a 400 naming it (``documents[2]: ...``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.serving.batcher import Embedded
from lco_embedding.serving.inputs import RequestItemError, check_request_size, content_item, parse_input
from lco_embedding.serving.routes import Call, EmbedRoute, cohere_error, openai_error
from lco_embedding.serving.wire import RequestError, dumps, load_object

if TYPE_CHECKING:
    from lco_embedding.rerank import LCOReranker

__all__ = ["CohereRerank", "JinaRerank", "RERANK_SCHEMA", "RerankRequest", "parse_rerank_request"]

RERANK_SCHEMA = {
    "type": "object",
    "required": ["model", "query", "documents"],
    "properties": {
        "model": {"type": "string"},
        "query": {"oneOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}]},
        "documents": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}]}},
        "top_n": {"type": "integer", "minimum": 1},
        "return_documents": {"type": "boolean"},
    },
}


@dataclass(frozen=True)
class RerankRequest:
    """A rerank request, its fields checked (the query and documents are parsed later, as items)."""

    model: str
    query: Any
    documents: list[Any]
    top_n: int | None
    return_documents: bool


def parse_rerank_request(body: bytes, return_documents: bool) -> RerankRequest:
    """The request in ``body`` (unknown fields are ignored); ``return_documents`` is the route's default.

    Raises:
        RequestError: Not a JSON object, a required field missing, or a field of the wrong type or range.
    """
    document = load_object(body)
    for name in ("model", "query", "documents"):
        if name not in document:
            raise RequestError(f"{name} is required.", name)
    model, documents, top_n = document["model"], document["documents"], document.get("top_n")
    if not isinstance(model, str):
        raise RequestError(f"model must be a string, got {type(model).__name__}.", "model")
    if not isinstance(documents, list) or not documents:
        raise RequestError("documents must be a non-empty list of strings or items.", "documents")
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise RequestError(f"top_n must be a positive integer, got {top_n!r}.", "top_n")
    given = document.get("return_documents", return_documents)
    if not isinstance(given, bool):
        raise RequestError(f"return_documents must be true or false, got {given!r}.", "return_documents")
    return RerankRequest(model, document["query"], documents, top_n, given)


class RerankRoute(EmbedRoute):
    """What both rerank routes share: the request's pairs, scored by the server's reranker (see the module)."""

    batcher_key = "rerank_batcher"
    returns_documents = True

    def __init__(self, reranker: LCOReranker, *args: Any) -> None:
        super().__init__(*args)
        self.reranker = reranker

    def parse(self, body: bytes) -> Call:
        request = parse_rerank_request(body, self.returns_documents)
        self._check_model(request.model)
        check_request_size(request.documents, self.settings, "documents")
        query = _entry(request.query, None, self.settings, "query")
        documents = [_entry(entry, index, self.settings, "documents") for index, entry in enumerate(request.documents)]
        return Call(documents, None, "documents", request, extra={"query": query})

    async def _prepared(self, call: Call) -> list[Any]:
        """The pairs as the reranker's chats (texts cut to ``max_length``: tokenizing, in a worker thread)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._chats, call)

    def _chats(self, call: Call) -> list[Any]:
        cut = self.state[self.batcher_key].featurizer.truncate
        query, chats = call.extra["query"], []
        for index, document in enumerate(call.items):
            try:
                chats.append(self.reranker.prompt.conversation(query, document, cut))
            except LCOInputError as e:
                where = "query" if e.reason.startswith("the query") else None
                raise RequestItemError(e.reason, None if where else index, where or "documents") from None
        return chats

    def ranked(self, call: Call, embedded: Embedded) -> list[dict[str, Any]]:
        """The results, best first: ``index``, ``relevance_score`` and (when asked) ``document``."""
        request: RerankRequest = call.request
        scores = [self.reranker.scorer.score(vector) for vector in embedded.vectors]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: request.top_n]
        results = []
        for index in order:
            result: dict[str, Any] = {"index": index, "relevance_score": self.reranker.relevance(scores[index])}
            if request.return_documents:
                sent = request.documents[index]
                result["document"] = {"text": sent} if isinstance(sent, str) else sent
            results.append(result)
        return results


class JinaRerank(RerankRoute):
    """``POST /v1/rerank``: Jina's and vLLM's rerank request and answer (``results``, ``usage``)."""

    path = "/v1/rerank"

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None, **kw: Any) -> Any:
        kind = {429: "rate_limit_error"}.get(status, "invalid_request_error")
        return openai_error(status, message, kind, param=param, code=code, headers=kw.get("headers"))

    def render(self, call: Call, embedded: Embedded) -> bytes:
        return dumps(
            {
                "id": f"rerank-{uuid.uuid4().hex}",
                "model": self.settings.served_model_name,
                "usage": {"total_tokens": embedded.tokens},
                "results": self.ranked(call, embedded),
            }
        )


class CohereRerank(RerankRoute):
    """``POST /v2/rerank``: Cohere's v2 rerank request and answer (``results``, ``meta``)."""

    path = "/v2/rerank"
    returns_documents = False

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None, **kw: Any) -> Any:
        return cohere_error(status, message if param is None or message.startswith(param) else f"{param}: {message}",
                            headers=kw.get("headers"))  # fmt: skip

    def render(self, call: Call, embedded: Embedded) -> bytes:
        meta = {"api_version": {"version": "2"}, "billed_units": {"search_units": 1},
                "tokens": {"input_tokens": embedded.tokens}}  # fmt: skip
        return dumps({"id": str(uuid.uuid4()), "results": self.ranked(call, embedded), "meta": meta})


def _entry(value: Any, index: int | None, settings: Any, field: str) -> Any:
    """A query or document as an item: a string is a text, an object an item, a list content parts."""
    try:
        if isinstance(value, list):
            return content_item(value, index or 0, settings, field)
        if isinstance(value, str | dict):
            return parse_input([value], settings)[0]
    except RequestItemError as e:
        raise RequestItemError(e.reason if index is not None else f"{field}: {e.reason}", index, field) from None
    problem = f"must be a string, an item or a list of content parts, got {type(value).__name__}."
    raise RequestItemError(problem if index is not None else f"{field} {problem}", index, field)
