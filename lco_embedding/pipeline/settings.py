"""The embedder's settings in one frozen object: what decides an embedding (saved with a checkpoint, recorded in a
corpus manifest, the sentence-transformers module's config) and the bounds on reading inputs (not saved).

:class:`EmbedderSettings` is the one source of :meth:`LCOEmbedder.settings`, of ``lco_embedding_config.json`` and
of the preprocessors' options (:meth:`~EmbedderSettings.image_options` ...). Values saved with a checkpoint apply
unless the constructor is given another value than the default (:meth:`~EmbedderSettings.resolve`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal

from lco_embedding.inputs.budgets import ItemLimits
from lco_embedding.inputs.parse import AudioInVideo
from lco_embedding.inputs.prompts import MixedSuffixRule
from lco_embedding.inputs.special_tokens import SPECIAL_TOKEN_POLICIES, SpecialTokenPolicy
from lco_embedding.preprocessing.audio import AudioOptions
from lco_embedding.preprocessing.image import MAX_IMAGE_PIXELS, ImageOptions
from lco_embedding.preprocessing.sources import MAX_URL_BYTES, URL_TIMEOUT, ReadLimits
from lco_embedding.preprocessing.video import VIDEO_MAX_TOKENS, VideoOptions

__all__ = ["PRESETS", "PRESET_DTYPES", "SETTINGS_FILE", "EmbedderSettings", "Geometry", "Preprocessing"]

SETTINGS_FILE = "lco_embedding_config.json"
"""Where a checkpoint folder keeps the settings that decide its embeddings (written by ``save_pretrained``)."""

Preprocessing = Literal["reference", "fast"]

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # mteb 2.x's LCOEmbedding wrapper (mteb/models/model_implementations/lco_embedding_models.py): text cut to 300
    # tokens (special-token strings parsed, as its tokenizer call does), the dominant modality's suffix, audio to
    # 300 s, video at 2 fps and at most 64 frames, no sound track; images handed to the processor at its own size
    # limits (Qwen2.5-Omni's preprocessor_config: 4 x 28^2 to 16,384 x 28^2 pixels) and resized once in torch.
    "mteb": {
        "max_length": 300,
        "special_tokens": "parse",
        "mixed_suffix": "dominant",
        "max_audio_seconds": 300.0,
        "video_fps": 2.0,
        "video_max_frames": 64,
        "use_audio_in_video": False,
        "min_pixels": 4 * 28 * 28,
        "max_pixels": 16384 * 28 * 28,
        "preprocessing": "fast",
    },
    # The model card's loop: the processor on the rendered chat (special tokens parsed), no text cut, the Whisper
    # extractor's default 30 s of audio, qwen-omni-utils' defaults for images (up to 16,384 x 28^2 pixels) and video.
    "card": {
        "max_length": None,
        "special_tokens": "parse",
        "mixed_suffix": "reference",
        "max_audio_seconds": 30.0,
        "min_pixels": 4 * 28 * 28,
        "max_pixels": 16384 * 28 * 28,
        "video_fps": 2.0,
        "video_max_frames": 768,
        "video_max_pixels": 768 * 28 * 28,
        "use_audio_in_video": False,
        "preprocessing": "reference",
    },
}
"""Named bundles of settings (``LCOEmbedder(preset=...)``, ``--preset``): ``"default"`` (this package's
defaults), ``"mteb"`` (as mteb's LCO-Embedding wrapper evaluates) and ``"card"`` (the model card's loop). Settings
given by name win over the preset's; the preset's win over a checkpoint's saved settings."""
PRESET_DTYPES: dict[str, str] = {"mteb": "bfloat16"}
"""The weight dtype a preset uses when no ``dtype`` is given (mteb's wrapper loads bfloat16)."""


@dataclass(frozen=True)
class Geometry:
    """What a checkpoint fixes about media sizes: its vision patch size and its audio sampling rate."""

    patch_size: int = 14
    sampling_rate: int = 16000


def _saved(default: Any) -> Any:
    """A setting that decides the embeddings: saved with a checkpoint, compared when a corpus job resumes."""
    return field(default=default, metadata={"saved": True})


@dataclass(frozen=True)
class EmbedderSettings:
    """Every setting of :class:`~lco_embedding.LCOEmbedder` about inputs: the constructor takes each by name.

    The first twelve decide the embeddings (:meth:`saved`: written by ``save_pretrained``, recorded in corpus
    manifests); the others only bound what is read. A new setting is one field here, read by the stage it concerns.

    Attributes:
        min_pixels: Smallest image size in pixels after resizing (4·28², qwen-omni-utils').
        max_pixels: Largest image size in pixels (1280·28², the authors' evaluation setting).
        video_fps: Frames sampled per second of video (2, qwen-omni-utils').
        video_max_frames: Most frames per video (768, qwen-omni-utils').
        video_max_pixels: Largest frame size in pixels (768·28², qwen-omni-utils').
        max_audio_seconds: Audio is cut after this many seconds (300, Qwen2.5-Omni's chunk length); None keeps all.
        max_length: User text is cut to this many tokens before the prompt is built (300, as in the authors'
            evaluation and mteb); None keeps all of it. The suffix and template are never cut.
        mixed_suffix: ``"reference"`` (``"\\nSummarize the above in one word:"`` for mixed inputs) or
            ``"dominant"`` (mteb 2.x: the suffix of the dominant modality, image > video > audio > text).
        special_tokens: ``"text"`` (default): special-token strings in user text (``"<|im_end|>"``, ...) are
            tokenized as ordinary text, so every string embeds and none can close the turn; ``"parse"``: they are
            parsed as special tokens, as in the reference pipeline.
        preprocessing: ``"reference"`` (default): images resized by qwen-omni-utils with Pillow, exactly as the
            reference pipeline; ``"fast"``: resized once in torch to the reference's final size (on the model's
            GPU when it has one; ``docs/performance.md``).
        use_audio_in_video: Embed videos with their sound tracks (True: a video without one is an error naming
            the item; False: frames only, the reference's default; ``"auto"``: the sound where the item's videos
            have it). An item's own ``"use_audio_in_video"`` key, or a call's, wins.
        preset: The bundle the settings started from (:data:`PRESETS`: ``"default"``, ``"mteb"``, ``"card"``).
        max_image_pixels: Images (and video frames) larger than this, width x height as stored, are refused
            before decoding (64,000,000).
        max_item_pixels: The most pixels an item's own ``min_pixels`` / ``max_pixels`` may ask for (default: the
            model's ``max_pixels`` for images, ``video_max_pixels`` for frames; never above ``max_image_pixels``).
        max_video_tokens: The most visual tokens one video item may become (115,200), checked before decoding.
        url_timeout: Seconds a whole URL download may take (20).
        max_url_bytes: Largest URL download in bytes (256 MiB).
    """

    min_pixels: int = _saved(4 * 28 * 28)
    max_pixels: int = _saved(1280 * 28 * 28)
    video_fps: float = _saved(2.0)
    video_max_frames: int = _saved(768)
    video_max_pixels: int = _saved(768 * 28 * 28)
    max_audio_seconds: float | None = _saved(300.0)
    max_length: int | None = _saved(300)
    mixed_suffix: MixedSuffixRule = _saved("reference")
    special_tokens: SpecialTokenPolicy = _saved("text")
    preprocessing: Preprocessing = _saved("reference")
    use_audio_in_video: bool | Literal["auto"] = _saved(False)
    preset: str = _saved("default")
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_item_pixels: int | None = None
    max_video_tokens: int = VIDEO_MAX_TOKENS
    url_timeout: float = URL_TIMEOUT
    max_url_bytes: int = MAX_URL_BYTES

    def __post_init__(self) -> None:
        if self.max_length is not None and (not isinstance(self.max_length, int) or self.max_length < 1):
            raise ValueError(f"max_length must be a positive integer or None, got {self.max_length!r}.")
        if self.mixed_suffix not in ("reference", "dominant"):
            raise ValueError(f"mixed_suffix must be 'reference' or 'dominant', got {self.mixed_suffix!r}.")
        if self.special_tokens not in SPECIAL_TOKEN_POLICIES:
            raise ValueError(f"special_tokens must be 'text' or 'parse', got {self.special_tokens!r}.")
        if self.preprocessing not in ("reference", "fast"):
            raise ValueError(f"preprocessing must be 'reference' or 'fast', got {self.preprocessing!r}.")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}, got {self.preset!r}.")
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
        """Settings from constructor arguments (``given``: those passed) over a preset's (``given["preset"]``, else
        the saved one) over a checkpoint's saved ones.

        Raises:
            ValueError: An unknown name (naming the closest valid one) or a bad value.
        """
        from lco_embedding.core.keywords import check_unknown_keywords

        check_unknown_keywords("LCOEmbedder", {k: v for k, v in given.items() if k not in cls.names()}, cls.names())
        kept = {name: value for name, value in saved.items() if name in cls.SAVED}
        preset = given.get("preset", kept.get("preset", "default"))
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(map(repr, PRESETS))}, got {preset!r}.")
        return cls(**{**kept, **PRESETS[preset], **given, "preset": preset})

    SAVED: ClassVar[tuple[str, ...]]
    """The settings that decide an embedding (the fields marked saved)."""

    def saved(self) -> dict[str, Any]:
        """The settings that decide the embeddings, as saved with a checkpoint."""
        return {name: getattr(self, name) for name in self.SAVED}

    def replace(self, **changes: Any) -> EmbedderSettings:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)

    def for_call(self, use_audio_in_video: AudioInVideo | None) -> EmbedderSettings:
        """The settings a call embeds with: these, with the call's ``use_audio_in_video`` where it gives one.

        The one place the call-over-model rule is written; an item's own key wins over both
        (:meth:`~lco_embedding.inputs.parse.ParsedItem.with_sound`).
        """
        if use_audio_in_video is None or use_audio_in_video == self.use_audio_in_video:
            return self
        return self.replace(use_audio_in_video=use_audio_in_video)

    def limits(self) -> ReadLimits:
        """The bounds on downloads."""
        return ReadLimits(url_timeout=self.url_timeout, max_url_bytes=self.max_url_bytes)

    def image_options(self, geometry: Geometry = Geometry()) -> ImageOptions:
        """How images are read and sized."""
        return ImageOptions(
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            patch_size=geometry.patch_size,
            max_image_pixels=self.max_image_pixels,
            limits=self.limits(),
        )

    def video_options(self, geometry: Geometry = Geometry()) -> VideoOptions:
        """How videos are sampled and sized."""
        return VideoOptions(
            fps=self.video_fps,
            max_frames=self.video_max_frames,
            max_pixels=self.video_max_pixels,
            patch_size=geometry.patch_size,
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

    def audio_options(self, geometry: Geometry = Geometry()) -> AudioOptions:
        """How audio is read."""
        return AudioOptions(
            sampling_rate=geometry.sampling_rate, max_seconds=self.max_audio_seconds, limits=self.limits()
        )

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name."""
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names (the constructor's keyword arguments)."""
        return [f.name for f in fields(cls)]


EmbedderSettings.SAVED = tuple(f.name for f in fields(EmbedderSettings) if f.metadata.get("saved"))
