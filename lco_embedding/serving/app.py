"""The HTTP API: OpenAI-compatible ``POST /v1/embeddings`` and ``GET /v1/models``, plus ``/health``, ``/ready`` and
``/metrics``. Every error answers in OpenAI's format, ``{"error": {"message", "type", "param", "code"}}``; a bad item
is a 400 that names its index, never a 500.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations at run time, and the
# routes are defined inside create_app (so that fastapi is imported only when serving).
import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from lco_embedding.core.require import require
from lco_embedding.pipeline.options import resolve_prompt
from lco_embedding.serving.batcher import DynamicBatcher, QueueFull, Ticket
from lco_embedding.serving.inputs import RequestItemError, parse_input
from lco_embedding.serving.metrics import ServerMetrics
from lco_embedding.serving.settings import ServerSettings
from lco_embedding.serving.wire import REQUEST_SCHEMA, EmbeddingRequest, RequestError, parse_request, render_embeddings

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _error(
    status: int,
    message: str,
    kind: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


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


def create_app(embedder: Any, settings: ServerSettings | None = None) -> Any:
    """The FastAPI application serving ``embedder`` (``pip install 'lco-embedding[server]'``).

    The model runs in one background thread (:class:`~lco_embedding.serving.batcher.DynamicBatcher`), started with
    the application and stopped with it.

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
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    settings = settings or ServerSettings()
    metrics = ServerMetrics()
    state: dict[str, DynamicBatcher] = {}
    created = int(time.time())
    dimension = embedder.get_embedding_dimension()

    @asynccontextmanager
    async def lifespan(_: Any):
        state["batcher"] = DynamicBatcher(embedder, settings, metrics)
        try:
            yield
        finally:
            state.pop("batcher").close()

    class _Server(FastAPI):
        """FastAPI, with ``POST /v1/embeddings`` answered before its middleware stack and router: the per-request
        work of the busiest route is kept to what it needs (body limit, auth, parsing, the batcher, one response),
        which on a GPU is what sets the request rate. Every other route, and the OpenAPI document, go through
        FastAPI."""

        async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] == "http" and scope["path"] == "/v1/embeddings" and scope["method"] == "POST":
                await fast_embeddings(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)

    app = _Server(title="lco-embedding", summary="OpenAI-compatible multimodal embeddings", lifespan=lifespan)
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)

    async def embeddings_asgi(scope: dict, receive: Callable, send: Callable) -> None:
        try:
            response = await embeddings(Request(scope, receive))
        except Exception:  # a fault of the server: answered as FastAPI's error middleware would, in OpenAI's format
            logger.exception("POST /v1/embeddings failed")
            metrics.requests.labels(status="500").inc()
            response = _error(500, "internal server error", "server_error")
        await response(scope, receive, send)

    fast_embeddings = _BodyLimit(embeddings_asgi, settings.max_body_bytes)

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

    def authorized(request: Request) -> bool:
        if settings.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode())

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

    request_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": REQUEST_SCHEMA}}}}
    route = _EmbeddingsRoute(embedder, settings, metrics, state, authorized)

    @app.post("/v1/embeddings", openapi_extra=request_body)
    async def embeddings(request: Request) -> Any:
        """Embed ``input``: a string, a list of strings, or a list of items with text/image/audio/video."""
        return await route(request)

    return app


class _EmbeddingsRoute:
    """``POST /v1/embeddings``: auth, the request checked, admission, the batcher, one response (counted)."""

    def __init__(
        self,
        embedder: Any,
        settings: ServerSettings,
        metrics: ServerMetrics,
        state: dict[str, DynamicBatcher],
        authorized: Callable[[Any], bool],
    ) -> None:
        self.embedder, self.settings, self.metrics, self.state = embedder, settings, metrics, state
        self.authorized = authorized
        self.dimension = embedder.get_embedding_dimension()

    async def __call__(self, request: Any) -> Any:
        started = time.perf_counter()
        response = await self._respond(request)
        self.metrics.requests.labels(status=str(response.status_code)).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _respond(self, request: Any) -> Any:
        if not self.authorized(request):
            return _unauthorized()
        try:
            body = parse_request(await request.body())
        except RequestError as e:
            return _error(400, str(e), "invalid_request_error", param=e.param)
        refused = self._refused(body)
        if refused is not None:
            return refused
        try:
            prompt = resolve_prompt(self.embedder, body.prompt_name, None)
            items = parse_input(body.input, self.settings)
        except RequestItemError as e:
            return _error(400, str(e), "invalid_request_error", param=_param(e))
        return await self._embed(body, items, prompt, request)

    def _refused(self, body: EmbeddingRequest) -> Any:
        """The error response of a request this server does not take (another model, dimensions, prompt), or None."""
        served, prompts = self.settings.served_model_name, self.embedder.prompts
        if body.model != served:
            message = f"model {body.model!r} is not served here; this server serves {served!r}."
            return _error(404, message, "invalid_request_error", param="model", code="model_not_found")
        if body.dimensions is not None and body.dimensions > self.dimension:
            message = f"dimensions must be between 1 and {self.dimension}, got {body.dimensions}."
            return _error(400, message, "invalid_request_error", param="dimensions")
        if body.prompt_name is not None and body.prompt_name not in prompts:
            names = ", ".join(repr(name) for name in sorted(prompts)) or "none"
            message = (
                f"prompt_name {body.prompt_name!r} is not one of this server's prompts (it has {names}); the "
                "server adds prompts with `lco-embed serve --prompt NAME=TEXT`."
            )
            return _error(400, message, "invalid_request_error", param="prompt_name")
        return None

    async def _embed(self, body: EmbeddingRequest, items: list[Any], prompt: str | None, request: Any) -> Any:
        from fastapi.responses import Response

        batcher = self.state["batcher"]
        try:
            batcher.admit(len(items))
        except QueueFull as e:
            return _busy(e)
        ticket = Ticket()
        try:
            vectors, tokens, places = await _unless_disconnected(request, batcher.embed(items, prompt, ticket), ticket)
        except RequestItemError as e:
            return _error(400, str(e), "invalid_request_error", param=_param(e))
        except QueueFull as e:
            return _busy(e)
        except _Disconnected:
            return Response(status_code=499)
        finally:
            batcher.release(len(items))
        self.metrics.items.inc(len(items))
        content = render_embeddings(
            vectors,
            dimensions=body.dimensions,
            encoding=body.encoding_format,
            model=self.settings.served_model_name,
            tokens=tokens,
            places=places if any(place is not None for _, place in places) else None,
        )
        return Response(content, media_type="application/json")


def _unauthorized() -> Any:
    return _error(
        401,
        "missing or incorrect API key: send 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        code="invalid_api_key",
    )


def _busy(error: QueueFull) -> Any:
    """The 429 of a full queue, with its Retry-After."""
    return _error(
        429, str(error), "rate_limit_error", code="queue_full", headers={"Retry-After": str(error.retry_after)}
    )


def _param(error: RequestItemError) -> str:
    return "input" if error.index is None else f"input[{error.index}]"


class _Disconnected(Exception):
    pass


async def _unless_disconnected(request: Any, work: Awaitable[Any], ticket: Ticket) -> Any:
    """Await ``work``; if the client disconnects first, cancel the ticket (its queued items are dropped) and the
    wait (one watcher task per request; the work runs in the request's own task)."""
    task = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                gone = ticket.cancelled = True
                task.cancel()
                return

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            raise _Disconnected from None
        raise
    finally:
        watcher.cancel()
