"""Per-item media budgets: the keys a dict item may carry to override the model's media settings for that item
(``fps``, ``max_frames``, ``min_pixels``, ``max_pixels``), their ranges, and the ceilings no item may pass.

Two checks, both before anything is read: :func:`parse_budgets` when an item is parsed (type, finite, positive, a
key that applies to a medium of the item), and :meth:`ItemLimits.check` when its media are about to be loaded,
against the model's ceilings (an image's or a frame's pixels, the frames of a video). The total visual tokens of a
video are checked by the video preprocessor, from the stream's header (:func:`lco_embedding.preprocessing.video.
frame_size`), so that no budget can make resizing or decoding allocate more than the limits allow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import MODALITY_TABLE, Modality, spec_of

__all__ = ["AUDIO_IN_VIDEO", "ITEM_BUDGETS", "MAX_ITEM_FPS", "ItemLimits", "parse_budgets"]

_KINDS: dict[str, type] = {"fps": float, "max_frames": int, "min_pixels": int, "max_pixels": int}
ITEM_BUDGETS: dict[str, tuple[type, tuple[Modality, ...]]] = {
    name: (kind, tuple(spec.name for spec in MODALITY_TABLE.values() if name in spec.budgets))
    for name, kind in _KINDS.items()
}
"""Keys a dict item may carry beside its modalities, overriding the model's media settings for that item only:
name -> (type, the modalities it applies to: the rows of the modality table that list it)."""

AUDIO_IN_VIDEO = "use_audio_in_video"
"""The key of a dict item that says whether its videos are embedded with their sound tracks."""

MAX_ITEM_FPS = 60.0
"""The highest ``fps`` an item may ask for (frames sampled per second of its video)."""


def parse_budgets(item: dict[str, Any], present: set[Modality]) -> dict[str, Any]:
    """The per-item media settings of a dict item, checked: a finite positive number (an integer for frames and
    pixels; ``fps`` at most :data:`MAX_ITEM_FPS`, ``max_frames`` at least 2) that applies to a medium of the item.

    Raises:
        LCOInputError: A value or key that breaks these rules (the message names the key and the range).
    """
    budgets: dict[str, Any] = {}
    for name, (kind, modalities) in ITEM_BUDGETS.items():
        if name not in item:
            continue
        value = item[name]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or (kind is int and not float(value).is_integer()) or value <= 0:
            what = "a positive integer" if kind is int else "a positive finite number"
            raise LCOInputError(f"{name!r} must be {what}, got {value!r}.")
        if name == "fps" and value > MAX_ITEM_FPS:
            raise LCOInputError(f"'fps' must be at most {MAX_ITEM_FPS:g} frames per second, got {value!r}.")
        if name == "max_frames" and value < 2:
            raise LCOInputError(f"'max_frames' must be at least 2 (a video needs two frames), got {value!r}.")
        if not present & set(modalities):
            raise LCOInputError(
                f"{name!r} applies to {' and '.join(modalities)} and this item has none; leave it out or add the "
                f"{modalities[0]}."
            )
        budgets[name] = kind(value)
    return budgets


@dataclass(frozen=True)
class ItemLimits:
    """The ceilings of per-item budgets (from the embedder's settings: ``max_item_pixels``, ``video_max_frames``).

    Attributes:
        pixels: Per modality (image, video), the most pixels an item's ``min_pixels`` / ``max_pixels`` may ask for
            an image or for each frame of a video.
        max_frames: The most frames an item's ``max_frames`` may ask for.
    """

    pixels: dict[str, int]
    max_frames: int

    def check(self, modality: str, changes: dict[str, Any]) -> None:
        """Refuse an item's budgets for ``modality`` above the ceilings.

        Raises:
            LCOInputError: A budget above its ceiling (the message names the key, the ceiling and the setting that
                raises it).
        """
        for name, value in changes.items():
            if name == "max_frames":
                ceiling, unit, setting = self.max_frames, "video frames", "video_max_frames"
            elif name in ("min_pixels", "max_pixels") and modality in self.pixels:
                unit = f"pixels per {modality} frame" if spec_of(modality).frames else f"pixels per {modality}"
                ceiling, setting = self.pixels[modality], "max_item_pixels"
            else:
                continue
            if value > ceiling:
                raise LCOInputError(
                    f"{name!r} of {value:,} is above the {ceiling:,} {unit} an item's own budget may ask for: ask for "
                    f"less, or raise {setting} when loading the model."
                )
