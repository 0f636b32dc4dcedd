"""Input parsing: what each item is (:func:`infer_modality`), and the one message builder.

Every accepted form of input is turned into a :class:`ParsedItem` — an ordered list of content parts — and
:func:`build_messages` turns a parsed item into the chat messages of the reference pipeline. No media is
loaded here (that is :mod:`lco_embedding.preprocessing`), but a string that looks like a local media path and
does not exist is refused here, so that a typo never gets embedded as text.

Does not handle text pairs (``(query, document)`` tuples): encode each side on its own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, TypeAlias

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
    item_modality,
    page_modalities,
    spec_of,
)
from lco_embedding.core.types import MODALITIES, ItemKind, Message, Modality
from lco_embedding.inputs.budgets import AUDIO_IN_VIDEO, ITEM_BUDGETS, parse_budgets
from lco_embedding.inputs.documents import PDF, page_item
from lco_embedding.inputs.prompts import MixedSuffixRule, suffix_for
from lco_embedding.inputs.sniff import (
    MEDIA_EXTENSIONS,
    bytes_modality,
    data_uri_modality,
    extension_modality,
    file_object_modality,
    string_modality,
)

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
    "parse_item",
    "split_inputs",
    "build_messages",
]

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


def _is_frame(value: Any) -> bool:
    """True for a value a video's frame can be: an image (the row whose items can be frames), in any form."""
    if isinstance(value, PILImage):
        return True
    if isinstance(value, np.ndarray | torch.Tensor):
        return _array_modality(value) in _FRAME_MODALITIES
    if isinstance(value, str | PurePath):
        text = str(value)
        named = data_uri_modality(text) if text.startswith("data:") else extension_modality(text)
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
        return string_modality(item)
    if isinstance(item, PurePath):
        modality = extension_modality(str(item))
        if modality is None:
            raise LCOInputError(
                f"path {str(item)!r} has no known media extension; accepted: "
                f"{MEDIA_EXTENSIONS}. Pass it as "
                "{'image': path}, {'audio': path} or {'video': path} to say what it is."
            )
        return modality
    if isinstance(item, io.IOBase):
        return file_object_modality(item)
    if isinstance(item, bytes | bytearray):
        return bytes_modality(item)
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
            return item_modality(page_modalities(item))  # type: ignore[return-value]
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
