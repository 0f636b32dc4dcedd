"""The items of a request, checked and turned into ``encode`` items: OpenAI's ``input``, vLLM's chat-style
``messages``, typed content parts (llama.cpp's, Cohere's ``inputs``), Cohere's ``texts`` and ``images``.

``input``: a string, a list of strings, or a list of items, each a string or an object with any of ``text``,
``image``, ``audio``, ``video`` (several = one mixed item), and optionally its own media settings (``fps``,
``max_frames``, ``min_pixels``, ``max_pixels``: :data:`lco_embedding.inputs.parse.ITEM_BUDGETS`), whether its video is
embedded with its sound track (``use_audio_in_video``: true, false or "auto"), and ``segment`` (true, or an
object such as ``{"window": 30}``: :meth:`lco_embedding.segments.SegmentSpec.from_json`) to get one embedding per
segment of a long audio, video or text. Strings are always
text: the server never reads a path a client names. Media are data URIs (``data:image/png;base64,...``), or
http(s) URLs when the server fetches URLs (:mod:`.fetch`). A page of a PDF is an item of its own, ``{"pdf":
"data:application/pdf;base64,...", "page": 3}`` (with ``pdf_text``, ``pdf_password``:
:mod:`lco_embedding.inputs.documents`); with ``segment``, a whole PDF gives one embedding per page.

An ``input`` item may also be a typed content part, or a list of them (one item, its parts in order, the modality's
one-word-summary suffix after them): ``{"type": "text", "text": ...}``, ``{"type": "image_url", "image_url": {"url":
...}}`` (``audio_url``, ``video_url`` alike, the URL as an object or a string), OpenAI's ``{"type": "input_audio",
"input_audio": {"data": <base64>, "format": "wav"}}``, OpenAI's ``{"type": "file", "file": {"file_data":
"data:application/pdf;base64,...", "page": 3}}`` (a page of a PDF; ``page`` is ours), or Qwen's ``{"type":
"image", "image": ...}``. ``messages``
(a list of ``{"role", "content"}``, the content a string or a list of parts) is one item embedded as given, as
vLLM embeds a chat: the chat template around it, no prompt and no suffix added.

Does not accept token arrays (lists of integers), which OpenAI's API also allows: send text.
"""

from __future__ import annotations

from typing import Any

from lco_embedding.core.errors import LCOError
from lco_embedding.core.modalities import (
    DOCUMENT_KEYS,
    MEDIA_MODALITIES,
    MODALITIES,
    MODALITY_TABLE,
    PDF,
    TEXT,
    is_text,
)
from lco_embedding.inputs.documents import PAGES
from lco_embedding.inputs.parse import AUDIO_IN_VIDEO, ITEM_BUDGETS
from lco_embedding.preprocessing.pdf import PdfPage
from lco_embedding.serving.fetch import FetchError, fetch
from lco_embedding.serving.settings import ServerSettings

__all__ = [
    "SEGMENT",
    "RequestItemError",
    "check_request_size",
    "content_item",
    "count_parts",
    "item_texts",
    "parse_input",
    "parse_messages",
    "resolve_media",
]

SEGMENT = "segment"
"""The item key asking for one embedding per segment; :func:`parse_input` turns its value into a SegmentSpec."""
_ITEM_OPTIONS = {*ITEM_BUDGETS, AUDIO_IN_VIDEO}
_DOCUMENT_OPTIONS = {*DOCUMENT_KEYS, PAGES}


class RequestItemError(LCOError, ValueError):
    """An item of a request cannot be embedded: 400, naming the item (``field[index]``: ``input[3]``,
    ``messages[1]``, ``texts[0]``)."""

    def __init__(self, reason: str, index: int | None = None, field: str = "input") -> None:
        self.reason, self.index, self.field = reason, index, field
        super().__init__(reason if index is None else f"{field}[{index}]: {reason}")

    @property
    def param(self) -> str:
        """The request field it names: ``input[3]``, or ``input`` when no item is named."""
        return self.field if self.index is None else f"{self.field}[{self.index}]"

    def named(self, field: str) -> RequestItemError:
        """The same error naming ``field`` instead."""
        return RequestItemError(self.reason, self.index, field)


def parse_input(value: Any, settings: ServerSettings) -> list[dict[str, Any]]:
    """Check ``input`` and return one ``encode`` item per entry (media still as data URIs or URLs).

    Raises:
        RequestItemError: The input or one of its entries is malformed, too large, or names something not accepted.
    """
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise RequestItemError(f"input must be a string or a list, got {type(value).__name__}.")
    if not entries:
        raise RequestItemError("input is empty; give at least one string or item.")
    tokens = [isinstance(e, list) and bool(e) and all(isinstance(t, int) for t in e) for e in entries]
    if all(isinstance(e, int) for e in entries) or all(tokens):
        raise RequestItemError("token arrays are not supported; send the text itself.")
    check_request_size(entries, settings, "input")
    return [_item(entry, index, settings) for index, entry in enumerate(entries)]


def count_parts(entry: Any) -> int:
    """The content parts of one request entry, before it is parsed: a string or a typed part is one, a list of parts
    or a message's content list its length, an item object its modalities, a conversation all its messages'."""
    if isinstance(entry, list):
        return sum(count_parts(part) if isinstance(part, dict) and "role" in part else 1 for part in entry)
    if isinstance(entry, dict) and "role" in entry:
        content = entry.get("content")
        return len(content) if isinstance(content, list) else 1
    if isinstance(entry, dict) and "type" not in entry:
        return max(1, sum(1 for key in entry if key in MODALITIES))
    return 1


def check_request_size(entries: list[Any], settings: ServerSettings, field: str) -> None:
    """Refuse a request with more items (:attr:`~ServerSettings.max_items_per_request`) or content parts
    (:attr:`~ServerSettings.max_parts_per_request`) than the server takes, before anything in it is decoded.

    Raises:
        RequestItemError: Naming the field, the count and the limit.
    """
    if len(entries) > settings.max_items_per_request:
        raise RequestItemError(
            f"{field} has {len(entries):,} items; this server takes at most {settings.max_items_per_request:,} per "
            "request: send them in several requests.",
            None,
            field,
        )
    parts = sum(count_parts(entry) for entry in entries)
    if parts > settings.max_parts_per_request:
        raise RequestItemError(
            f"{field} has {parts:,} content parts; this server takes at most {settings.max_parts_per_request:,} per "
            "request (max_parts_per_request): send fewer images, sounds or videos per request.",
            None,
            field,
        )


def _item(entry: Any, index: int, settings: ServerSettings) -> Any:
    if isinstance(entry, str):
        return {"text": _text(entry, index, settings)}
    if isinstance(entry, list) or (isinstance(entry, dict) and "type" in entry):
        return content_item(entry if isinstance(entry, list) else [entry], index, settings)
    if not isinstance(entry, dict):
        raise RequestItemError(f"an item must be a string or an object, got {type(entry).__name__}.", index)
    unknown = sorted(set(entry) - set(MODALITIES) - _ITEM_OPTIONS - {SEGMENT} - _DOCUMENT_OPTIONS)
    if unknown or not set(entry) & {*MODALITIES, PDF}:
        raise RequestItemError(
            f"item keys {unknown or '(none)'} are not understood; an item has any of 'text', 'image', 'audio', "
            '\'video\', e.g. {"text": "a caption", "image": "data:image/png;base64,..."}, or is a page of a PDF, '
            '{"pdf": "data:application/pdf;base64,...", "page": 1}, and may carry its own media settings '
            f"{', '.join(map(repr, [*ITEM_BUDGETS, AUDIO_IN_VIDEO]))} and 'segment'.",
            index,
        )
    item: dict[str, Any] = {}
    for key, part in entry.items():
        if key == PDF:
            item[key] = _media(key, part, index, settings)
        elif key in _ITEM_OPTIONS or key in _DOCUMENT_OPTIONS:
            item[key] = part  # checked where the item is parsed, as for encode
        elif key == SEGMENT:
            item[key] = _segment(part, index)
        elif is_text(key):
            if not isinstance(part, str):
                raise RequestItemError(f"'text' must be a string, got {type(part).__name__}.", index)
            item["text"] = _text(part, index, settings)
        else:
            item[key] = _media(key, part, index, settings)
    return item


# Typed content parts: `{m}_url` (vLLM, llama.cpp, Cohere) and Qwen's own `{"type": m, m: ...}` for every modality
# of the table, and OpenAI's `input_audio`.
_URL_PARTS = {f"{modality}_url": modality for modality in MEDIA_MODALITIES}
_PART_TYPES = sorted({*MODALITIES, *_URL_PARTS, "input_audio", "file"})


def content_item(parts: list[Any], index: int, settings: ServerSettings, field: str = "input") -> list[dict[str, Any]]:
    """Typed content parts as one ``encode`` item: Qwen's content parts, in order (media checked as in an item).

    Raises:
        RequestItemError: An empty list, a part of an unknown type or shape, or media not accepted.
    """
    if not parts:
        raise RequestItemError("a list of content parts is empty; give at least one part.", index, field)
    if len(parts) > settings.max_parts_per_request:
        raise RequestItemError(
            f"{len(parts):,} content parts; this server takes at most {settings.max_parts_per_request:,} per request.",
            index,
            field,
        )
    return [_part(part, index, settings, field, number) for number, part in enumerate(parts)]


def _part(part: Any, index: int, settings: ServerSettings, field: str, number: int) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    where = f"content part {number}: "
    if kind not in _PART_TYPES:
        raise RequestItemError(
            where + f"type {kind!r} is not understood; a part is one of {', '.join(map(repr, _PART_TYPES))}, e.g. "
            '{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}.',
            index,
            field,
        )
    try:
        if MODALITY_TABLE.get(kind) is TEXT:
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestItemError(f"'text' must be a string, got {type(text).__name__}.", index, field)
            return {"type": "text", "text": _text(text, index, settings, field)}
        if kind == "file":
            return {"type": "image", "image": _file_page(part.get("file"), index, settings)}
        if kind == "input_audio":
            return {"type": "audio", "audio": _media("audio", _input_audio(part.get("input_audio")), index, settings)}
        modality = _URL_PARTS.get(kind, kind)
        value = part.get(kind)
        url = value.get("url") if isinstance(value, dict) else value
        return {"type": modality, modality: _media(modality, url, index, settings)}
    except RequestItemError as e:
        raise RequestItemError(where + e.reason, index, field) from None


def _file_page(value: Any, index: int, settings: ServerSettings) -> PdfPage:
    """OpenAI's file part, ``{"file_data": "data:application/pdf;base64,...", "page": n}``, as that page of the PDF
    (``page`` is ours: OpenAI's part has none, and a whole PDF is not one item)."""
    if not isinstance(value, dict) or not isinstance(value.get("file_data"), str):
        raise RequestItemError(
            'a file part is {"type": "file", "file": {"file_data": "data:application/pdf;base64,..."}}.'
        )
    page = value.get("page")
    if page is None:
        raise RequestItemError(
            'the file part names no page: a PDF is a container of pages, so add "page": n to the file object (pages '
            'from 1), or send {"pdf": ..., "page": n} items, or {"pdf": ..., "segment": true} for every page.'
        )
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise RequestItemError(f"the file part's 'page' must be a page number from 1, got {page!r}.")
    return PdfPage(_media(PDF, value["file_data"], index, settings), page)


def _input_audio(value: Any) -> str:
    """OpenAI's ``{"data": <base64>, "format": "wav" | "mp3" | ...}`` as a data URI."""
    if not isinstance(value, dict) or not isinstance(value.get("data"), str):
        raise RequestItemError('input_audio must be {"data": "<base64>", "format": "wav"}.')
    fmt = value.get("format") or "wav"
    if not isinstance(fmt, str) or not fmt.isalnum():
        raise RequestItemError(f"input_audio's format must be a name such as 'wav' or 'mp3', got {fmt!r}.")
    return f"data:audio/{fmt};base64,{value['data']}"


def parse_messages(value: Any, settings: ServerSettings) -> list[list[dict[str, Any]]]:
    """vLLM's ``messages``: one conversation item (embedded as given), each message's content as Qwen's parts.

    Raises:
        RequestItemError: Not a non-empty list of ``{"role", "content"}`` messages, naming ``messages[i]``.
    """
    if not isinstance(value, list) or not value:
        raise RequestItemError("messages must be a non-empty list of {'role', 'content'} objects.", None, "messages")
    check_request_size([value], settings, "messages")
    conversation = []
    for number, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestItemError(
                "a message is {'role': 'system' | 'user' | 'assistant', 'content': ...}.", number, "messages"
            )
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            raise RequestItemError(
                f"content must be a string or a list of parts, got {type(content).__name__}.", number, "messages"
            )
        conversation.append({"role": message["role"], "content": content_item(content, number, settings, "messages")})
    return [conversation]


def _segment(value: Any, index: int) -> Any:
    from lco_embedding.segments import SegmentSpec

    try:
        return SegmentSpec.from_json(value)
    except (ValueError, TypeError) as e:
        raise RequestItemError(str(e), index) from e


def _text(text: str, index: int, settings: ServerSettings, field: str = "input") -> str:
    if not text.strip():
        raise RequestItemError("empty text; give at least one non-blank character.", index, field)
    if len(text.encode("utf-8")) > settings.max_item_bytes:
        raise RequestItemError(
            f"the text is larger than this server's limit of {settings.max_item_bytes:,} bytes.", index, field
        )
    return text


def _media(modality: str, value: Any, index: int, settings: ServerSettings) -> str:
    if not isinstance(value, str):
        raise RequestItemError(f"'{modality}' must be a data URI or URL string, got {type(value).__name__}.", index)
    mime = "application/pdf" if modality == PDF else f"{modality}/..."
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if not header.endswith(";base64"):
            raise RequestItemError(f"a data URI must look like 'data:{mime};base64,<data>'.", index)
        if len(payload) * 3 // 4 > settings.max_item_bytes:
            raise RequestItemError(
                f"the {modality} is larger than this server's limit of {settings.max_item_bytes:,} bytes.", index
            )
        return value
    if value.startswith(("http://", "https://")):
        if not settings.allow_url:
            raise RequestItemError(
                f"remote URLs are not fetched by this server; send the {modality} as a data URI, or start the server "
                "with --allow-url.",
                index,
            )
        return value
    raise RequestItemError(
        f"'{modality}' must be a data URI (data:{mime};base64,...)"
        + (" or an http(s) URL" if settings.allow_url else "")
        + "; the server does not read files on its own disk.",
        index,
    )


def resolve_media(item: Any, index: int, settings: ServerSettings, field: str = "input") -> Any:
    """Download the URLs of an item — a dict item, a list of content parts or a conversation — in a worker thread,
    not on the event loop; data URIs stay as they are.

    Raises:
        RequestItemError: A URL that is refused or cannot be fetched.
    """
    if isinstance(item, list):
        return [_resolved_entry(entry, index, settings, field) for entry in item]
    resolved = dict(item)
    for modality in (*MEDIA_MODALITIES, PDF):
        value = item.get(modality)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            resolved[modality] = _fetched(value, index, settings, field)
    return resolved


def _resolved_entry(entry: dict[str, Any], index: int, settings: ServerSettings, field: str) -> dict[str, Any]:
    """A content part with its URL fetched, or a message with its parts'."""
    if "role" in entry:
        return {**entry, "content": [_resolved_entry(part, index, settings, field) for part in entry["content"]]}
    modality = entry.get("type")
    value = entry.get(modality) if isinstance(modality, str) else None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return {**entry, modality: _fetched(value, index, settings, field)}
    return entry


def _fetched(url: str, index: int, settings: ServerSettings, field: str) -> bytes:
    try:
        return fetch(url, settings)
    except FetchError as e:
        raise RequestItemError(str(e), index, field) from e


def item_texts(item: Any) -> list[str]:
    """The texts of a parsed item (a dict item, a list of content parts, or a conversation), in order."""
    if isinstance(item, dict):
        text = item.get("text")
        return [text] if isinstance(text, str) else []
    found = []
    for entry in item:
        found += item_texts(entry["content"]) if "role" in entry else item_texts(entry)
    return found
