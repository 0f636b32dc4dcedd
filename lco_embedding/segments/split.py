"""Cut one input item into segments, lazily: each segment is an ordinary input item for the pipeline, with its
place in the source (seconds for audio and video, character offsets for text).

Long media is decoded once and streamed (:func:`~lco_embedding.preprocessing.stream.audio_windows`,
:func:`~lco_embedding.preprocessing.video.video_windows`): a two-hour recording is never one array. Text is cut into
windows of the checkpoint's tokenizer (:func:`~lco_embedding.segments.text.text_windows`). Items that are not a
single audio, video or text (images, mixed items, conversations), videos given as frames, or whose modality the spec
does not cut, are one segment spanning the whole item (``start`` and ``end`` NaN). A spec whose windows the model
would cut (text windows above ``max_length``, audio windows above ``max_audio_seconds``) is the item's error, for
the items it would cut only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from lco_embedding.core.errors import LCOInputError
from lco_embedding.core.modalities import MODALITY_TABLE, resolve
from lco_embedding.inputs.documents import PAGES, PDF, whole_document
from lco_embedding.inputs.parse import AUDIO_IN_VIDEO, ParsedItem, parse_item
from lco_embedding.preprocessing.audio import preprocess_audio
from lco_embedding.preprocessing.pdf import page_count
from lco_embedding.preprocessing.sources import is_file_object, is_reference, local_copy, read_bytes
from lco_embedding.preprocessing.stream import audio_windows
from lco_embedding.preprocessing.video import video_windows
from lco_embedding.preprocessing.windows import WindowPlan
from lco_embedding.segments.context import CutContext
from lco_embedding.segments.spec import SegmentSpec
from lco_embedding.segments.text import text_windows

__all__ = ["Segment", "split_item"]

_IMAGE = next(name for name, row in MODALITY_TABLE.items() if row.frame)
"""The modality a document's page is embedded as (an image)."""
_CARRIED_BUDGETS = ("max_frames", "min_pixels", "max_pixels")
"""An item's own video settings that still apply to its windows' frames (``fps`` has chosen them already)."""


@dataclass(frozen=True)
class Segment:
    """One segment of a source item, not yet embedded.

    Attributes:
        source: The source item's position in the call.
        number: The segment's number within its source (0, 1, ...).
        start: Seconds (audio, video) or the character offset (text) where it begins; NaN for a whole item.
        end: Where it ends (exclusive); NaN for a whole item.
        tokens: Text windows: their tokens; otherwise None.
        modality: The source's modality (``"mixed"``, ``"image"``, ... for a whole item).
        item: What is embedded: an input item, or the :class:`LCOInputError` of a source that cannot be cut.
        last: True for the source's final segment.
    """

    source: int
    number: int
    start: float
    end: float
    tokens: int | None
    modality: str
    item: Any
    last: bool


def split_item(index: int, item: Any, spec: SegmentSpec, context: CutContext) -> Iterator[Segment]:
    """The segments of ``item`` (found at ``index``) under ``spec``, read as they are consumed.

    ``context`` (:class:`~.context.CutContext`) gives the tokenizer, the media settings and the
    ``use_audio_in_video`` default. A source that cannot be read or cut yields one final segment whose ``item`` is
    its :class:`LCOInputError` (raised when it is featurized, so the pipeline reports it as that item's error).
    """
    document = whole_document(item)
    if document is not None:
        yield from _pages(index, document, context)
        return
    number = 0
    pieces: Iterator[tuple[float, float, int | None, Any]] | None = None
    modality = "item"
    try:
        parsed = parse_item(item)
        modality = parsed.kind
        pieces = _pieces(parsed, spec, context)
        if pieces is None:
            yield Segment(index, 0, math.nan, math.nan, None, modality, item, True)
            return
        previous = next(pieces, None)
        while previous is not None:
            following = next(pieces, None)
            start, end, tokens, piece = previous
            yield Segment(index, number, start, end, tokens, modality, piece, following is None)
            number, previous = number + 1, following
    except LCOInputError as e:
        yield Segment(index, number, math.nan, math.nan, None, modality, e, True)


def _pages(index: int, document: dict[str, Any], context: CutContext) -> Iterator[Segment]:
    """A whole PDF's pages, one segment each (``start`` = ``end`` = the page number, from 1): each an ordinary
    ``{"pdf": source, "page": n}`` item; only the listed ones with ``"pages": [n, ...]``. A PDF read from a URL or
    data URI is read once, its pages given its bytes."""
    document = dict(document)
    source, password, wanted = document[PDF], document.get("pdf_password"), document.pop(PAGES, None)
    try:
        limits = context.options_for(_IMAGE, None).limits
        if isinstance(source, str) and source.startswith(("http://", "https://", "data:")):
            source = document[PDF] = read_bytes(source, limits=limits)
        count = page_count(source, password, limits)
        numbers = range(1, count + 1) if wanted is None else _listed_pages(wanted, count)
    except LCOInputError as e:
        yield Segment(index, 0, math.nan, math.nan, None, PDF, e, True)
        return
    for at, number in enumerate(numbers):
        item = {**document, "page": number}
        yield Segment(index, at, float(number), float(number), None, PDF, item, at == len(numbers) - 1)


def _listed_pages(wanted: Any, count: int) -> list[int]:
    """The page numbers of ``"pages"``: distinct, in the document (1 to ``count``), in the order given."""
    numbers = list(wanted) if isinstance(wanted, list | tuple | range) else None
    if not numbers or any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
        raise LCOInputError(f"'pages' must be a non-empty list of page numbers from 1, got {wanted!r}.")
    outside = [n for n in numbers if not 1 <= n <= count]
    if outside:
        raise LCOInputError(f"pages {outside} are not in the PDF: it has {count} pages, numbered from 1.")
    if len(set(numbers)) != len(numbers):
        raise LCOInputError(f"'pages' lists a page twice: {numbers}.")
    return numbers


def _pieces(
    item: ParsedItem, spec: SegmentSpec, context: CutContext
) -> Iterator[tuple[float, float, int | None, Any]] | None:
    """``(start, end, tokens, item)`` of each window of a single-modality item (the modality table's
    ``segmenter``), or None when it is not cut."""
    row = MODALITY_TABLE.get(item.kind)  # type: ignore[call-overload]
    if row is None or row.segmenter is None or len(item.parts) != 1 or spec.window(item.kind) is None:
        return None
    value = item.parts[0].value
    if row.frames and not _is_file(value):  # frames in memory: embedded whole
        return None
    wanted = item.with_sound(context.use_audio_in_video)
    problem = spec.limit_problem(item.kind, context.bounds, with_sound=wanted is not False)
    if problem is not None:
        raise LCOInputError(problem)
    return resolve(row.segmenter)(item, value, spec, context)


def text_pieces(
    item: ParsedItem, text: str, spec: SegmentSpec, context: CutContext
) -> Iterator[tuple[float, float, int | None, Any]]:
    """A text's windows of the checkpoint's tokenizer (character offsets)."""
    window, overlap = spec.window(item.kind), spec.text_overlap
    assert window is not None
    for piece in text_windows(text, context.tokenizer, window=int(window), overlap=overlap):
        yield float(piece.start), float(piece.end), piece.tokens, {item.kind: piece.text}


def _is_file(value: Any) -> bool:
    return isinstance(value, bytes | bytearray) or is_reference(value) or is_file_object(value)


def audio_pieces(
    item: ParsedItem, value: Any, spec: SegmentSpec, context: CutContext
) -> Iterator[tuple[float, float, int | None, Any]]:
    """An audio's windows of seconds: a file streamed, an in-memory waveform cut on the same plan."""
    plan = WindowPlan(float(spec.window(item.kind) or 0), float(spec.stride(item.kind) or 0))
    options = context.sound
    rate = options.sampling_rate
    if not _is_file(value):  # in memory already: cut the whole waveform
        waveform = preprocess_audio(value, dataclasses.replace(options, max_seconds=None))
        for start, end in plan.spans(len(waveform) / rate):
            samples = waveform[int(round(start * rate)) : int(round(end * rate))]
            yield start, end, None, {"array": samples, "sampling_rate": rate}
        return
    with local_copy(value, limits=options.limits, suffix=".audio") as path:
        for piece in audio_windows(path, window=plan.window, stride=plan.stride, sampling_rate=rate):
            yield piece.start, piece.end, None, {"array": piece.samples, "sampling_rate": rate}


def video_pieces(
    item: ParsedItem, value: Any, spec: SegmentSpec, context: CutContext
) -> Iterator[tuple[float, float, int | None, Any]]:
    """A video file's windows of seconds, each with its sampled frames and, with ``use_audio_in_video``, the sound of
    the same time range (the sound track is cut on the video's own windows)."""
    wanted = item.with_sound(context.use_audio_in_video)
    budgets = {name: v for name, v in item.budgets.items() if name in _CARRIED_BUDGETS}
    options = context.options_for(item.kind, item.budgets)
    rate = context.sound.sampling_rate
    with ExitStack() as stack:
        path = stack.enter_context(local_copy(value, limits=options.limits, suffix=".mp4"))
        windows = video_windows(path, window=float(spec.window(item.kind) or 0), stride=spec.stride(item.kind),
                                options=options)  # fmt: skip
        sounds: Iterator[Any] | None = None
        if wanted is not False:
            try:
                sounds = audio_windows(path, spans=windows.spans, sampling_rate=rate)
            except LCOInputError:
                if wanted is True:
                    raise LCOInputError(
                        "the video has no sound track (use_audio_in_video=True needs one): embed it without "
                        "(use_audio_in_video=False), or with use_audio_in_video='auto'."
                    ) from None
        for piece in windows:
            sound = next(sounds, None) if sounds is not None else None
            frames = list(piece.frames)
            if sound is None or len(sound.samples) == 0:
                segment: dict[str, Any] = {item.kind: frames, AUDIO_IN_VIDEO: False, **budgets}
            else:
                segment = {item.kind: {"frames": frames, "audio": sound.samples}, AUDIO_IN_VIDEO: True, **budgets}
            yield piece.start, piece.end, None, segment
