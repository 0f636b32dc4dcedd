"""The ``input`` of a ``POST /v1/embeddings`` request, checked and turned into ``encode`` items.

Accepted: a string, a list of strings, or a list of items, each a string or an object with any of ``text``,
``image``, ``audio``, ``video`` (several = one mixed item), and optionally its own media settings (``fps``,
``max_frames``, ``min_pixels``, ``max_pixels``: :data:`lco_embedding.inputs.parse.ITEM_BUDGETS`), whether its video is
embedded with its sound track (``use_audio_in_video``: true, false or "auto"), and ``segment`` (true, or an
object such as ``{"window": 30}``: :meth:`lco_embedding.segments.SegmentSpec.from_json`) to get one embedding per
segment of a long audio, video or text. Strings are always
text: the server never reads a path a client names. Media are data URIs (``data:image/png;base64,...``), or
http(s) URLs when the server fetches URLs (:mod:`.fetch`).

Does not accept token arrays (lists of integers), which OpenAI's API also allows: send text.
"""

from __future__ import annotations

from typing import Any

from lco_embedding.core.errors import LCOError
from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITIES, is_text
from lco_embedding.inputs.parse import AUDIO_IN_VIDEO, ITEM_BUDGETS
from lco_embedding.serving.fetch import FetchError, fetch
from lco_embedding.serving.settings import ServerSettings

__all__ = ["SEGMENT", "RequestItemError", "parse_input", "resolve_media"]

SEGMENT = "segment"
"""The item key asking for one embedding per segment; :func:`parse_input` turns its value into a SegmentSpec."""
_ITEM_OPTIONS = {*ITEM_BUDGETS, AUDIO_IN_VIDEO}


class RequestItemError(LCOError, ValueError):
    """An item of a request cannot be embedded: 400, naming the item's index."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        self.reason, self.index = reason, index
        super().__init__(reason if index is None else f"input[{index}]: {reason}")


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
    if all(isinstance(e, int) for e in entries) or all(isinstance(e, list) for e in entries):
        raise RequestItemError("token arrays are not supported; send the text itself.")
    if len(entries) > settings.max_items_per_request:
        raise RequestItemError(
            f"input has {len(entries)} items; this server takes at most {settings.max_items_per_request} per request."
        )
    return [_item(entry, index, settings) for index, entry in enumerate(entries)]


def _item(entry: Any, index: int, settings: ServerSettings) -> dict[str, Any]:
    if isinstance(entry, str):
        return {"text": _text(entry, index, settings)}
    if not isinstance(entry, dict):
        raise RequestItemError(f"an item must be a string or an object, got {type(entry).__name__}.", index)
    unknown = sorted(set(entry) - set(MODALITIES) - _ITEM_OPTIONS - {SEGMENT})
    if unknown or not set(entry) & set(MODALITIES):
        raise RequestItemError(
            f"item keys {unknown or '(none)'} are not understood; an item has any of 'text', 'image', 'audio', "
            '\'video\', e.g. {"text": "a caption", "image": "data:image/png;base64,..."}, and may carry its own '
            f"media settings {', '.join(map(repr, [*ITEM_BUDGETS, AUDIO_IN_VIDEO]))} and 'segment'.",
            index,
        )
    item: dict[str, Any] = {}
    for key, part in entry.items():
        if key in _ITEM_OPTIONS:
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


def _segment(value: Any, index: int) -> Any:
    from lco_embedding.segments import SegmentSpec

    try:
        return SegmentSpec.from_json(value)
    except (ValueError, TypeError) as e:
        raise RequestItemError(str(e), index) from e


def _text(text: str, index: int, settings: ServerSettings) -> str:
    if not text.strip():
        raise RequestItemError("empty text; give at least one non-blank character.", index)
    if len(text.encode("utf-8")) > settings.max_item_bytes:
        raise RequestItemError(
            f"the text is larger than this server's limit of {settings.max_item_bytes:,} bytes.", index
        )
    return text


def _media(modality: str, value: Any, index: int, settings: ServerSettings) -> str:
    if not isinstance(value, str):
        raise RequestItemError(f"'{modality}' must be a data URI or URL string, got {type(value).__name__}.", index)
    if value.startswith("data:"):
        header, _, payload = value.partition(",")
        if not header.endswith(";base64"):
            raise RequestItemError(f"a data URI must look like 'data:{modality}/...;base64,<data>'.", index)
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
        f"'{modality}' must be a data URI (data:{modality}/...;base64,...)"
        + (" or an http(s) URL" if settings.allow_url else "")
        + "; the server does not read files on its own disk.",
        index,
    )


def resolve_media(item: dict[str, Any], index: int, settings: ServerSettings) -> dict[str, Any]:
    """Download the URLs of an item (in a worker thread, not on the event loop); data URIs stay as they are.

    Raises:
        RequestItemError: A URL that is refused or cannot be fetched.
    """
    resolved = dict(item)
    for modality in MEDIA_MODALITIES:
        value = item.get(modality)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            try:
                resolved[modality] = fetch(value, settings)
            except FetchError as e:
                raise RequestItemError(str(e), index) from e
    return resolved
