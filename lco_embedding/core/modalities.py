"""The modality table: one row per modality with everything the pipeline needs to know about it, with no heavy
imports.

A row (:class:`ModalitySpec`) names the modality's file extensions and MIME type (input parsing, corpus records),
its prompt suffix (:mod:`lco_embedding.inputs.prompts`), its preprocessor and options
(:mod:`lco_embedding.pipeline.featurize`), the processor keyword it is passed under and the processor outputs that hold
its values (:mod:`lco_embedding.pipeline.backbone`
casts those to the model's dtype). Code that treats modalities differently reads this table instead of switching
on their names. Shared with the command line, which must start without importing torch: loaders are named, not
imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "AUDIO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "MEDIA_MODALITIES",
    "MODALITIES",
    "MODALITY_TABLE",
    "VIDEO_EXTENSIONS",
    "Modality",
    "ModalitySpec",
]

Modality: TypeAlias = Literal["text", "image", "audio", "video"]
"""The four modalities of the model's inputs."""

MEDIA_MODALITIES: tuple[Modality, ...] = ("image", "audio", "video")
MODALITIES: tuple[Modality, ...] = ("text", "image", "audio", "video")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".tif", ".webp", ".avif", ".jfif")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".aac", ".m4a", ".opus", ".aiff", ".aif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp")


@dataclass(frozen=True)
class ModalitySpec:
    """What the pipeline knows about one modality.

    Attributes:
        name: The modality.
        suffix: The prompt suffix after an input of this modality alone (the reference pipeline's).
        extensions: File extensions that name it (lower case, with the dot); none for text.
        processor_keyword: The keyword the checkpoint's processor takes it under (None for text).
        value_keys: The processor outputs holding its values, cast to the model's dtype on the device.
        loader: ``"module:function"`` of its preprocessor (imported when first used), or None for text.
        options: The :class:`~lco_embedding.pipeline.featurize.Featurizer` attribute holding the preprocessor's options.
        magic: A regular expression over a file's first bytes that says it holds this modality (bytes given bare
            are sniffed with it, in table order, so the more specific ``ftyp`` brands come before video's).
    """

    name: Modality
    suffix: str
    extensions: tuple[str, ...] = ()
    processor_keyword: str | None = None
    value_keys: tuple[str, ...] = ()
    loader: str | None = None
    options: str | None = None
    magic: bytes = b""

    @property
    def is_media(self) -> bool:
        """True for image, audio and video."""
        return self.processor_keyword is not None


MODALITY_TABLE: dict[Modality, ModalitySpec] = {
    spec.name: spec
    for spec in (
        ModalitySpec("text", "\nSummarize the above text in one word:"),
        ModalitySpec(
            "image",
            "\nSummarize the above image in one word:",
            IMAGE_EXTENSIONS,
            "images",
            ("pixel_values",),
            "lco_embedding.preprocessing.image:preprocess_image",
            "image_options",
            rb"\x89PNG|\xff\xd8\xff|GIF8[79]a|BM|RIFF....WEBP|II\*\x00|MM\x00\*|....ftyp(avif|avis|heic|heix|mif1)",
        ),
        ModalitySpec(
            "audio",
            "\nSummarize the above audio in one word:",
            AUDIO_EXTENSIONS,
            "audio",
            ("input_features",),
            "lco_embedding.preprocessing.audio:preprocess_audio",
            "audio_options",
            rb"RIFF....WAVE|ID3|\xff[\xe2-\xff]|fLaC|OggS|FORM....AIF[FC]|....ftyp(M4A |M4B )|#!AMR",
        ),
        ModalitySpec(
            "video",
            "\nSummarize the above video in one word:",
            VIDEO_EXTENSIONS,
            "videos",
            ("pixel_values_videos",),
            "lco_embedding.preprocessing.video:preprocess_video",
            "video_options",
            rb"....ftyp|\x1a\x45\xdf\xa3|RIFF....AVI |\x00\x00\x01[\xba\xb3]|FLV\x01|\x30\x26\xb2\x75",
        ),
    )
}
"""The modalities, in :data:`MODALITIES` order."""
