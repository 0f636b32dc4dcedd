"""Long media and long texts as timed segments: cut an item into windows (seconds of audio or video, tokens of
text), embed every window as an ordinary item, and keep where each came from.

Example:
    >>> segments = model.encode_segments("podcast.mp3")  # doctest: +SKIP
    >>> segments.start[:3], segments.end[:3]  # doctest: +SKIP
    (array([ 0., 30., 60.]), array([30., 60., 90.]))
"""

from __future__ import annotations

from lco_embedding.segments.result import Segments, SourceSegments
from lco_embedding.segments.spec import SegmentSpec

__all__ = ["SegmentSpec", "Segments", "SourceSegments"]
