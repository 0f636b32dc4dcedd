"""The HTTP API: OpenAI-compatible ``POST /v1/embeddings`` (with vLLM's chat-style ``messages``), Cohere's
``POST /v2/embed``, with a reranker ``POST /v1/rerank`` and ``POST /v2/rerank`` (:mod:`.rerank`),
``GET /v1/models``, ``/health``, ``/ready`` and ``/metrics``. Every error answers in its API's format (OpenAI's
``{"error": {"message", "type", "param", "code"}}``, Cohere's ``{"id", "message"}``); a bad item is a 400 that
names it, never a 500. The embedding routes themselves are :mod:`.routes`.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations at run time, and the
# routes are defined inside create_app (so that fastapi is imported only when serving).
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from lco_embedding.core.require import require
from lco_embedding.serving.batcher import DynamicBatcher
from lco_embedding.serving.cohere import EMBEDDING_TYPES, INPUT_TYPE_PROMPTS
from lco_embedding.serving.metrics import ServerMetrics
from lco_embedding.serving.rerank import RERANK_SCHEMA, CohereRerank, JinaRerank
from lco_embedding.serving.routes import CohereEmbed, EmbedRoute, OpenAIEmbeddings, openai_error
from lco_embedding.serving.settings import ServerSettings
from lco_embedding.serving.wire import REQUEST_SCHEMA

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder
    from lco_embedding.rerank import LCOReranker

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

_error = openai_error
_V2_SCHEMA = {
    "type": "object",
    "required": ["model", "input_type"],
    "properties": {
        "model": {"type": "string"},
        "input_type": {"type": "string", "enum": list(INPUT_TYPE_PROMPTS)},
        "texts": {"type": "array", "items": {"type": "string"}},
        "images": {"type": "array", "items": {"type": "string"}},
        "inputs": {"type": "array", "items": {"type": "object"}},
        "embedding_types": {"type": "array", "items": {"type": "string", "enum": list(EMBEDDING_TYPES)}},
        "output_dimension": {"type": "integer", "minimum": 1},
        "truncate": {"type": "string", "enum": ["NONE", "START", "END"]},
    },
}


class _BodyLimit:
    """ASGI middleware: reads the request body up to ``limit`` bytes (413 beyond it, chunked bodies included), then
    hands it to the app; later ``receive`` calls (the disconnect watch) go to the client as before."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def too_large() -> Any:
            return _error(
                413,
                f"the request body is larger than this server's limit of {self.limit:,} bytes.",
                "invalid_request_error",
                code="request_too_large",
            )

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large()(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await too_large()(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


def create_app(
    embedder: "LCOEmbedder",
    settings: ServerSettings | None = None,
    *,
    model_loop: Any = None,
    reranker: "LCOReranker | None" = None,
) -> Any:
    """The FastAPI application serving ``embedder`` (``pip install 'lco-embedding[server]'``), and with
    ``reranker`` (a generative :class:`~lco_embedding.LCOReranker`) the rerank routes (:mod:`.rerank`).

    The model runs in one loop (:class:`~lco_embedding.serving.batcher.DynamicBatcher`), started with the
    application and stopped with it: in a background thread, or with ``model_loop`` (a
    :class:`~lco_embedding.serving.runner.MainThreadRunner`) on the thread that runs it, as ``lco-embed serve`` does.

    Example:
        >>> from fastapi.testclient import TestClient
        >>> with TestClient(create_app(model)) as client:  # uvicorn.run(app, port=8000) serves it for real
        ...     reply = client.post("/v1/embeddings", json={"model": "lco-embedding", "input": "a cat"})
        >>> reply.status_code, len(reply.json()["data"][0]["embedding"])
        (200, 64)
    """
    require("fastapi", "server")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or ServerSettings()
    metrics = ServerMetrics()
    state: dict[str, DynamicBatcher] = {}
    if reranker is not None and reranker.backend != "generative":
        raise ValueError(
            "the server serves generative rerankers (checkpoints of the Qwen2.5-Omni or Qwen2.5-VL architecture); "
            f"{reranker!r} is a CrossEncoder: use it from Python or with `lco-embed search/eval --rerank`."
        )
    shared = reranker is not None and reranker.scorer.embedder is embedder

    @asynccontextmanager
    async def lifespan(_: Any):
        state["batcher"] = DynamicBatcher(embedder, settings, metrics, model_thread=model_loop is None)
        if model_loop is not None:
            model_loop.attach(state["batcher"])
        if reranker is not None:  # the embedder's own batcher when it shares its weights, else its own model thread
            own = None if shared else DynamicBatcher(reranker.scorer.embedder, settings, metrics)
            state["rerank_batcher"] = own or state["batcher"]
        try:
            yield
        finally:
            state.pop("batcher").close()
            if reranker is not None and not shared:
                state.pop("rerank_batcher").close()

    class _Server(FastAPI):
        """FastAPI, with the embedding routes answered before its middleware stack and router: the per-request work
        of the busiest routes is kept to what they need (body limit, auth, parsing, the batcher, one response),
        which on a GPU is what sets the request rate. Every other route, and the OpenAPI document, go through
        FastAPI."""

        async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
            route = fast.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
            if route is not None:
                await route(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)

    authorized = _authorization(settings)
    app = _Server(
        title="lco-embedding", summary="OpenAI- and Cohere-compatible multimodal embeddings", lifespan=lifespan
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    routes = [kind(embedder, settings, metrics, state, authorized) for kind in (OpenAIEmbeddings, CohereEmbed)]
    schemas = [REQUEST_SCHEMA, _V2_SCHEMA]
    if reranker is not None:
        ranking = reranker.scorer.embedder
        routes += [kind(reranker, ranking, settings, metrics, state, authorized) for kind in (JinaRerank, CohereRerank)]
        schemas += [RERANK_SCHEMA, RERANK_SCHEMA]
    fast = {route.path: _BodyLimit(_asgi(route, metrics), settings.max_body_bytes) for route in routes}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        metrics.requests.labels(status=str(error.status_code)).inc()
        return _error(error.status_code, str(error.detail), "invalid_request_error", headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        metrics.requests.labels(status="400").inc()
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        return _error(
            400,
            f"{where or 'request'}: {first.get('msg', 'invalid request')}",
            "invalid_request_error",
            param=where or None,
        )

    _info_routes(app, embedder, settings, metrics, state, authorized)
    for route, schema in zip(routes, schemas, strict=True):
        _document(app, route, schema)
    return app


def _authorization(settings: ServerSettings) -> Callable[[Any], bool]:
    """Whether a request may use the API: any, or those with ``Authorization: Bearer <api_key>``."""

    def authorized(request: Any) -> bool:
        if settings.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode())

    return authorized


def _unauthorized() -> Any:
    return _error(
        401,
        "missing or incorrect API key: send 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        code="invalid_api_key",
    )


def _info_routes(
    app: Any,
    embedder: "LCOEmbedder",
    settings: ServerSettings,
    metrics: ServerMetrics,
    state: dict[str, DynamicBatcher],
    authorized: Callable[[Any], bool],
) -> None:
    """``/health``, ``/ready``, ``/metrics`` and ``/v1/models``."""
    from fastapi import Request
    from fastapi.responses import JSONResponse, Response

    created = int(time.time())
    dimension = embedder.get_embedding_dimension()

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness: the model is loaded and its thread runs."""
        batcher = state.get("batcher")
        if batcher is None or not batcher.running:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "model": settings.served_model_name, "dimension": dimension})

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics."""
        if not authorized(request):
            return _unauthorized()
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        """The one model this server serves."""
        if not authorized(request):
            return _unauthorized()
        card = {"id": settings.served_model_name, "object": "model", "created": created, "owned_by": "lco-embedding"}
        return {"object": "list", "data": [card]}


def _asgi(route: EmbedRoute, metrics: ServerMetrics) -> Callable:
    """``route`` as an ASGI app; a fault of the server is answered as FastAPI's error middleware would, in the
    route's error format."""
    from fastapi import Request

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        try:
            response = await route(Request(scope, receive))
        except Exception:
            logger.exception("POST %s failed", route.path)
            metrics.requests.labels(status="500").inc()
            response = route.error(500, "internal server error")
        await response(scope, receive, send)

    return app


def _document(app: Any, route: EmbedRoute, schema: dict[str, Any]) -> None:
    """Register ``route`` with FastAPI too (the OpenAPI document; requests are answered before the router)."""
    from fastapi import Request

    async def endpoint(request: Request) -> Any:
        return await route(request)

    endpoint.__doc__ = (route.__class__.__doc__ or "").split("\n\n")[0]
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
    app.post(route.path, openapi_extra=body, name=route.__class__.__name__)(endpoint)
