"""The four modalities and the file extensions that name them, in one place, with no heavy imports.

Shared by input parsing (:mod:`lco_embedding.inputs`), corpus jobs (:mod:`lco_embedding.corpus.records`) and the
command line, which must start without importing torch.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["AUDIO_EXTENSIONS", "IMAGE_EXTENSIONS", "MEDIA_MODALITIES", "MODALITIES", "VIDEO_EXTENSIONS", "Modality"]

Modality: TypeAlias = Literal["text", "image", "audio", "video"]
"""The four modalities of the model's inputs."""

MEDIA_MODALITIES: tuple[Modality, ...] = ("image", "audio", "video")
MODALITIES: tuple[Modality, ...] = ("text", "image", "audio", "video")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".tif", ".webp", ".avif", ".jfif")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".aac", ".m4a", ".opus", ".aiff", ".aif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".3gp")
