"""The embedding routes: OpenAI's ``POST /v1/embeddings`` (``input`` or vLLM's ``messages``) and Cohere's
``POST /v2/embed``, on one request path.

Each route parses its API's body into a :class:`Call` (the items, the prompt, and how to answer), and answers in its
API's shape and error format; what they share is here once: auth, admission, the batcher, disconnect cancellation
(499), what preprocessing cut (``usage`` / ``meta.truncation``, and ``lco_truncated_items_total``), counting.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from lco_embedding.core import notes
from lco_embedding.core.precision import truncate_normalize
from lco_embedding.pipeline.options import resolve_prompt
from lco_embedding.serving.batcher import DynamicBatcher, Embedded, QueueFull, RequestTooLarge, Ticket
from lco_embedding.serving.cohere import INPUT_TYPE_PROMPTS, EmbedRequest, parse_embed_request, render_embed
from lco_embedding.serving.inputs import (
    RequestItemError,
    check_request_size,
    content_item,
    item_texts,
    parse_input,
    parse_messages,
)
from lco_embedding.serving.metrics import ServerMetrics
from lco_embedding.serving.settings import ServerSettings
from lco_embedding.serving.wire import EmbeddingRequest, RequestError, parse_request, render_embeddings

if TYPE_CHECKING:
    from lco_embedding.embedder import LCOEmbedder

__all__ = ["Call", "CohereEmbed", "OpenAIEmbeddings", "openai_error", "truncation_summary"]


def openai_error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """An error in OpenAI's format, ``{"error": {"message", "type", "param", "code"}}``."""
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def cohere_error(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """An error in Cohere's format, ``{"id", "message"}``."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"id": str(uuid.uuid4()), "message": message}, status_code=status, headers=headers)


class Refused(Exception):
    """A request answered with an error before it reaches the batcher (the route's own error format)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


@dataclass
class Call:
    """One request, checked: its items for the batcher and how to answer.

    Attributes:
        items: ``encode`` items (dicts, content-part lists or one conversation).
        prompt: The instruction put in front of each item.
        field: The request field the items came from (``input``, ``messages``, ``texts``, ...), for errors.
        request: The parsed body (the route's own type).
    """

    items: list[Any]
    prompt: str | None
    field: str
    request: Any
    extra: dict[str, Any] = field(default_factory=dict)
    cut: set[int] = field(default_factory=set)
    """Items whose text the route itself cut before batching (Cohere's ``truncate="START"``), reported as cut."""


def truncation_summary(cut: list[dict[str, float]]) -> dict[str, Any]:
    """What preprocessing cut from a request's items: ``text_truncated`` (texts cut at ``max_length``),
    ``audio_truncated_seconds`` (sound past ``max_audio_seconds``), ``video_frames_sampled`` (videos embedded from
    fewer frames than they have) and ``truncated_items`` (items with a text or sound cut)."""
    return {
        notes.TEXT: int(sum(c.get(notes.TEXT, 0) > 0 for c in cut)),
        notes.AUDIO_SECONDS: round(float(sum(c.get(notes.AUDIO_SECONDS, 0.0) for c in cut)), 3),
        notes.VIDEO_FRAMES: int(sum(c.get(notes.VIDEO_FRAMES, 0) > 0 for c in cut)),
        "truncated_items": int(sum((c.get(notes.TEXT, 0) + c.get(notes.AUDIO_SECONDS, 0)) > 0 for c in cut)),
    }


class EmbedRoute:
    """What both APIs' routes share (see the module); subclasses parse, refuse and render in their API's shape."""

    path = ""
    batcher_key = "batcher"
    """The key of the batcher that answers the route in the app's state."""

    def __init__(
        self,
        embedder: LCOEmbedder,
        settings: ServerSettings,
        metrics: ServerMetrics,
        state: dict[str, DynamicBatcher],
        authorized: Callable[[Any], bool],
    ) -> None:
        self.embedder, self.settings, self.metrics, self.state = embedder, settings, metrics, state
        self.authorized = authorized
        self.dimension = embedder.get_embedding_dimension()

    # The API's own parts.
    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None, **kw: Any) -> Any:
        """An error response in the API's format."""
        raise NotImplementedError

    def parse(self, body: bytes) -> Call:
        """The request checked into a :class:`Call` (raises :class:`Refused` or :class:`RequestItemError`)."""
        raise NotImplementedError

    def render(self, call: Call, embedded: Embedded) -> bytes:
        """The answer's body."""
        raise NotImplementedError

    # The shared path.
    async def __call__(self, request: Any) -> Any:
        started = time.perf_counter()
        response = await self._respond(request)
        self.metrics.requests.labels(status=str(response.status_code)).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _respond(self, request: Any) -> Any:
        from fastapi.responses import Response

        if not self.authorized(request):
            return self.error(401, "missing or incorrect API key: send 'Authorization: Bearer <key>'.",
                              code="invalid_api_key")  # fmt: skip
        try:
            call = self.parse(await request.body())
            call.items = await self._prepared(call)
            await asyncio.get_running_loop().run_in_executor(None, self._check_texts, call)
        except Refused as e:
            return self.error(e.status, e.message, param=e.param, code=e.code)
        except RequestError as e:
            return self.error(400, str(e), param=e.param)
        except RequestItemError as e:
            return self.error(400, str(e), param=e.param)
        batcher = self.state[self.batcher_key]
        try:
            batcher.admit(len(call.items))
        except RequestTooLarge as e:
            return self.error(413, str(e), param=call.field, code="request_too_large")
        except QueueFull as e:
            return self._busy(e)
        ticket = Ticket()
        try:
            embedded = await _unless_disconnected(request, batcher.embed(call.items, call.prompt, ticket), ticket)
        except RequestItemError as e:
            named = e.named(call.field) if e.field == "input" else e
            return self.error(400, str(named), param=named.param)
        except RequestTooLarge as e:
            return self.error(413, str(e), param=call.field, code="request_too_large")
        except QueueFull as e:
            return self._busy(e)
        except _Disconnected:
            return Response(status_code=499)
        finally:
            batcher.release(len(call.items))
        if call.cut:  # texts the route cut itself count as cut, as those preprocessing cuts do
            pairs = zip(embedded.places, embedded.cut, strict=True)
            embedded.cut = [{**cut, notes.TEXT: 1.0} if index in call.cut else cut for (index, _), cut in pairs]
        self.metrics.items.inc(len(call.items))
        self.metrics.count_truncated(embedded.cut)
        return Response(self.render(call, embedded), media_type="application/json")

    async def _prepared(self, call: Call) -> list[Any]:
        """The call's items after what must happen before batching (the text cuts of Cohere's ``truncate``)."""
        return call.items

    def _check_texts(self, call: Call) -> None:
        """Refuse a text longer than ``max_item_tokens`` where the model's settings do not cut it that short (a
        preset without a text cut), tokenizing no more of it than the check needs (in a worker thread).

        Raises:
            RequestItemError: Naming the item and the limit.
        """
        limit = self.settings.max_item_tokens
        texts = self.state[self.batcher_key].featurizer.text_batcher
        max_length = texts.featurizer.max_length
        if max_length is not None and max_length <= limit:
            return
        for index, item in enumerate(call.items):
            if any(texts.longer_than(text, limit) for text in item_texts(item)):
                raise RequestItemError(
                    f"the text is longer than the {limit:,} tokens this server embeds per item (max_item_tokens), and "
                    "the model's settings do not cut it: shorten it, or send it in parts.",
                    index,
                    call.field,
                )

    def _busy(self, error: QueueFull) -> Any:
        return self.error(429, str(error), code="queue_full", headers={"Retry-After": str(error.retry_after)})

    def _check_model(self, model: str) -> None:
        served = self.settings.served_model_name
        if model != served:
            raise Refused(
                404, f"model {model!r} is not served here; this server serves {served!r}.", "model", "model_not_found"
            )

    def _check_dimensions(self, dimensions: int | None, name: str) -> None:
        if dimensions is not None and dimensions > self.dimension:
            raise Refused(400, f"{name} must be between 1 and {self.dimension}, got {dimensions}.", name)


class OpenAIEmbeddings(EmbedRoute):
    """``POST /v1/embeddings``: OpenAI's request (``input``), or vLLM's chat-style ``messages``; ``prompt_name``
    for the server's prompts; ``usage`` with what was cut."""

    path = "/v1/embeddings"

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None, **kw: Any) -> Any:
        kind = {401: "invalid_request_error", 429: "rate_limit_error"}.get(status, "invalid_request_error")
        return openai_error(status, message, kind, param=param, code=code, headers=kw.get("headers"))

    def parse(self, body: bytes) -> Call:
        request = parse_request(body)
        self._check_model(request.model)
        self._check_dimensions(request.dimensions, "dimensions")
        prompts = self.embedder.prompts
        if request.prompt_name is not None and request.prompt_name not in prompts:
            names = ", ".join(repr(name) for name in sorted(prompts)) or "none"
            raise Refused(
                400,
                f"prompt_name {request.prompt_name!r} is not one of this server's prompts (it has {names}); the "
                "server adds prompts with `lco-embed serve --prompt NAME=TEXT`.",
                "prompt_name",
            )
        if request.messages is not None:  # a conversation, embedded as given: no prompt
            return Call(parse_messages(request.messages, self.settings), None, "messages", request)
        prompt = resolve_prompt(self.embedder, request.prompt_name, None)
        return Call(parse_input(request.input, self.settings), prompt, "input", request)

    def render(self, call: Call, embedded: Embedded) -> bytes:
        request: EmbeddingRequest = call.request
        return render_embeddings(
            embedded.vectors,
            dimensions=request.dimensions,
            encoding=request.encoding_format,
            model=self.settings.served_model_name,
            tokens=embedded.tokens,
            places=embedded.places if any(place is not None for _, place in embedded.places) else None,
            truncation=truncation_summary(embedded.cut),
        )


class CohereEmbed(EmbedRoute):
    """``POST /v2/embed``: Cohere's embed request and answer (:mod:`.cohere`)."""

    path = "/v2/embed"

    def error(self, status: int, message: str, *, param: str | None = None, code: str | None = None, **kw: Any) -> Any:
        return cohere_error(status, message if param is None or message.startswith(param) else f"{param}: {message}",
                            headers=kw.get("headers"))  # fmt: skip

    def parse(self, body: bytes) -> Call:
        request = parse_embed_request(body)
        self._check_model(request.model)
        self._check_dimensions(request.output_dimension, "output_dimension")
        name = INPUT_TYPE_PROMPTS[request.input_type]
        prompt = self.embedder.prompts.get(name) or None
        check_request_size(request.entries, self.settings, request.field)
        if request.field == "inputs":
            items = [content_item(parts, i, self.settings, "inputs") for i, parts in enumerate(request.entries)]
        else:  # texts: strings; images: data URIs (or URLs)
            entries = [{request.field.removesuffix("s"): entry} for entry in request.entries]
            try:
                items = parse_input(entries, self.settings)
            except RequestItemError as e:
                raise e.named(request.field) from None
        return Call(items, prompt, request.field, request)

    async def _prepared(self, call: Call) -> list[Any]:
        request: EmbedRequest = call.request
        if request.truncate == "END":
            return call.items
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._cut, call, request.truncate)

    def _cut(self, call: Call, mode: str) -> list[Any]:
        """``truncate="NONE"``: a text past ``max_length`` is refused; ``"START"``: its last tokens are kept."""
        texts = self.state["batcher"].featurizer.text_batcher
        items = []
        for index, item in enumerate(call.items):
            parts = item if isinstance(item, list) else [item]
            for part in parts:
                if not isinstance(part.get("text"), str):
                    continue
                if mode == "NONE" and texts.too_long(part["text"]):
                    raise RequestItemError(
                        f"the text is longer than this server's {texts.featurizer.max_length} tokens and truncate "
                        "is NONE; shorten it, or send truncate END (or START).",
                        index,
                        call.field,
                    )
                if mode == "START":
                    kept = texts.keep_end(part["text"])
                    if kept != part["text"]:
                        call.cut.add(index)
                    part["text"] = kept
            items.append(item)
        return items

    def render(self, call: Call, embedded: Embedded) -> bytes:
        request: EmbedRequest = call.request
        rows = np.stack([np.asarray(v, dtype=np.float32) for v in embedded.vectors])
        rows = truncate_normalize(rows, request.output_dimension)
        return render_embed(
            rows,
            request,
            tokens=embedded.tokens,
            int8_range=self.settings.int8_range,
            truncation=truncation_summary(embedded.cut),
        )


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
