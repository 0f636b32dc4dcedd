"""The modality table: one row per modality with everything the pipeline needs to know about it, with no heavy
imports.

A row (:class:`ModalitySpec`) holds what differs between modalities: file extensions and signatures (input parsing,
corpus records), array shapes, the prompt suffix and the mixed-item order (:mod:`lco_embedding.inputs`), the
preprocessors (reference and fast), their options and the processor's settings (:mod:`.pipeline.featurize`),
the processor keyword and outputs (:mod:`lco_embedding.pipeline.backbone`), the items' own budgets, and how its items
are cut into segments (:mod:`lco_embedding.segments`). Code that treats modalities differently reads a row's field
instead of comparing names. Shared with the command line, which must start without importing torch: functions are
named, not imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "AUDIO_EXTENSIONS",
    "DOCUMENT_KEYS",
    "DOMINANCE",
    "IMAGE_EXTENSIONS",
    "MEDIA_MODALITIES",
    "MIXED",
    "MIXED_ORDER",
    "MODALITIES",
    "ROW_MODALITIES",
    "MODALITY_TABLE",
    "PDF",
    "SOUND",
    "TEXT",
    "VIDEO_EXTENSIONS",
    "Modality",
    "item_modality",
    "page_modalities",
    "ModalitySpec",
    "is_text",
    "resolve",
    "spec_of",
]

Modality: TypeAlias = Literal["text", "image", "audio", "video"]
"""The four modalities of the model's inputs."""

MEDIA_MODALITIES: tuple[Modality, ...] = ("image", "audio", "video")
MODALITIES: tuple[Modality, ...] = ("text", "image", "audio", "video")
PDF = "pdf"
"""The key of a document item, ``{"pdf": source, "page": n}`` (:mod:`lco_embedding.inputs.documents`): a container
of pages, each embedded as an image, not a modality of its own."""
DOCUMENT_KEYS = (PDF, "page", "pdf_password", "pdf_text")
"""The keys a document item may have (with the image settings ``min_pixels`` / ``max_pixels``)."""
MIXED = "mixed"
"""The modality of an item that holds several modalities (a mixed row, query or pair)."""
ROW_MODALITIES: tuple[str, ...] = (*MODALITIES, MIXED, PDF)
"""What a corpus row's ``modality`` column, a query's and a report's modality can be (``pdf``: a page of a PDF file
of a folder)."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".tif", ".webp", ".avif", ".jfif")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".aac", ".m4a", ".opus", ".aiff", ".aif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp")


@dataclass(frozen=True)
class ModalitySpec:
    """What the pipeline knows about one modality: everything that differs between modalities is a field here, and
    the code reads it instead of comparing modality names.

    Attributes:
        name: The modality.
        suffix: The prompt suffix after an input of this modality alone (the reference pipeline's).
        extensions: File extensions that name it (lower case, with the dot); none for text.
        magic: A regular expression over a file's first bytes that says it holds this modality (bytes given bare
            are sniffed with it, in table order, so the more specific ``ftyp`` brands come before video's).
        processor_keyword: The keyword the checkpoint's processor takes it under (None for text).
        processor_part: The processor's attribute that processes it (``image_processor``, ...).
        value_keys: The processor outputs holding its values, cast to the model's dtype on the device.
        per_media_keys: The processor outputs with one row per medium of this modality in an item (its rotary
            positions depend on them; batches concatenate them).
        token_words: Words that name its special tokens in a model config (``image_token_id``,
            ``vision_start_token_id``, ...): the tokens a shared prefix must stop before.
        loader: ``"module:function"`` of its preprocessor ``(source, options)`` (imported when first used).
        fast_loader: ``"module:Class"`` of its loader with ``preprocessing="fast"``: built from the processor's
            part and a device, with a ``supports(part)`` check (None: the reference loader serves both).
        processor_settings: ``"module:function"`` giving the processor's settings for an item's media of this
            modality (``images_kwargs``, ``audio_kwargs``, ``videos_kwargs``), or None.
        options: The name of the preprocessor's options: a method of the embedder's settings and an attribute of the
            featurizer (``image_options``, ...).
        budgets: The keys of an item's own media settings that apply to it (:mod:`lco_embedding.inputs.budgets`).
        mixed_position: Where its parts stand in a dict item of several modalities (media first, then the text).
        dominance: Rank of its suffix under ``mixed_suffix="dominant"`` (mteb 2.x: image > video > audio > text).
        array_ndims: A bare array or tensor with this many dimensions is of this modality (none: no array form).
        uint8_planes: A 2-D uint8 numpy array is of this modality (a grayscale image, not 2-channel audio).
        frame: Its items can be the frames of a video (a list of them is one video).
        frames: It can be given as a list of frames.
        sound: ``"item"``: it is sound (its items fill the model's audio slots); ``"track"``: its files may carry a
            sound track embedded with them (``use_audio_in_video``).
        window_unit: What its segments' windows count: ``"tokens"`` (of the checkpoint's tokenizer) or
            ``"seconds"``; None: its items are not cut into segments.
        segmenter: ``"module:function"`` cutting one of its values into windows (:mod:`lco_embedding.segments.split`).
        window_limit: The setting that bounds its windows (longer ones would be cut before the model sees them).
    """

    name: Modality
    suffix: str
    extensions: tuple[str, ...] = ()
    magic: bytes = b""
    processor_keyword: str | None = None
    processor_part: str | None = None
    value_keys: tuple[str, ...] = ()
    per_media_keys: tuple[str, ...] = ()
    token_words: tuple[str, ...] = ()
    loader: str | None = None
    fast_loader: str | None = None
    processor_settings: str | None = None
    options: str | None = None
    budgets: tuple[str, ...] = ()
    mixed_position: int = 0
    dominance: int = 0
    array_ndims: tuple[int, ...] = ()
    uint8_planes: bool = False
    frame: bool = False
    frames: bool = False
    sound: Literal["item", "track"] | None = None
    window_unit: Literal["tokens", "seconds"] | None = None
    segmenter: str | None = None
    window_limit: str | None = None

    @property
    def is_media(self) -> bool:
        """True for image, audio and video (what the processor takes beside the text)."""
        return self.processor_keyword is not None


_PIXELS = ("min_pixels", "max_pixels")
_SPLIT = "lco_embedding.segments.split"

MODALITY_TABLE: dict[Modality, ModalitySpec] = {
    spec.name: spec
    for spec in (
        ModalitySpec(
            "text",
            "\nSummarize the above text in one word:",
            mixed_position=3,
            dominance=3,
            window_unit="tokens",
            segmenter=f"{_SPLIT}:text_pieces",
            window_limit="max_length",
        ),
        ModalitySpec(
            "image",
            "\nSummarize the above image in one word:",
            IMAGE_EXTENSIONS,
            rb"\x89PNG|\xff\xd8\xff|GIF8[79]a|BM|RIFF....WEBP|II\*\x00|MM\x00\*|....ftyp(avif|avis|heic|heix|mif1)",
            processor_keyword="images",
            processor_part="image_processor",
            value_keys=("pixel_values",),
            per_media_keys=("image_grid_thw",),
            token_words=("image", "vision"),
            loader="lco_embedding.preprocessing.image:preprocess_image",
            fast_loader="lco_embedding.preprocessing.fast_image:FastImageLoader",
            processor_settings="lco_embedding.pipeline.featurize:image_settings",
            options="image_options",
            budgets=_PIXELS,
            mixed_position=2,
            dominance=0,
            array_ndims=(2, 3),
            uint8_planes=True,
            frame=True,
        ),
        ModalitySpec(
            "audio",
            "\nSummarize the above audio in one word:",
            AUDIO_EXTENSIONS,
            rb"RIFF....WAVE|ID3|\xff[\xe2-\xff]|fLaC|OggS|FORM....AIF[FC]|....ftyp(M4A |M4B )|#!AMR",
            processor_keyword="audio",
            processor_part="feature_extractor",
            value_keys=("input_features",),
            per_media_keys=("feature_attention_mask",),
            token_words=("audio",),
            loader="lco_embedding.preprocessing.audio:preprocess_audio",
            processor_settings="lco_embedding.pipeline.featurize:audio_settings",
            options="audio_options",
            mixed_position=1,
            dominance=2,
            array_ndims=(1, 2),
            sound="item",
            window_unit="seconds",
            segmenter=f"{_SPLIT}:audio_pieces",
            window_limit="max_audio_seconds",
        ),
        ModalitySpec(
            "video",
            "\nSummarize the above video in one word:",
            VIDEO_EXTENSIONS,
            rb"....ftyp|\x1a\x45\xdf\xa3|RIFF....AVI |\x00\x00\x01[\xba\xb3]|FLV\x01|\x30\x26\xb2\x75",
            processor_keyword="videos",
            processor_part="video_processor",
            value_keys=("pixel_values_videos",),
            per_media_keys=("video_grid_thw", "video_second_per_grid"),
            token_words=("video", "vision"),
            loader="lco_embedding.preprocessing.video:preprocess_video",
            processor_settings="lco_embedding.pipeline.featurize:video_settings",
            options="video_options",
            budgets=("fps", "max_frames", *_PIXELS),
            mixed_position=0,
            dominance=1,
            array_ndims=(4,),
            frames=True,
            sound="track",
            window_unit="seconds",
            segmenter=f"{_SPLIT}:video_pieces",
        ),
    )
}
"""The modalities, in :data:`MODALITIES` order."""

TEXT: ModalitySpec = next(spec for spec in MODALITY_TABLE.values() if not spec.is_media)
"""The row of text, the one modality that is not media."""
SOUND: ModalitySpec = next(spec for spec in MODALITY_TABLE.values() if spec.sound == "item")
"""The row of sound (its window limit also bounds a video's sound track)."""
MIXED_ORDER: tuple[Modality, ...] = tuple(sorted(MODALITY_TABLE, key=lambda name: MODALITY_TABLE[name].mixed_position))
"""The order of a mixed dict item's parts: media first (video, audio, image), then the text."""
DOMINANCE: tuple[Modality, ...] = tuple(sorted(MODALITY_TABLE, key=lambda name: MODALITY_TABLE[name].dominance))
"""The order in which ``mixed_suffix="dominant"`` picks the modality whose suffix a mixed input gets."""


def spec_of(modality: str) -> ModalitySpec:
    """The table's row of ``modality`` (``"text"``, ``"image"``, ``"audio"``, ``"video"``).

    Example:
        >>> spec_of("audio").window_unit
        'seconds'
    """
    return MODALITY_TABLE[modality]  # type: ignore[index]


def is_text(modality: str) -> bool:
    """True for the modality that is not media."""
    return not spec_of(modality).is_media


def page_modalities(item: Mapping[str, Any]) -> list[str]:
    """The modalities a document item (``{"pdf": ..., "page": n}``) holds: its page's image, and its text with
    ``pdf_text``; none for an item that names no PDF. With :func:`item_modality`, the one rule for a page's modality.

    Example:
        >>> page_modalities({"pdf": "a.pdf", "page": 1, "pdf_text": True}), page_modalities({"text": "x"})
        (['image', 'text'], [])
    """
    if not item.get(PDF):
        return []
    image = next(name for name, spec in MODALITY_TABLE.items() if spec.frame)
    return [image, *([TEXT.name] if item.get("pdf_text") is True else [])]


def item_modality(present: Iterable[str]) -> str:
    """The modality of an item (a table row, a query, a pair's side) from the modalities it holds: its one
    modality, or :data:`MIXED`. The one place this rule is written.

    Example:
        >>> item_modality(["image"]), item_modality({"image": "cat.png", "text": "a cat"})
        ('image', 'mixed')
    """
    given = set(present)
    names = [name for name in MODALITIES if name in given]
    return names[0] if len(names) == 1 else MIXED


def resolve(name: str) -> Any:
    """The object a row names as ``"module:attribute"`` (imported when first asked for)."""
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)
