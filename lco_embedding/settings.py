"""The embedder's settings in one frozen object: what decides an embedding (saved with a checkpoint, recorded in a
corpus manifest, the sentence-transformers module's config) and the bounds on reading inputs (not saved).

:class:`EmbedderSettings` is the one source of :meth:`LCOEmbedder.settings`, of ``lco_embedding_config.json`` and
of the preprocessors' options (:meth:`~EmbedderSettings.image_options` ...). Values saved with a checkpoint apply
unless the constructor is given another value than the default (:meth:`~EmbedderSettings.resolve`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from lco_embedding.budgets import ItemLimits
from lco_embedding.preprocessing.audio import AudioOptions
from lco_embedding.preprocessing.image import MAX_IMAGE_PIXELS, ImageOptions
from lco_embedding.preprocessing.sources import MAX_URL_BYTES, URL_TIMEOUT, ReadLimits
from lco_embedding.preprocessing.video import VIDEO_MAX_TOKENS, VideoOptions
from lco_embedding.prompts import MixedSuffixRule
from lco_embedding.special_tokens import SPECIAL_TOKEN_POLICIES, SpecialTokenPolicy

__all__ = ["SETTINGS_FILE", "EmbedderSettings", "Preprocessing"]

SETTINGS_FILE = "lco_embedding_config.json"
"""Where a checkpoint folder keeps the settings that decide its embeddings (written by ``save_pretrained``)."""

Preprocessing = Literal["reference", "fast"]


@dataclass(frozen=True)
class EmbedderSettings:
    """Every option of :class:`~lco_embedding.LCOEmbedder` about inputs (see the constructor's docstring).

    The first eleven decide the embeddings (:meth:`saved`); the last five only bound reading.
    """

    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 1280 * 28 * 28
    video_fps: float = 2.0
    video_max_frames: int = 768
    video_max_pixels: int = 768 * 28 * 28
    max_audio_seconds: float | None = 300.0
    max_length: int | None = 300
    mixed_suffix: MixedSuffixRule = "reference"
    special_tokens: SpecialTokenPolicy = "text"
    preprocessing: Preprocessing = "reference"
    use_audio_in_video: bool | Literal["auto"] = False
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_item_pixels: int | None = None
    max_video_tokens: int = VIDEO_MAX_TOKENS
    url_timeout: float = URL_TIMEOUT
    max_url_bytes: int = MAX_URL_BYTES

    SAVED = (
        "min_pixels",
        "max_pixels",
        "video_fps",
        "video_max_frames",
        "video_max_pixels",
        "max_audio_seconds",
        "max_length",
        "mixed_suffix",
        "special_tokens",
        "preprocessing",
        "use_audio_in_video",
    )
    """The settings that decide an embedding: saved with a checkpoint and compared when a corpus job resumes."""

    def __post_init__(self) -> None:
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise ValueError(f"max_length must be a positive integer or None, got {self.max_length!r}.")
        if self.mixed_suffix not in ("reference", "dominant"):
            raise ValueError(f"mixed_suffix must be 'reference' or 'dominant', got {self.mixed_suffix!r}.")
        if self.special_tokens not in SPECIAL_TOKEN_POLICIES:
            raise ValueError(f"special_tokens must be 'text' or 'parse', got {self.special_tokens!r}.")
        if self.preprocessing not in ("reference", "fast"):
            raise ValueError(f"preprocessing must be 'reference' or 'fast', got {self.preprocessing!r}.")
        if not (isinstance(self.use_audio_in_video, bool) or self.use_audio_in_video == "auto"):
            raise ValueError(f"use_audio_in_video must be True, False or 'auto', got {self.use_audio_in_video!r}.")
        if self.max_item_pixels is not None and not (
            isinstance(self.max_item_pixels, int) and 0 < self.max_item_pixels <= self.max_image_pixels
        ):
            raise ValueError(
                f"max_item_pixels must be a positive integer at most max_image_pixels ({self.max_image_pixels:,}) or "
                f"None, got {self.max_item_pixels!r}."
            )
        self.image_options()  # the preprocessors validate their own bounds
        self.video_options()
        self.audio_options()

    @classmethod
    def resolve(cls, given: dict[str, Any], saved: dict[str, Any]) -> EmbedderSettings:
        """Settings from constructor arguments (``given``) and a checkpoint's saved ones: a saved value applies
        where the argument is the default."""
        defaults = cls()
        values = {
            name: saved[name] if name in saved and name in cls.SAVED and value == getattr(defaults, name) else value
            for name, value in given.items()
        }
        return cls(**values)

    def saved(self) -> dict[str, Any]:
        """The settings that decide the embeddings, as saved with a checkpoint."""
        return {name: getattr(self, name) for name in self.SAVED}

    def replace(self, **changes: Any) -> EmbedderSettings:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)

    def limits(self) -> ReadLimits:
        """The bounds on downloads."""
        return ReadLimits(url_timeout=self.url_timeout, max_url_bytes=self.max_url_bytes)

    def image_options(self, patch_size: int = 14) -> ImageOptions:
        """How images are read and sized."""
        return ImageOptions(
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            patch_size=patch_size,
            max_image_pixels=self.max_image_pixels,
            limits=self.limits(),
        )

    def video_options(self, patch_size: int = 14) -> VideoOptions:
        """How videos are sampled and sized."""
        return VideoOptions(
            fps=self.video_fps,
            max_frames=self.video_max_frames,
            max_pixels=self.video_max_pixels,
            patch_size=patch_size,
            max_tokens=self.max_video_tokens,
            max_frame_pixels=self.max_image_pixels,
            limits=self.limits(),
        )

    def item_limits(self) -> ItemLimits:
        """The ceilings of items' own media budgets: ``max_item_pixels`` (default: the model's ``max_pixels`` for
        images and ``video_max_pixels`` for frames, never above ``max_image_pixels``) and ``video_max_frames``."""
        cap = self.max_image_pixels

        def ceiling(own: int) -> int:
            return min(self.max_item_pixels or own, cap)

        return ItemLimits(
            pixels={"image": ceiling(self.max_pixels), "video": ceiling(self.video_max_pixels)},
            max_frames=self.video_max_frames,
        )

    def audio_options(self, sampling_rate: int = 16000) -> AudioOptions:
        """How audio is read."""
        return AudioOptions(sampling_rate=sampling_rate, max_seconds=self.max_audio_seconds, limits=self.limits())

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name."""
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names (the constructor's keyword arguments)."""
        return [f.name for f in fields(cls)]
