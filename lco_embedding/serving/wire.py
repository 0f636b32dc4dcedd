"""The bytes of ``POST /v1/embeddings``: the request body checked into an :class:`EmbeddingRequest` and the answer
serialized, without a model object per request or per item.

JSON is read and written with orjson when it is installed (the ``[server]`` extra installs it) and with the
standard library otherwise; both give the same values. Float embeddings are written as the shortest decimal that
reads back to the same float32 (orjson), or as its float64 repr (standard library): a client reading either as
float32 gets the exact vector. ``encoding_format="base64"`` (little-endian float32, as OpenAI's) is about a quarter
of the size and the cheapest to produce and parse.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from lco_embedding.core.errors import LCOError
from lco_embedding.core.precision import truncate_normalize

__all__ = [
    "REQUEST_SCHEMA",
    "EmbeddingRequest",
    "RequestError",
    "dumps",
    "load_object",
    "parse_request",
    "render_embeddings",
]

try:  # optional: the server's extra installs it
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None


class RequestError(LCOError, ValueError):
    """The body is not an embeddings request: 400, naming the field (``param``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        self.param = param
        super().__init__(message)


@dataclass(frozen=True)
class EmbeddingRequest:
    """OpenAI's embeddings request, with ``prompt_name`` for the server's prompts, or vLLM's chat-style
    ``messages`` instead of ``input``. Both are checked later (:mod:`lco_embedding.serving.inputs`)."""

    input: Any
    model: str
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None
    prompt_name: str | None = None
    messages: Any = None


#: The request body's JSON schema, for the OpenAPI document (the route reads the body itself).
REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "input": {
            "description": "A string, a list of strings, or a list of items: objects with text/image/audio/video, "
            "typed content parts, or lists of them."
        },
        "messages": {"type": "array", "description": "Instead of input: one chat (vLLM), embedded as given."},
        "model": {"type": "string"},
        "encoding_format": {"type": "string", "enum": ["float", "base64"], "default": "float"},
        "dimensions": {"type": "integer", "minimum": 1},
        "user": {"type": "string"},
        "prompt_name": {"type": "string"},
    },
}

_OPTIONAL_STRINGS = ("user", "prompt_name")


def loads(body: bytes) -> Any:
    """Parse JSON bytes (orjson when installed)."""
    return orjson.loads(body) if orjson is not None else json.loads(body)


def dumps(value: Any) -> bytes:
    """Serialize to compact JSON bytes (orjson when installed; float32 arrays allowed)."""
    if orjson is not None:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def load_object(body: bytes) -> dict[str, Any]:
    """The JSON object in a request body.

    Raises:
        RequestError: Not JSON, or not an object.
    """
    try:
        document = loads(body)
    except ValueError as e:
        raise RequestError(f"the request body is not valid JSON: {e}.") from None
    if not isinstance(document, dict):
        raise RequestError(f"the request body must be a JSON object, got {type(document).__name__}.")
    return document


def parse_request(body: bytes) -> EmbeddingRequest:
    """The request in ``body``, its fields checked (unknown fields are ignored, as OpenAI does).

    Raises:
        RequestError: Not JSON, not an object, a required field missing, or a field of the wrong type or range.
    """
    document = load_object(body)
    if "model" not in document:
        raise RequestError("model: Field required", "model")
    if ("input" in document) == ("messages" in document):
        raise RequestError("give input (OpenAI's) or messages (vLLM's chat form), exactly one of them.", "input")
    model = document["model"]
    if not isinstance(model, str):
        raise RequestError(f"model: Input should be a valid string, got {type(model).__name__}", "model")
    encoding = document.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestError(f"encoding_format: Input should be 'float' or 'base64', got {encoding!r}", "encoding_format")
    dimensions = document.get("dimensions")
    if dimensions is not None:
        if not isinstance(dimensions, int) or isinstance(dimensions, bool):
            raise RequestError(f"dimensions: Input should be a valid integer, got {dimensions!r}", "dimensions")
        if dimensions < 1:
            message = f"dimensions: Input should be greater than or equal to 1, got {dimensions}"
            raise RequestError(message, "dimensions")
    for name in _OPTIONAL_STRINGS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise RequestError(f"{name}: Input should be a valid string, got {type(value).__name__}", name)
    return EmbeddingRequest(
        input=document.get("input"),
        messages=document.get("messages"),
        model=model,
        encoding_format=encoding,
        dimensions=dimensions,
        user=document.get("user"),
        prompt_name=document.get("prompt_name"),
    )


def _float32(vector: Any) -> np.ndarray:
    if hasattr(vector, "detach"):  # a torch tensor, possibly bfloat16 (which numpy has not)
        vector = vector.detach().float().cpu().numpy()
    return np.asarray(vector, dtype=np.float32)


def render_embeddings(
    vectors: list[Any],
    *,
    dimensions: int | None,
    encoding: str,
    model: str,
    tokens: int,
    places: list[tuple[int, dict[str, Any] | None]] | None = None,
    truncation: dict[str, Any] | None = None,
) -> bytes:
    """The response body for raw float32 ``vectors`` (in item order): each truncated to ``dimensions`` and then
    L2-normalised (as ``encode(truncate_dim=...)`` does), as floats or base64. ``places`` says, for each vector,
    its item's index and, for a segment, ``{"segment", "start", "end"}`` (added to its entry); default: vector i
    is item i. ``truncation`` (what preprocessing cut) joins ``usage``."""
    rows = np.ascontiguousarray(truncate_normalize(np.stack([_float32(v) for v in vectors]), dimensions), dtype="<f4")
    if encoding == "base64":
        embeddings: list[Any] = [base64.b64encode(row.tobytes()).decode("ascii") for row in rows]
    else:
        embeddings = list(rows)
    if places is None:
        data = [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(embeddings)]
    else:
        data = [
            {"object": "embedding", "index": index, "embedding": e, **(place or {})}
            for (index, place), e in zip(places, embeddings, strict=True)
        ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens, **(truncation or {})}
    return dumps({"object": "list", "data": data, "model": model, "usage": usage})
