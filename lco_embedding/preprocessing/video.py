"""Video preprocessing: decode, sample frames, resize to the per-frame pixel budget.

Frame sampling and sizing follow qwen-omni-utils' ``fetch_video`` (the reference pipeline): ``fps`` frames per
second, an even count between ``min_frames`` and ``max_frames``, spread evenly with ``linspace``; frames resized
with bicubic antialiasing so that ``frames x pixels`` stays within the model's budget. Files are decoded with
decord where it is installed and PyAV otherwise. A list of frames (or a 4-D array) is used as given — padded to
an even count by repeating the last frame, and subsampled evenly to ``max_frames`` if longer.

Memory is bounded before anything is decoded: the stored frame size (``max_frame_pixels``) and the visual tokens the
sampled, resized frames will be (``max_tokens``) are checked from the stream's header, and frames are resized a chunk
at a time as they are decoded, so only a chunk is ever held at the stored size.

Does not read the sound track: :mod:`lco_embedding.preprocessing.soundtrack` does (``use_audio_in_video``).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lco_embedding.core import notes
from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.image import MAX_IMAGE_PIXELS, load_image
from lco_embedding.preprocessing.sources import ReadLimits, is_file_object, is_reference, local_copy
from lco_embedding.preprocessing.windows import WindowPlan

__all__ = [
    "VIDEO_MAX_TOKENS",
    "VideoOptions",
    "VideoWindow",
    "decoded_video",
    "frame_size",
    "preprocess_video",
    "read_video_frames",
    "video_windows",
]


VIDEO_MAX_TOKENS = 115_200
"""Default ``max_video_tokens``: the most visual tokens one video item may become (qwen-omni-utils' total video
budget, 90 % of a 128k-token sequence; the model's own settings never reach it)."""
DECODE_CHUNK_PIXELS = 32 * 2**20
"""Decoded pixels held at once while a video's sampled frames are resized (about 96 MB of RGB)."""


@dataclass(frozen=True)
class VideoOptions:
    """How videos are sampled and sized (defaults: qwen-omni-utils', as in the model card).

    Attributes:
        fps: Frames sampled per second of video.
        min_frames: Fewest frames sampled from a file (rounded up to even).
        max_frames: Most frames sampled from a file or kept from a frame list (rounded down to even).
        min_pixels: Smallest pixel count per frame after resizing.
        max_pixels: Largest pixel count per frame after resizing (768 tokens); the reference also caps the
            total over all frames at 90% of a 128k-token budget.
        patch_size: The vision encoder's patch size.
        max_tokens: The most visual tokens the video may become (frames / 2 x tokens per frame); a video whose
            sampled and resized frames would be more is refused before any frame is decoded.
        max_frame_pixels: Frames larger than this (width x height, as stored) are refused before decoding.
        limits: How long and how large a URL download may be.
    """

    fps: float = 2.0
    min_frames: int = 4
    max_frames: int = 768
    min_pixels: int = 128 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    patch_size: int = 14
    max_tokens: int = VIDEO_MAX_TOKENS
    max_frame_pixels: int = MAX_IMAGE_PIXELS
    limits: ReadLimits = field(default_factory=ReadLimits)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"video fps must be a positive finite number, got {self.fps}.")
        if self.max_frames < 2:
            raise ValueError(f"video max_frames must be at least 2, got {self.max_frames}.")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"video pixels need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}."
            )
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_video_tokens must be a positive integer, got {self.max_tokens!r}.")


def _frame_indices(total: int, video_fps: float, options: VideoOptions) -> list[int]:
    from qwen_omni_utils.v2_5.vision_process import smart_nframes

    if total < 2:
        raise LCOInputError(f"the video has {total} decodable frame(s); at least 2 are needed.")
    element = {"fps": options.fps, "min_frames": options.min_frames, "max_frames": options.max_frames}
    try:
        nframes = smart_nframes(element, total_frames=total, video_fps=video_fps)
    except ValueError as e:
        raise LCOInputError(f"cannot sample frames from the video ({e}).") from e
    if nframes < total:
        notes.note(notes.VIDEO_FRAMES)
    return torch.linspace(0, total - 1, nframes).round().long().tolist()


def frame_size(nframes: int, height: int, width: int, options: VideoOptions) -> tuple[int, int]:
    """The ``(height, width)`` that ``nframes`` frames of ``height x width`` are resized to, by qwen-omni-utils'
    ``fetch_video`` arithmetic (the per-frame budget shrinks as frames are added), checked against the budgets
    before any frame is decoded.

    Raises:
        LCOInputError: A stored frame above ``max_frame_pixels``, a frame that cannot be resized (aspect ratio
            above 200:1), or more than ``max_tokens`` visual tokens in all.
    """
    from qwen_omni_utils.v2_5 import vision_process as qv

    if height * width > options.max_frame_pixels:
        raise LCOInputError(
            f"the video's frames are {width}x{height} = {height * width:,} pixels, above the limit of "
            f"{options.max_frame_pixels:,} (max_image_pixels): refused before decoding. Downscale it first."
        )
    factor = options.patch_size * qv.SPATIAL_MERGE_SIZE
    total_pixels = qv.MODEL_SEQ_LEN * factor * factor * 0.9
    frame_cap = qv.VIDEO_MAX_TOKEN_NUM * factor * factor
    budget = max(min(frame_cap, total_pixels / nframes * qv.FRAME_FACTOR), int(options.min_pixels * 1.05))
    try:
        size = qv.smart_resize(
            height, width, factor=factor, min_pixels=options.min_pixels, max_pixels=min(options.max_pixels, budget)
        )
    except ValueError as e:
        raise LCOInputError(f"cannot resize video frames of size {width}x{height}: {e}.") from e
    tokens = math.ceil(nframes / qv.FRAME_FACTOR) * (size[0] // factor) * (size[1] // factor)
    if tokens > options.max_tokens:
        raise LCOInputError(
            f"the video would be {tokens:,} visual tokens ({nframes} frames of {size[1]}x{size[0]}), above the "
            f"limit of {options.max_tokens:,} (max_video_tokens): lower its fps, max_frames or pixel budget, or "
            "raise max_video_tokens."
        )
    return size


def _resized(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(T, C, H, W)`` uint8 frames resized as qwen-omni-utils' fetch_video resizes them (bicubic, antialiased;
    frame by frame, so resizing a video in chunks gives the same frames)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    return resize(frames, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


class _Frames:
    """The sampled frames of a video, resized to their planned size as chunks of them are decoded, so that only a
    chunk is ever held at the stored size (``size=None``: kept as stored)."""

    def __init__(self, count: int, height: int, width: int, options: VideoOptions, resize: bool) -> None:
        self.size = frame_size(count, height, width, options) if resize else None
        self.out = torch.empty((count, 3, *(self.size or (height, width))), dtype=torch.uint8)
        self.chunk = max(1, DECODE_CHUNK_PIXELS // (height * width))
        self.stored = (height, width)

    def put(self, slots: list[int], frames: np.ndarray) -> None:
        """Place decoded ``(n, H, W, 3)`` frames at output positions ``slots``."""
        chunk = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        if tuple(chunk.shape[-2:]) != self.stored:
            raise LCOInputError(
                f"the video's frames change size ({self.stored[1]}x{self.stored[0]} declared, "
                f"{chunk.shape[-1]}x{chunk.shape[-2]} decoded); re-encode it at one size."
            )
        self.out[slots] = _resized(chunk, self.size) if self.size is not None else chunk


def _read_decord(path: str, options: VideoOptions, *, resize: bool = False) -> torch.Tensor:
    import decord

    reader = decord.VideoReader(path)
    indices = _frame_indices(len(reader), reader.get_avg_fps(), options)
    height, width = _geometry(path)
    frames = _Frames(len(indices), height, width, options, resize)
    for start in range(0, len(indices), frames.chunk):
        wanted = indices[start : start + frames.chunk]
        frames.put(list(range(start, start + len(wanted))), reader.get_batch(wanted).asnumpy())
    return frames.out


def _stream_info(path: str) -> tuple[float, int]:
    """A video file's frame rate and frame count: from the container, else by demuxing (which does not decode)."""
    import av

    with av.open(path) as container:
        _require_video_stream(container)
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        if fps <= 0:
            raise LCOInputError("the video stream reports no frame rate.")
        total = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    return fps, total


def _geometry(path: str) -> tuple[int, int]:
    """The stored ``(height, width)`` of a video file's frames, from its stream header (nothing decoded)."""
    import av

    with av.open(path) as container:
        _require_video_stream(container)
        context = container.streams.video[0].codec_context
        height, width = int(context.height or 0), int(context.width or 0)
    if height < 1 or width < 1:
        raise LCOInputError("the video stream declares no frame size; the file is corrupt.")
    return height, width


def _read_pyav(path: str, options: VideoOptions, *, resize: bool = False) -> torch.Tensor:
    """Sampled frames through PyAV: the frames are counted first (:func:`_stream_info`), then only the sampled
    ones are kept while decoding (resized a chunk at a time), so memory holds the sample, not the video."""
    import av

    fps, total = _stream_info(path)
    height, width = _geometry(path)
    indices = _frame_indices(total, fps, options)
    frames = _Frames(len(indices), height, width, options, resize)
    slots: dict[int, list[int]] = {}
    for slot, number in enumerate(indices):
        slots.setdefault(number, []).append(slot)
    pending: list[tuple[list[int], np.ndarray]] = []
    filled: list[int] = []

    def flush() -> None:
        places = [slot for chosen, _ in pending for slot in chosen]
        stack = np.stack([frame for chosen, frame in pending for _ in chosen])
        frames.put(places, stack)
        filled.extend(places)
        pending.clear()

    with av.open(path) as container:
        for number, frame in enumerate(container.decode(container.streams.video[0])):
            if number in slots:
                pending.append((slots[number], frame.to_ndarray(format="rgb24")))
                if len(pending) >= frames.chunk:
                    flush()
            if number >= indices[-1]:
                break
    if pending:
        flush()
    if not filled:
        raise LCOInputError("the video has no decodable frames.")
    # A container that over-reports its frames: the last decoded frame stands in for missing ones.
    missing = sorted(set(range(len(indices))) - set(filled))
    if missing:
        frames.out[missing] = frames.out[max(filled)]
    return frames.out


@dataclass(frozen=True)
class VideoWindow:
    """One window of a long video: its time range and its sampled frames.

    Attributes:
        start: Seconds from the start of the video.
        end: Seconds; the window's start plus its length, or the video's end.
        frames: The frames sampled in the window, ``(T, H, W, 3)`` uint8 (before resizing).
    """

    start: float
    end: float
    frames: np.ndarray


class video_windows:  # noqa: N801 - used as the function it reads like
    """Decode a long video once and yield its windows of ``window`` seconds (starting every ``stride`` seconds:
    :class:`~lco_embedding.preprocessing.windows.WindowPlan`), each with the frames the model's settings sample from
    it (``options``: fps, frame counts), as reading a file holding just the window's frames would sample them. Only
    the current windows' sampled frames are held. ``spans`` holds every window's ``(start, end)`` before any is
    decoded (a sound track is cut on them).

    A window at the end with fewer than two frames is joined to the window before it (a video needs two).

    Raises:
        LCOInputError: The file cannot be read, has no video stream, or fewer than two frames.
    """

    def __init__(
        self, path: str, *, window: float, stride: float | None = None, options: VideoOptions | None = None
    ) -> None:
        self.options = options or VideoOptions()
        self.reader = _DecordWindows(path) if importlib.util.find_spec("decord") is not None else _PyAVWindows(path)
        fps, total = self.reader.fps, self.reader.total
        if total < 2:
            raise LCOInputError(f"the video has {total} decodable frame(s); at least 2 are needed.")

        def frames(start: float, end: float) -> tuple[int, int]:
            """The first frame of ``[start, end)`` and the one after its last."""
            return math.ceil(start * fps - 1e-6), min(total, math.ceil(end * fps - 1e-6))

        def too_short(start: float, end: float) -> bool:
            first, stop = frames(start, end)
            return stop - first < 2

        plan = WindowPlan(float(window), float(window if stride is None else stride))
        self.spans = plan.spans(total / fps, too_short=too_short)
        self._frames = [frames(start, end) for start, end in self.spans]

    def __iter__(self) -> Iterator[VideoWindow]:
        fps, options = self.reader.fps, self.options
        chosen = [
            (start, end, first, _frame_indices(stop - first, fps, options))
            for (start, end), (first, stop) in zip(self.spans, self._frames, strict=True)
        ]
        for start, end, frames in self.reader.windows(chosen):
            yield VideoWindow(start, end, frames)


class _DecordWindows:
    """Windows read with decord, as :func:`read_video_frames` reads whole videos where decord is installed."""

    def __init__(self, path: str) -> None:
        import decord

        try:
            self.reader = decord.VideoReader(path)
        except (RuntimeError, decord.DECORDError) as e:
            raise _decode_problem(path) or LCOInputError(f"cannot decode the video ({e}); the file is corrupt.") from e
        self.fps, self.total = float(self.reader.get_avg_fps()), len(self.reader)

    def windows(self, spans: list[tuple[float, float, int, list[int]]]) -> Iterator[tuple[float, float, np.ndarray]]:
        import decord

        for start, end, first, chosen in spans:
            try:
                frames = self.reader.get_batch([first + i for i in chosen]).asnumpy()
            except (RuntimeError, decord.DECORDError) as e:
                raise LCOInputError(f"cannot decode the video at {start:g} s ({e}); the file is corrupt.") from e
            yield start, end, frames


class _PyAVWindows:
    """Windows read with PyAV in one pass over the file, keeping only the frames the open windows sample."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fps, self.total = _stream_info(path)

    def windows(self, spans: list[tuple[float, float, int, list[int]]]) -> Iterator[tuple[float, float, np.ndarray]]:
        import av

        pending = list(spans)
        wanted = {first + i for _, _, first, chosen in pending for i in chosen}
        kept: dict[int, np.ndarray] = {}
        last: np.ndarray | None = None
        try:
            with av.open(self.path) as container:
                for number, frame in enumerate(container.decode(container.streams.video[0])):
                    if number in wanted:
                        kept[number] = last = frame.to_ndarray(format="rgb24")
                    while pending and number >= pending[0][2] + pending[0][3][-1]:
                        yield _window(pending.pop(0), kept, last)
                        for done in [n for n in kept if not pending or n < pending[0][2]]:
                            del kept[done]  # before the next window's first frame: no window samples it
                    if not pending:
                        return
        except (av.FFmpegError, OSError, ValueError, EOFError) as e:
            raise LCOInputError(f"cannot decode the video ({type(e).__name__}: {e}); the file is corrupt.") from e
        if last is None:
            raise LCOInputError("the video has no decodable frames.")
        while pending:  # a container that over-reports its frames: the last decoded frame stands in
            yield _window(pending.pop(0), kept, last)


def _window(
    span: tuple[float, float, int, list[int]], kept: dict[int, np.ndarray], last: np.ndarray | None
) -> tuple[float, float, np.ndarray]:
    start, end, first, chosen = span
    return start, end, np.stack([kept.get(first + i, last) for i in chosen])


def _require_video_stream(container: Any) -> None:
    if not container.streams.video:
        audio = " (it holds audio only: embed it as {'audio': ...})" if container.streams.audio else ""
        raise LCOInputError(f"the file has no video stream{audio}.")


def _decode_problem(path: str) -> LCOInputError | None:
    """A clear reason a file decord could not read, found with PyAV (no video stream, not a media file)."""
    import av

    try:
        with av.open(path) as container:
            _require_video_stream(container)
    except LCOInputError as e:
        return e
    except (av.FFmpegError, OSError, ValueError) as e:
        return LCOInputError(f"cannot decode the video ({type(e).__name__}: {e}); the file is corrupt or not a video.")
    return None


def read_video_frames(path: str, options: VideoOptions = VideoOptions(), *, resize: bool = False) -> torch.Tensor:
    """Decode the sampled frames of a video file as a ``(T, C, H, W)`` uint8 tensor: as stored, or with ``resize``
    at the size the model's budget gives them (:func:`frame_size`, resized a chunk at a time as they are decoded).

    Raises:
        LCOInputError: If the file cannot be decoded, has no video stream, fewer than two frames, or frames above
            the budgets (checked before decoding).
    """
    import av

    use_decord = importlib.util.find_spec("decord") is not None
    errors: tuple[type[BaseException], ...] = (RuntimeError, av.FFmpegError, OSError, ValueError, IndexError, EOFError)
    if use_decord:
        import decord

        errors += (decord.DECORDError,)
    try:
        read = _read_decord if use_decord else _read_pyav
        return read(path, options, resize=resize)
    except LCOInputError:
        raise
    except errors as e:
        # decord's errors are RuntimeErrors that speak of its internals; say what is wrong with the file instead.
        problem = _decode_problem(path) if use_decord else None
        if problem is not None:
            raise problem from e
        raise LCOInputError(f"cannot decode the video ({type(e).__name__}: {e}); the file is corrupt or empty.") from e


def _frames_from_list(frames: Any, options: VideoOptions) -> torch.Tensor:
    """Frames given as a list or array: subsampled evenly to ``max_frames`` (before decoding any), padded to an
    even count with the last, checked against the budgets on the first frame's size, resized a chunk at a time."""
    if isinstance(frames, np.ndarray):
        frames = list(frames)  # (T, H, W, C)
    elif isinstance(frames, torch.Tensor):
        frames = list(frames)  # (T, C, H, W)
    if len(frames) == 0:
        raise LCOInputError("the video has no frames.")
    if len(frames) > options.max_frames:
        notes.note(notes.VIDEO_FRAMES)
        keep = torch.linspace(0, len(frames) - 1, options.max_frames // 2 * 2).round().long().tolist()
        frames = [frames[i] for i in keep]
    if len(frames) % 2:
        frames = [*frames, frames[-1]]
    first = np.asarray(load_image(frames[0]))
    out = _Frames(len(frames), first.shape[0], first.shape[1], options, resize=True)
    for start in range(0, len(frames), out.chunk):
        images = [first if i == 0 else np.asarray(load_image(frames[i])) for i in range(start, start + out.chunk)
                  if i < len(frames)]  # fmt: skip
        sizes = {image.shape for image in images} | {first.shape}
        if len(sizes) > 1:
            raise LCOInputError(f"all frames of a video must have one size, got {sorted(sizes)}.")
        out.put(list(range(start, start + len(images))), np.stack(images))
    return out.out


def decoded_video(source: dict[str, Any]) -> tuple[Any, Any]:
    """The frames and the sound track (None when absent) of a video decoded elsewhere, given as
    ``{"frames": [...], "audio": waveform or {"array": ..., "sampling_rate": ...}}``.

    Raises:
        LCOInputError: Other keys, or no frames.
    """
    unknown = sorted(set(map(str, source)) - {"frames", "audio"})
    if unknown or "frames" not in source:
        raise LCOInputError(
            "a video given as a dict takes 'frames' (a list of frames or a 4-D array) and optionally 'audio' (its "
            f"sound track: a 16 kHz waveform or {{'array': ..., 'sampling_rate': ...}}), got keys {sorted(source)}."
        )
    return source["frames"], source.get("audio")


def preprocess_video(source: Any, options: VideoOptions = VideoOptions()) -> torch.Tensor:
    """Load a video and return its sampled, resized frames as a float ``(T, C, H, W)`` tensor (0-255).

    Args:
        source: Path, URL, bytes, a list of frames (images of any accepted form), a ``(T, H, W, C)`` array or
            a ``(T, C, H, W)`` tensor, or ``{"frames": ..., "audio": ...}`` (:func:`decoded_video`; the sound
            is not read here).
        options: Sampling and sizing.

    Raises:
        LCOInputError: Missing file, unreadable video, fewer than two frames, frames of different sizes.
    """
    if isinstance(source, dict):
        source = decoded_video(source)[0]
    if isinstance(source, list | tuple | np.ndarray | torch.Tensor):
        video = _frames_from_list(source, options)
    elif isinstance(source, bytes | bytearray) or is_reference(source) or is_file_object(source):
        with local_copy(source, limits=options.limits, suffix=".mp4") as path:
            video = read_video_frames(path, options, resize=True)
    else:
        raise LCOInputError(
            f"a video must be a path, URL, bytes, a list of frames or a 4-D array, got {type(source).__name__}."
        )
    if video.shape[0] == 0 or math.prod(video.shape) == 0:
        raise LCOInputError("the video has no frames.")
    return video.float()
