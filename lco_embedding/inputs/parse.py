"""Input parsing: what each item is (:func:`infer_modality`), and the one message builder.

Every accepted form of input is turned into a :class:`ParsedItem` — an ordered list of content parts — and
:func:`build_messages` turns a parsed item into the chat messages of the reference pipeline. No media is
loaded here (that is :mod:`lco_embedding.preprocessing`), but a string that looks like a local media path and
does not exist is refused here, so that a typo never gets embedded as text.

Does not handle text pairs (``(query, document)`` tuples): encode each side on its own.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, TypeAlias
from urllib.parse import urlparse

import numpy as np
import torch
from PIL.Image import Image as PILImage

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.files import local_file
from lco_embedding.core.modalities import (
    AUDIO_EXTENSIONS,
    IMAGE_EXTENSIONS,
    MEDIA_MODALITIES,
    MIXED_ORDER,
    MODALITY_TABLE,
    SOUND,
    TEXT,
    VIDEO_EXTENSIONS,
    spec_of,
)
from lco_embedding.core.types import MODALITIES, ItemKind, Message, Modality
from lco_embedding.inputs.budgets import AUDIO_IN_VIDEO, ITEM_BUDGETS, parse_budgets
from lco_embedding.inputs.documents import PDF, is_pdf, page_item, whole_document_problem
from lco_embedding.inputs.prompts import MixedSuffixRule, suffix_for

__all__ = [
    "IMAGE_EXTENSIONS",
    "AUDIO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ITEM_BUDGETS",
    "AUDIO_IN_VIDEO",
    "AudioInVideo",
    "check_audio_in_video",
    "Part",
    "ParsedItem",
    "infer_modality",
    "local_media_path",
    "looks_like_file",
    "parse_item",
    "sniff_modality",
    "split_inputs",
    "build_messages",
    "describe_item",
]

_EXTENSIONS: dict[Modality, tuple[str, ...]] = {
    name: spec.extensions for name, spec in MODALITY_TABLE.items() if spec.extensions
}
_MEDIA_EXTENSIONS = ", ".join(ext for extensions in _EXTENSIONS.values() for ext in extensions)
AudioInVideo: TypeAlias = bool | Literal["auto"]
"""Whether a video is embedded with its sound track: True (it must have one), False, or ``"auto"`` (when it has)."""
_ITEM_KEYS = {*ITEM_BUDGETS, AUDIO_IN_VIDEO}

# Mixed dicts put media first, then text (image-before-text as in the authors' training; mteb 2.x's order).
_ACCEPTED = (
    "a string (text, or a path/URL/data URI of an image, audio or video file), a PIL image, an array or "
    "tensor, bytes, a dict with any of 'text'/'image'/'audio'/'video', {'array': ..., 'sampling_rate': ...}, "
    "a list of content parts [{'type': 'image', 'image': ...}, ...] or a conversation [{'role': 'user', "
    "'content': [...]}]"
)


@dataclass
class Part:
    """One piece of content: text, or a media source still to be loaded."""

    modality: Modality
    value: Any

    @property
    def is_media(self) -> bool:
        """True for an image, audio or video part."""
        return spec_of(self.modality).is_media


@dataclass
class ParsedItem:
    """An input item in canonical form.

    Attributes:
        kind: What the item was given as.
        parts: Its content in message order (for a conversation: its media parts, in order of appearance).
        conversation: The messages of a conversation item, used as given (no prompt, no suffix).
        budgets: Per-item media settings (``fps``, ``max_frames``, ``min_pixels``, ``max_pixels``).
        audio_in_video: The item's ``use_audio_in_video``, when it gives one.
    """

    kind: ItemKind
    parts: list[Part]
    conversation: list[Message] | None = field(default=None, repr=False)
    budgets: dict[str, Any] = field(default_factory=dict)
    """Per-item media settings (:data:`ITEM_BUDGETS`) that override the model's for this item."""
    audio_in_video: AudioInVideo | None = None
    """Whether its videos are embedded with their sound tracks; None: the model's (or the call's) setting."""

    @property
    def modalities(self) -> set[Modality]:
        """The modalities present in the item."""
        return {part.modality for part in self.parts}

    @property
    def media(self) -> list[Part]:
        """The non-text parts, in the order the chat template will see them."""
        return [part for part in self.parts if part.is_media]

    @property
    def single_text(self) -> bool:
        """True for an item that is one text and nothing else."""
        return self.kind != "conversation" and len(self.parts) == 1 and not self.parts[0].is_media

    def with_sound(self, setting: AudioInVideo) -> AudioInVideo:
        """Whether its videos are embedded with their sound tracks: its own ``use_audio_in_video`` where it gives
        one, else ``setting`` (the call's settings: :meth:`~lco_embedding.pipeline.settings.EmbedderSettings.for_call`).
        """
        return setting if self.audio_in_video is None else self.audio_in_video


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://")) and not any(c.isspace() for c in text)


def _extension_modality(path: str) -> Modality | None:
    lower = path.lower()
    for modality, extensions in _EXTENSIONS.items():
        if lower.endswith(extensions):
            return modality
    return None


_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")


def _string_modality(text: str) -> Modality:
    """Decide whether a string is text or a reference to a media file (see docs/inputs.md)."""
    if is_pdf(text) and (text.startswith(("data:", "http://", "https://")) or local_media_path(text) is not None):
        raise LCOInputError(whole_document_problem(text))
    if text.startswith("data:"):
        return _data_uri_modality(text) or TEXT.name
    if _is_url(text):
        try:
            url_path = urlparse(text).path
        except ValueError:
            return TEXT.name
        return _extension_modality(url_path) or TEXT.name
    path = local_media_path(text)
    if path is not None:
        modality = _extension_modality(path)
        if modality is not None:
            return modality
        raise LCOInputError(
            f"{text!r} is an existing file with an unknown extension ({os.path.splitext(path)[1]}; media files end "
            f"in {_MEDIA_EXTENSIONS}). Pass {{'image': path}}, {{'audio': path}} or {{'video': path}} if it is one of "
            "those, or {'text': ...} (or modality='text') to embed the string itself as text."
        )
    candidate = local_file(text).rstrip()
    modality = _extension_modality(candidate)
    if modality is None or (any(c.isspace() for c in candidate) and not text.startswith("file://")):
        return TEXT.name
    if os.path.isdir(candidate):
        raise LCOInputError(
            f"{text!r} is a folder, not {_article(modality)} file: pass the files in it one by one (lco-embed encode "
            f"and encode_corpus take folders), or {{'text': {text!r}}} (or modality='text') to embed the string."
        )
    raise LCOInputError(
        f"{text!r} looks like a path to {_article(modality)} file, but no such file exists. Fix the path, or pass "
        f"{{'text': {text!r}}} (or modality='text') to embed the string as text."
    )


def looks_like_file(text: str) -> bool:
    """True when ``text`` ends in something like a file extension (``.png``, ``.m4v``): only such strings can name a
    file as an input, so only they are looked up on disk."""
    return _SUFFIX.search(text.rstrip()) is not None


def local_media_path(text: str) -> str | None:
    """The path of an existing file (or FIFO, socket, link: reading it says what is wrong) that ``text`` names,
    or None. Whatever characters the path holds, spaces included; ``file://`` URLs are decoded, and trailing
    whitespace is dropped only when the path with it does not exist (:func:`lco_embedding.core.files.local_file`). Only
    strings ending in an extension (``.png``, ``.m4v``, ...) are looked up, so ordinary text costs no file-system
    call."""
    if len(text) > 4096 or "\x00" in text or not looks_like_file(text):
        return None
    path = local_file(text)
    return path if os.path.lexists(path) and not os.path.isdir(path) else None


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


_MAGIC = [(name, re.compile(spec.magic, re.DOTALL)) for name, spec in MODALITY_TABLE.items() if spec.magic]


def sniff_modality(head: bytes) -> Modality | None:
    """The media modality a file's first bytes say it holds (its container's signature: PNG, JPEG, WAV, MP3,
    FLAC, Ogg, MP4 and its audio brands, Matroska/WebM, AVI, ...), or None when they say nothing known.

    Example:
        >>> sniff_modality(b"RIFF" + bytes(4) + b"WAVEfmt ")
        'audio'
    """
    for modality, pattern in _MAGIC:
        if pattern.match(head):
            return modality
    return None


def _bytes_modality(data: bytes | bytearray) -> Modality:
    """Bytes given bare: the modality their signature names, else an image (whose decoder then says what it
    cannot read, and how to name another modality)."""
    if is_pdf(data):
        raise LCOInputError(whole_document_problem(data))
    return sniff_modality(bytes(data[:32])) or _FRAME_MODALITIES[0]


def _file_object_modality(item: io.IOBase) -> Modality:
    """A binary file object is media: named by its file's extension, or by its first bytes when it has no name (an
    image when they say nothing known, as for bytes)."""
    if isinstance(item, io.TextIOBase):
        raise LCOInputError(
            f"{describe_item(item)} is open in text mode; open media files in binary mode ('rb'), or pass text "
            "as a string."
        )
    name = getattr(item, "name", None)
    if not isinstance(name, str):
        return _bytes_modality(_peek(item))
    modality = _extension_modality(name)
    if modality is None:
        raise LCOInputError(
            f"{describe_item(item)} has an unknown extension; pass it as {{'image': f}}, {{'audio': f}} or "
            "{'video': f} to say what it is."
        )
    return modality


def _peek(item: io.IOBase) -> bytes:
    """The first bytes of a seekable binary file object, its position kept (nothing for an unseekable one)."""
    try:
        if not item.seekable():
            return b""
        position = item.tell()
        head = item.read(32)
        item.seek(position)
    except (OSError, ValueError):
        return b""
    return head if isinstance(head, bytes) else b""


def describe_item(item: Any, width: int = 120) -> str:
    """A short description of an input for messages: file objects by their file's name, bytes and arrays by size,
    long strings cut (never ``<_io.BytesIO object at 0x...>``).

    Example:
        >>> describe_item({"text": "a caption", "image": b"\\x89PNG..."})
        "{'text': 'a caption', 'image': <7 bytes>}"
    """

    def short(value: Any) -> str:
        if isinstance(value, io.IOBase):
            name = getattr(value, "name", None)
            return f"<file {name!r}>" if isinstance(name, str) else f"<in-memory file ({type(value).__name__})>"
        if isinstance(value, bytes | bytearray):
            return f"<{len(value):,} bytes>"
        if isinstance(value, np.ndarray | torch.Tensor):
            return f"<{type(value).__name__} {'x'.join(map(str, value.shape))} {value.dtype}>"
        if isinstance(value, PILImage):
            return f"<PIL image {value.width}x{value.height} {value.mode}>"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {short(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list | tuple) and value:
            inner = ", ".join(short(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
            return f"[{inner}]"
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    shown = short(item)
    return shown if len(shown) <= width else shown[: width - 3] + "..."


def _is_frame(value: Any) -> bool:
    """True for a value a video's frame can be: an image (the row whose items can be frames), in any form."""
    if isinstance(value, PILImage):
        return True
    if isinstance(value, np.ndarray | torch.Tensor):
        return _array_modality(value) in _FRAME_MODALITIES
    if isinstance(value, str | PurePath):
        text = str(value)
        named = _data_uri_modality(text) if text.startswith("data:") else _extension_modality(text)
        return named in _FRAME_MODALITIES
    return False


def _is_frame_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(_is_frame(v) for v in value)


def _is_parts_list(value: Any) -> bool:
    return (
        isinstance(value, list | tuple) and len(value) > 0 and all(isinstance(v, dict) and "type" in v for v in value)
    )


def _is_conversation(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(isinstance(v, dict) and "role" in v and "content" in v for v in value)
    )


def infer_modality(item: Any) -> ItemKind:
    """Return what an input item is, without loading anything.

    Args:
        item: One input (see :data:`lco_embedding.core.types.SingleInput`).

    Returns:
        ``"text"``, ``"image"``, ``"audio"``, ``"video"``, ``"mixed"`` (a dict with several modalities),
        ``"parts"`` (a list of content parts) or ``"conversation"``.

    Raises:
        LCOInputError: If the item is of no accepted form, or is a string naming a missing media file.

    Example:
        >>> infer_modality("a cat on a mat")
        'text'
        >>> infer_modality({"text": "caption", "image": "https://example.com/cat.png"})
        'mixed'
    """
    if isinstance(item, str):
        return _string_modality(item)
    if isinstance(item, PurePath):
        modality = _extension_modality(str(item))
        if modality is None:
            raise LCOInputError(
                f"path {str(item)!r} has no known media extension; accepted: "
                f"{_MEDIA_EXTENSIONS}. Pass it as "
                "{'image': path}, {'audio': path} or {'video': path} to say what it is."
            )
        return modality
    if isinstance(item, io.IOBase):
        return _file_object_modality(item)
    if isinstance(item, bytes | bytearray):
        return _bytes_modality(item)
    if isinstance(item, PILImage):
        return _FRAME_MODALITIES[0]
    if isinstance(item, np.ndarray | torch.Tensor):
        found = _array_modality(item)
        if found is None:
            raise LCOInputError(
                f"an array of {item.ndim} dimensions is not an input: use 1-D (audio at 16 kHz), 3-D (an HWC image "
                "array or CHW tensor) or 4-D (video frames)."
            )
        return found
    if isinstance(item, dict):
        if "role" in item and "content" in item:
            return "conversation"
        if "type" in item:
            return "parts"
        if PDF in item:  # a page of a document: its image (and with pdf_text, its text)
            return "mixed" if item.get("pdf_text") else _FRAME_MODALITIES[0]
        if "array" in item:
            if "sampling_rate" not in item:
                raise LCOInputError(
                    "a dict with 'array' needs 'sampling_rate' too: {'array': waveform, 'sampling_rate': 22050}."
                )
            return SOUND.name  # a waveform with its rate
        keys = set(item) - _ITEM_KEYS
        unknown = keys - set(MODALITIES)
        if unknown or not keys:
            raise LCOInputError(
                f"dict keys {sorted(map(str, unknown or set(item)))} are not understood; a dict takes any of "
                "'text', 'image', 'audio', 'video' (several = one mixed input), e.g. {'text': 'caption', "
                "'image': 'cat.jpg'}, and per-item media settings "
                f"{', '.join(map(repr, [*ITEM_BUDGETS, AUDIO_IN_VIDEO]))}."
            )
        return next(iter(keys)) if len(keys) == 1 else "mixed"  # type: ignore[return-value]
    if _is_parts_list(item):
        return "parts"
    if _is_conversation(item):
        return "conversation"
    if _is_frame_list(item):
        return _FRAMED_MODALITIES[0]
    raise LCOInputError(f"unsupported input of type {type(item).__name__}; accepted: {_ACCEPTED}.")


_FRAME_MODALITIES: tuple[Modality, ...] = tuple(name for name, spec in MODALITY_TABLE.items() if spec.frame)
"""The modalities whose items can be a video's frames (images)."""
_FRAMED_MODALITIES: tuple[Modality, ...] = tuple(name for name, spec in MODALITY_TABLE.items() if spec.frames)
"""The modalities a list of frames is (video)."""


def _array_modality(array: np.ndarray | torch.Tensor) -> Modality | None:
    """The modality of a bare array by its number of dimensions (the table's ``array_ndims``); where two rows take
    that many, a 2-D uint8 numpy array belongs to the one with ``uint8_planes`` (a grayscale image), any other to
    the first (audio channels)."""
    rows = [spec for spec in MODALITY_TABLE.values() if array.ndim in spec.array_ndims]
    planes = isinstance(array, np.ndarray) and array.dtype == np.uint8
    rows.sort(key=lambda spec: spec.uint8_planes != planes) if len(rows) > 1 else None
    return rows[0].name if rows else None


def _data_uri_modality(text: str) -> Modality | None:
    """The media modality a data URI's MIME type names (``data:audio/wav;...``), or None."""
    kind = text[5:].split(";", 1)[0].split(",", 1)[0].split("/", 1)[0]
    return kind if kind in MEDIA_MODALITIES else None  # type: ignore[return-value]


def _text_part(value: Any) -> Part:
    if not isinstance(value, str):
        raise LCOInputError(f"text must be a string, got {type(value).__name__}.")
    if not value.strip():
        raise LCOInputError("empty text; give at least one non-blank character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise LCOInputError(
            f"the text holds a lone surrogate ({value[e.start]!r} at character {e.start}), which is not valid "
            "Unicode: decode the source bytes with errors='replace' (or 'surrogatepass' and re-encode) first."
        ) from None
    return Part(TEXT.name, value)


def _values(modality: Modality, value: Any) -> list[Any]:
    """Split a dict value into the list of items it holds (a frame list is one video)."""
    if spec_of(modality).frames and _is_frame_list(value):
        return [value]
    if isinstance(value, list | tuple):
        if not value:
            raise LCOInputError(f"the {modality!r} list is empty.")
        return list(value)
    return [value]


def _parts_from_content(content: Iterable[dict[str, Any]]) -> list[Part]:
    parts = []
    for piece in content:
        kind = piece.get("type")
        if MODALITY_TABLE.get(kind) is TEXT:
            parts.append(_text_part(piece.get(kind)))
        elif kind in MEDIA_MODALITIES:
            if kind not in piece:
                raise LCOInputError(f"content part {piece!r} has no {kind!r} key with the {kind} itself.")
            parts.append(Part(kind, piece[kind]))
        else:
            raise LCOInputError(
                f"content part type {kind!r} is not understood; use 'text', 'image', 'audio' or 'video'."
            )
    return parts


def parse_item(item: Any, modality: Modality | None = None) -> ParsedItem:
    """Parse one input item into a :class:`ParsedItem` (no media is loaded).

    Args:
        item: One input.
        modality: Forces the modality of a bare (non-dict) item, e.g. ``"text"`` for a string that looks
            like a file name.

    Raises:
        LCOInputError: If the item is malformed (the message says what is accepted); an item that is itself an
            :class:`LCOInputError` (a source that failed before it could be given, e.g. while being cut into
            segments) is raised as it is.
    """
    if isinstance(item, LCOInputError):
        raise item
    if modality is not None:
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES} or None, got {modality!r}.")
        if not isinstance(item, dict | list | tuple) or (spec_of(modality).frames and _is_frame_list(item)):
            return ParsedItem(modality, [_part(modality, item)])
    kind = infer_modality(item)
    if isinstance(item, str) and kind not in MEDIA_MODALITIES:
        return ParsedItem(kind, [_text_part(item)])
    if kind in MEDIA_MODALITIES and not isinstance(item, dict):
        return ParsedItem(kind, [Part(kind, local_file(item) if isinstance(item, str) else item)])
    if "array" in item:  # a waveform with its rate (infer_modality checked the form)
        return ParsedItem(kind, [Part(kind, item)])
    if kind == "parts":
        parts = _parts_from_content([item] if isinstance(item, dict) else item)
        return ParsedItem("parts", parts)
    if kind == "conversation":
        messages = [item] if isinstance(item, dict) else list(item)
        media: list[Part] = []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                continue
            media.extend(p for p in _parts_from_content(content) if p.is_media)
        return ParsedItem("conversation", media, conversation=messages)
    if PDF in item:
        item = page_item(item)
    # A dict of modalities: media first (video, audio, image), then text.
    parts = []
    for key in MIXED_ORDER:
        if key in item:
            parts.extend(_part(key, value) for value in _values(key, item[key]))
    kind = "mixed" if len(parts) > 1 else parts[0].modality
    present = {part.modality for part in parts}
    return ParsedItem(kind, parts, budgets=parse_budgets(item, present), audio_in_video=_audio_in_video(item, present))


def _part(modality: Modality, value: Any) -> Part:
    """A part of ``modality``: text checked as text, media kept to be loaded."""
    return Part(modality, value) if spec_of(modality).is_media else _text_part(value)


def check_audio_in_video(value: Any, name: str = AUDIO_IN_VIDEO) -> AudioInVideo:
    """``value`` if it is a valid :data:`AudioInVideo` (True, False or ``"auto"``).

    Raises:
        LCOInputError: It is not.
    """
    if isinstance(value, bool) or value == "auto":
        return value
    raise LCOInputError(f"{name!r} must be true, false or 'auto', got {value!r}.")


def _audio_in_video(item: dict[str, Any], present: set[Modality]) -> AudioInVideo | None:
    if AUDIO_IN_VIDEO not in item:
        return None
    value = check_audio_in_video(item[AUDIO_IN_VIDEO])
    if not any(spec_of(modality).sound == "track" for modality in present):
        raise LCOInputError(
            f"{AUDIO_IN_VIDEO!r} applies to a video and this item has none; leave it out or add the video."
        )
    return value


def split_inputs(inputs: Any) -> tuple[Iterable[Any], bool]:
    """Split what was passed to ``encode`` into an iterable of items, and say whether it was a single item.

    A string, dict, PIL image, array, bytes or path is one item; so is a list of content parts or a
    conversation. Any other list, tuple or iterable is a batch of items; iterators and generators are returned
    as they are, to be read lazily.
    """
    single_types = (str, bytes, bytearray, dict, PILImage, np.ndarray, torch.Tensor, PurePath, io.IOBase)
    if isinstance(inputs, single_types) or _is_parts_list(inputs) or _is_conversation(inputs):
        return [inputs], True
    try:
        iter(inputs)
    except TypeError:
        return [inputs], True
    return inputs, False


def _media_content(part: Part, placeholder: Any) -> dict[str, Any]:
    return {"type": part.modality, part.modality: placeholder}


def build_messages(
    item: ParsedItem,
    *,
    prompt: str | None = None,
    mixed_suffix: MixedSuffixRule = "reference",
    truncate: Callable[[str], str] = lambda text: text,
) -> list[Message]:
    """Build the chat messages of the reference pipeline for one parsed item.

    The content is: the task instruction (``prompt``) if any, the item's parts in order (user text passed
    through ``truncate``), then the suffix from :mod:`lco_embedding.inputs.prompts`. Media parts carry their
    :class:`Part` (only their type matters to the chat template). A conversation is returned as given.

    Example:
        >>> build_messages(parse_item("a cat"))[0]["content"]
        [{'type': 'text', 'text': 'a cat\\nSummarize the above text in one word:'}]
    """
    if item.kind == "conversation":
        return item.conversation or []
    content: list[dict[str, Any]] = []
    text = prompt or ""
    for part in item.parts:
        if not part.is_media:
            text += truncate(part.value)
            continue
        if text:
            content.append({"type": "text", "text": text})
            text = ""
        content.append(_media_content(part, part))
    text += suffix_for(item.modalities, mixed_suffix)
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]
