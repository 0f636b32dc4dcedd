"""Where the windows of long media lie: one planner for audio files (streamed), in-memory audio and video files.

Windows start at 0, ``stride``, ``2 * stride``, ... and are ``window`` seconds long, but the last, which ends with the
media; with overlap (``stride < window``) they stop after the first that reaches the end. A medium may refuse a last
window that is too short (a video needs two frames): it joins the window before it. A video's sound track is cut on
the video's own windows (:meth:`WindowPlan.spans` given to :func:`~lco_embedding.preprocessing.stream.audio_windows`),
so a window's frames and its sound always cover the same time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["WindowPlan"]


@dataclass(frozen=True)
class WindowPlan:
    """Windows of ``window`` seconds starting every ``stride`` seconds.

    Example:
        >>> WindowPlan(30.0, 30.0).spans(95.0)
        [(0.0, 30.0), (30.0, 60.0), (60.0, 90.0), (90.0, 95.0)]
        >>> WindowPlan(30.0, 30.0).spans(90.5, too_short=lambda start, end: end - start < 1.0)
        [(0.0, 30.0), (30.0, 60.0), (60.0, 90.5)]
    """

    window: float
    stride: float

    def __post_init__(self) -> None:
        if not (self.window > 0 and 0 < self.stride <= self.window):
            raise ValueError(f"windows need 0 < stride <= window, got window {self.window} and stride {self.stride}.")

    def bounds(self, number: int) -> tuple[float, float]:
        """Window ``number`` before the end is known: ``(start, start + window)``."""
        start = number * self.stride
        return start, start + self.window

    def spans(
        self, duration: float, *, too_short: Callable[[float, float], bool] | None = None
    ) -> list[tuple[float, float]]:
        """``(start, end)`` of every window of ``duration`` seconds; a last window ``too_short`` refuses joins the one
        before it."""
        spans: list[tuple[float, float]] = []
        number = 0
        while True:
            start, end = self.bounds(number)
            end = min(end, duration)
            if spans and (start >= duration or (too_short is not None and too_short(start, end))):
                spans[-1] = (spans[-1][0], duration)
                break
            spans.append((start, end))
            if start + self.window >= duration:
                break
            number += 1
        return spans
