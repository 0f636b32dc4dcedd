"""The bytes of ``POST /v2/embed``, Cohere's embed API (v2) as vLLM also serves it: the request checked into an
:class:`EmbedRequest`, and the answer with every requested embedding type.

Request: ``model``, ``input_type``, exactly one of ``texts`` (strings), ``images`` (data URIs, or URLs when the
server fetches them) and ``inputs`` (``{"content": [parts]}``: text, ``image_url``, and this server's
``audio_url`` / ``video_url`` / ``input_audio``), ``embedding_types`` (default ``["float"]``), ``output_dimension``,
``truncate`` (``END`` default), ``max_tokens`` and ``priority`` (accepted, not used). Errors answer in Cohere's
format, ``{"id", "message"}``.

``input_type`` picks the server's prompt (:data:`INPUT_TYPE_PROMPTS`). Embedding types, computed from the
L2-normalised vector (after ``output_dimension`` and a renormalisation, as ``encode(truncate_dim=...)``):

* ``float``: the vector; ``base64``: its little-endian float32 bytes, base64;
* ``int8``: ``round(clip(x / r, -1, 1) * 127)`` with one range ``r`` for every dimension and every request (the
  server's ``int8_range``, default ``4 / sqrt(dimension)``: four standard deviations of a coordinate of a random
  unit vector), so that the same item always gives the same bytes and dot products of int8 vectors rank as
  cosines do; ``uint8``: ``int8 + 128``;
* ``binary``: the signs (``x > 0``) packed eight to a byte, as signed bytes (``packed - 128``); ``ubinary``: the
  same bytes unsigned — sentence-transformers' and Cohere's definitions.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from lco_embedding.core.precision import quantize_fixed
from lco_embedding.serving.wire import RequestError, dumps, load_object

__all__ = [
    "EMBEDDING_TYPES",
    "INPUT_TYPE_PROMPTS",
    "TRUNCATE",
    "EmbedRequest",
    "parse_embed_request",
    "quantize",
    "render_embed",
]

INPUT_TYPE_PROMPTS: dict[str, str] = {
    "search_query": "query",
    "search_document": "document",
    "classification": "classification",
    "clustering": "clustering",
    "image": "document",
}
"""``input_type`` -> the name of the server's prompt put in front of the items (none when the server has no prompt
of that name, as the reference pipeline uses none)."""
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
TRUNCATE = ("NONE", "START", "END")
INPUT_FIELDS = ("texts", "images", "inputs")


@dataclass(frozen=True)
class EmbedRequest:
    """A checked ``/v2/embed`` request.

    Attributes:
        model: The model asked for.
        input_type: One of :data:`INPUT_TYPE_PROMPTS`.
        field: Which of ``texts``, ``images``, ``inputs`` holds the entries.
        entries: Its entries (checked into items later, :mod:`.inputs`).
        embedding_types: The types asked for, in order, without repeats.
        output_dimension: Keep this many dimensions (None: all).
        truncate: ``NONE`` (refuse a text over the server's ``max_length``), ``START`` (keep its end), ``END``.
    """

    model: str
    input_type: str
    field: str
    entries: list[Any]
    embedding_types: tuple[str, ...] = ("float",)
    output_dimension: int | None = None
    truncate: str = "END"


def parse_embed_request(body: bytes) -> EmbedRequest:
    """The request in ``body``, its fields checked (unknown fields are ignored).

    Raises:
        RequestError: Not a JSON object, or a field missing, of the wrong type or out of range (``param`` names it).
    """
    document = load_object(body)
    model = document.get("model")
    if not isinstance(model, str):
        raise RequestError("model: a string is required.", "model")
    input_type = document.get("input_type")
    if input_type not in INPUT_TYPE_PROMPTS:
        message = f"input_type must be one of {', '.join(INPUT_TYPE_PROMPTS)}, got {input_type!r}."
        raise RequestError(message, "input_type")
    given = [name for name in INPUT_FIELDS if document.get(name) is not None]
    if len(given) != 1:
        raise RequestError(f"give exactly one of texts, images and inputs, got {given or 'none'}.", "texts")
    entries = document[given[0]]
    if not isinstance(entries, list) or not entries:
        raise RequestError(f"{given[0]} must be a non-empty list.", given[0])
    types = document.get("embedding_types") or ["float"]
    if not isinstance(types, list) or any(t not in EMBEDDING_TYPES for t in types):
        message = f"embedding_types must be a list of {', '.join(EMBEDDING_TYPES)}, got {types!r}."
        raise RequestError(message, "embedding_types")
    dimension = document.get("output_dimension")
    if dimension is not None and (not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1):
        raise RequestError(f"output_dimension must be a positive integer, got {dimension!r}.", "output_dimension")
    truncate = document.get("truncate") or "END"
    if truncate not in TRUNCATE:
        raise RequestError(f"truncate must be one of NONE, START, END, got {truncate!r}.", "truncate")
    if given[0] == "inputs":
        entries = [_content(entry, number) for number, entry in enumerate(entries)]
    return EmbedRequest(
        model=model,
        input_type=input_type,
        field=given[0],
        entries=entries,
        embedding_types=tuple(dict.fromkeys(types)),
        output_dimension=dimension,
        truncate=truncate,
    )


def _content(entry: Any, number: int) -> list[Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), list):
        raise RequestError(f'inputs[{number}]: an input is {{"content": [parts]}}.', f"inputs[{number}]")
    return entry["content"]


def quantize(rows: np.ndarray, kind: str, int8_range: float | None = None) -> list[Any]:
    """``rows`` (L2-normalised float32, ``[n, d]``) as Cohere's embedding type ``kind`` (see the module): the
    ``fixed-range`` scheme of :mod:`lco_embedding.core.precision` for the quantized types."""
    if kind == "float":
        return list(rows)
    if kind == "base64":
        return [base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii") for row in rows]
    return quantize_fixed(rows, kind, int8_range).tolist()  # type: ignore[arg-type]


def render_embed(
    rows: np.ndarray,
    request: EmbedRequest,
    *,
    tokens: int,
    int8_range: float | None,
    truncation: dict[str, Any],
) -> bytes:
    """The response body: ``{"id", "embeddings": {type: [...]}, "texts", "meta", "response_type"}``; ``meta``
    carries the tokens and what was cut (``truncation``)."""
    embeddings = {kind: quantize(rows, kind, int8_range) for kind in request.embedding_types}
    meta = {
        "api_version": {"version": "2"},
        "billed_units": {"input_tokens": tokens},
        "tokens": {"input_tokens": tokens},
        "truncation": truncation,
    }
    answer: dict[str, Any] = {"id": str(uuid.uuid4()), "embeddings": embeddings, "meta": meta}
    if request.field == "texts":
        answer["texts"] = request.entries
    answer["response_type"] = "embeddings_by_type"
    return dumps(answer)
