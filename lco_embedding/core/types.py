"""Type aliases of the inputs :meth:`LCOEmbedder.encode` accepts, declared once.

See ``docs/inputs.md`` for how each form is interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal, TypeAlias, TypedDict, Union

import numpy as np
import torch
from PIL.Image import Image as PILImage

from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITIES, Modality

__all__ = [
    "MEDIA_MODALITIES",
    "MODALITIES",
    "AudioArray",
    "AudioInput",
    "ContentPart",
    "ImageInput",
    "ItemKind",
    "Message",
    "Modality",
    "MultimodalInput",
    "PathInput",
    "SingleInput",
    "TextInput",
    "VideoInput",
]


ItemKind: TypeAlias = Literal["text", "image", "audio", "video", "mixed", "parts", "conversation"]
"""What an input item turned out to be once parsed."""


PathInput: TypeAlias = Union[str, "PathLike[str]"]
TextInput: TypeAlias = str
ImageInput: TypeAlias = PathInput | bytes | PILImage | np.ndarray | torch.Tensor
"""Path, URL, ``file://`` or ``data:image/...`` URI, raw bytes, PIL image, HWC array or CHW tensor."""


class AudioArray(TypedDict):
    """A waveform with its sampling rate: ``(samples,)``, ``(channels, samples)`` or ``(samples, channels)``."""

    array: np.ndarray | torch.Tensor
    sampling_rate: int


AudioInput: TypeAlias = PathInput | bytes | AudioArray | np.ndarray | torch.Tensor
"""Path, URL, ``data:audio/...`` URI, raw bytes, or a waveform (a bare array is taken as 16 kHz)."""
VideoInput: TypeAlias = PathInput | bytes | Sequence[ImageInput] | np.ndarray | torch.Tensor
"""Path, URL, raw bytes, a list of frames, or a ``(T, H, W, C)`` array / ``(T, C, H, W)`` tensor."""


class MultimodalInput(TypedDict, total=False):
    """One item combining modalities; each value may also be a list (e.g. several images)."""

    text: str | list[str]
    image: ImageInput | list[ImageInput]
    audio: AudioInput | list[AudioInput]
    video: VideoInput | list[VideoInput]


ContentPart: TypeAlias = dict[str, Any]
"""A part in Qwen's chat format, e.g. ``{"type": "image", "image": ...}`` or ``{"type": "text", "text": ...}``."""
Message: TypeAlias = dict[str, Any]
"""A chat turn: ``{"role": "user", "content": [ContentPart, ...]}``."""

SingleInput: TypeAlias = (
    TextInput | ImageInput | AudioInput | VideoInput | MultimodalInput | list[ContentPart] | list[Message]
)
"""Any one item ``encode`` accepts."""
