"""Long media and long texts as timed segments: cut an item into windows (seconds of audio or video, tokens of
text), embed every window as an ordinary item, and keep where each came from.

Example:
    >>> segments = model.encode_segments("lecture.wav", window=0.4)  # 1 s of audio in 0.4-s windows
    >>> segments.start.tolist(), segments.end.tolist()
    ([0.0, 0.4, 0.8], [0.4, 0.8, 1.0])
"""

from __future__ import annotations

from lco_embedding.segments.context import CutContext
from lco_embedding.segments.result import Segments, SourceSegments
from lco_embedding.segments.spec import SegmentSpec

__all__ = ["CutContext", "SegmentSpec", "Segments", "SourceSegments"]
