"""What preprocessing cut from an item, noted where it happens and read by whoever featurizes the item: the server
reports it in ``usage`` (texts cut at ``max_length``, seconds of sound past ``max_audio_seconds``, videos whose
frames were sampled).

:func:`collecting` opens a record for the current thread (a context variable: each featurize thread has its own);
:func:`note` adds to it, and does nothing when no record is open, so preprocessing called on its own pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["AUDIO_SECONDS", "TEXT", "VIDEO_FRAMES", "collecting", "note"]

TEXT = "text_truncated"
"""A text cut at ``max_length`` tokens (counted once per item)."""
AUDIO_SECONDS = "audio_truncated_seconds"
"""Seconds of sound cut away past ``max_audio_seconds``."""
VIDEO_FRAMES = "video_frames_sampled"
"""A video embedded from fewer frames than it has (counted once per video)."""

_RECORD: ContextVar[dict[str, float] | None] = ContextVar("lco_embedding_notes", default=None)


@contextmanager
def collecting() -> Iterator[dict[str, float]]:
    """A fresh record for what is noted inside the block."""
    record: dict[str, float] = {}
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def note(key: str, amount: float = 1.0) -> None:
    """Add ``amount`` to ``key`` of the open record (nothing without one)."""
    record = _RECORD.get()
    if record is not None:
        record[key] = record.get(key, 0.0) + amount
