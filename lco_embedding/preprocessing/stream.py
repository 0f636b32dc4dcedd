"""Streaming audio: decode a long audio file (or a video's sound track) once and yield fixed-length windows.

The file is decoded with PyAV packet by packet; each frame is converted to float32 as libsndfile converts it
(16-bit PCM: ``sample / 32768``; 32-bit and 24-bit: ``sample / 2**31``; 8-bit unsigned: ``(sample - 128) / 128``),
mixed down to mono by averaging the channels (``librosa.to_mono``) and resampled with soxr's streaming resampler
at librosa's default quality (``soxr_hq``), then zero-padded to librosa's length, ``ceil(n * target / rate)``. The
result is what ``librosa.load(path, sr=sampling_rate)`` gives for the whole file: on wav (16-bit, mono and stereo,
8 / 16 / 22.05 / 44.1 kHz) and flac (16 / 48 kHz) files the measured maximum absolute difference is 0.0 — soxr's
streaming and one-shot paths run the same filter, so the samples are bit-identical (the tests allow 1e-6). An mp4's
AAC track equals PyAV's whole decode resampled by librosa (0.0 too). A source already at ``sampling_rate`` is not
resampled at all.

Only the samples of the windows being filled (at most window + stride seconds, plus one decoded frame) are held:
memory is O(window + stride), not O(file). A two-hour 16 kHz wav (230 MB on disk, 460 MB as float32) streams in 30-s
windows with a peak resident growth under 50 MB (measured; ``librosa.load`` of it peaks about 750 MB higher).

Does not read URLs, bytes or file objects (only local paths), nor any audio stream but the first; a stream that
changes its sampling rate midway is refused. A file that fails to decode midway raises after the windows before
the damage have been yielded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.sources import local_path
from lco_embedding.preprocessing.windows import WindowPlan

__all__ = ["AudioWindow", "audio_duration", "audio_windows"]

_MARGIN = 64
"""Output samples held past a window's end before it is yielded: the final length fix (librosa's pad or trim to
``ceil(n * ratio)``) touches at most a sample or two at the very end, so a window yielded early is never cut."""


@dataclass(frozen=True)
class AudioWindow:
    """One window of a long audio.

    Attributes:
        start: Seconds from the start of the audio (window number x stride).
        end: Seconds; ``min(start + window, duration)``.
        samples: float32 mono samples at the requested rate: ``whole[round(start * sr) : round(end * sr)]`` of the
            whole decoded audio.
    """

    start: float
    end: float
    samples: np.ndarray


def _decode_error(e: BaseException) -> LCOInputError:
    return LCOInputError(
        f"cannot decode the audio ({type(e).__name__}: {e}); the file is corrupt or not an audio or video file."
    )


def _ffmpeg_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.FFmpegError, OSError, ValueError, EOFError)


def _open(path: str) -> Any:
    """Open ``path`` with PyAV and check it has an audio stream; the caller closes the container."""
    import av

    file = local_path(path)
    if file is None:
        raise LCOInputError(f"audio streaming reads local files only, got {path!r}; download it first.")
    try:
        container = av.open(file)
    except _ffmpeg_errors() as e:
        raise _decode_error(e) from e
    if not container.streams.audio:
        video = " (it holds video only)" if container.streams.video else ""
        container.close()
        raise LCOInputError(f"the file has no audio stream{video}; give a file with sound.")
    return container


def _to_float(array: np.ndarray) -> np.ndarray:
    """Samples as float32, scaled as libsndfile scales them (exact: the factors are powers of two)."""
    if array.dtype == np.int16:
        return array.astype(np.float32) * np.float32(1 / 32768)
    if array.dtype == np.int32:
        return array.astype(np.float32) * np.float32(1 / 2**31)
    if array.dtype == np.uint8:
        return (array.astype(np.float32) - np.float32(128)) * np.float32(1 / 128)
    if array.dtype == np.int64:
        return (array.astype(np.float64) / 2**63).astype(np.float32)
    return array.astype(np.float32, copy=False)


def _mono(frame: Any) -> np.ndarray:
    """One decoded frame as float32 mono samples."""
    array = frame.to_ndarray()
    channels = frame.layout.nb_channels
    # (samples, channels), as soundfile returns them; librosa.to_mono averages its transpose.
    array = array.T if frame.format.is_planar else array.reshape(-1, channels)
    array = _to_float(array)
    return array[:, 0].copy() if channels == 1 else np.mean(array.T, axis=0)


def _decoded(container: Any) -> Iterator[tuple[int, np.ndarray]]:
    """(native rate, mono float32 samples) of each decoded frame of the first audio stream."""
    stream = container.streams.audio[0]
    try:
        for packet in container.demux(stream):  # the last, empty packet flushes the decoder
            for frame in packet.decode():
                if frame.samples:
                    yield frame.sample_rate, _mono(frame)
    except _ffmpeg_errors() as e:
        raise _decode_error(e) from e


class _Buffer:
    """Samples from absolute position ``base`` on, in a growable array that drops what no window needs."""

    def __init__(self, capacity: int):
        self.data = np.empty(capacity, np.float32)
        self.base = 0
        self.size = 0

    @property
    def stop(self) -> int:
        """Absolute position after the last sample held."""
        return self.base + self.size

    def append(self, samples: np.ndarray, keep_from: int) -> None:
        """Add ``samples``; positions before ``keep_from`` may be dropped to make room."""
        if self.size + samples.size > self.data.size:
            drop = min(max(keep_from - self.base, 0), self.size)
            self.data[: self.size - drop] = self.data[drop : self.size]
            self.base, self.size = self.base + drop, self.size - drop
            if self.size + samples.size > self.data.size:
                grown = np.empty(max(2 * self.data.size, self.size + samples.size), np.float32)
                grown[: self.size] = self.data[: self.size]
                self.data = grown
        self.data[self.size : self.size + samples.size] = samples
        self.size += samples.size

    def resize(self, stop: int) -> None:
        """Zero-pad or cut the held samples so that they end at absolute position ``stop``."""
        if stop > self.stop:
            self.append(np.zeros(stop - self.stop, np.float32), keep_from=self.base)
        self.size = max(stop - self.base, 0)

    def take(self, start: int, stop: int) -> np.ndarray:
        """A copy of the samples at absolute positions ``[start, stop)``."""
        return self.data[start - self.base : stop - self.base].copy()


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number of seconds, got {value!r}.")


def audio_windows(
    path: str,
    *,
    window: float = 30.0,
    stride: float | None = None,
    sampling_rate: int = 16000,
    spans: list[tuple[float, float]] | None = None,
) -> Iterator[AudioWindow]:
    """Decode a long audio file once and yield its windows, without holding the whole file in memory.

    Windows are planned by :class:`~lco_embedding.preprocessing.windows.WindowPlan`: they start at 0, ``stride``,
    ``2 * stride``, ... while the start lies before the end; each is ``window`` seconds long but the last, which
    ends with the audio (``[90, 95)`` for 95 s in 30-s windows). With overlap (``stride < window``) the windows stop
    after the first that reaches the end. ``spans`` gives the windows instead (a video's own, for its sound track),
    each cut at the audio's end. The samples equal slices of ``librosa.load(path, sr=sampling_rate)[0]`` (see the
    module docstring for the measured difference).

    The arguments and the file (it exists, opens, has an audio stream) are checked when this is called; the
    samples are decoded as the windows are consumed.

    Args:
        path: Local audio or video file (wav, flac, mp3, ogg, m4a, mp4, ...); its first audio stream is read.
        window: Seconds per window.
        stride: Seconds between window starts; defaults to ``window`` (no overlap). At most ``window``.
        sampling_rate: Rate of the yielded samples (16,000 Hz for the model's feature extractor).
        spans: ``(start, end)`` seconds of each window, in order (``window`` and ``stride`` are then ignored).

    Returns:
        An iterator of :class:`AudioWindow`.

    Raises:
        ValueError: ``window``, ``stride`` or ``sampling_rate`` out of range.
        LCOInputError: Missing or unreadable file, no audio stream, undecodable data, no samples (the last three
            may come while iterating).

    Example:
        >>> for w in audio_windows("lecture.wav", window=0.5):
        ...     print(w.start, w.end, w.samples.shape)
        0.0 0.5 (8000,)
        0.5 1.0 (8000,)
    """
    _check_seconds("window", window)
    stride = window if stride is None else stride
    _check_seconds("stride", stride)
    if stride > window:
        raise ValueError(
            f"stride must be at most window ({window:g} s), got {stride:g} s; a larger stride would skip audio."
        )
    if not (isinstance(sampling_rate, int | np.integer) and sampling_rate > 0):
        raise ValueError(f"sampling_rate must be a positive integer, got {sampling_rate!r}.")
    _open(path).close()
    return _windows(path, WindowPlan(float(window), float(stride)), int(sampling_rate), spans)


def _windows(path: str, plan: WindowPlan, rate: int, given: list[tuple[float, float]] | None) -> Iterator[AudioWindow]:
    import soxr

    longest = max((end - start for start, end in given), default=0.0) if given else plan.window
    buffer = _Buffer(int(round((longest + plan.stride) * rate)) + 4 * _MARGIN)
    number = 0  # the next window to yield
    native = None
    resampler = None
    decoded = 0  # samples at the native rate

    def bounds(k: int) -> tuple[float, float] | None:
        """Window ``k`` as long as the end is not known (None past the given spans)."""
        if given is not None:
            return given[k] if k < len(given) else None
        return plan.bounds(k)

    container = _open(path)
    try:
        for frame_rate, samples in _decoded(container):
            if native is None:
                native = frame_rate
                if native != rate:
                    resampler = soxr.ResampleStream(native, rate, 1, dtype="float32", quality="HQ")
            elif frame_rate != native:
                raise LCOInputError(
                    f"the audio changes its sampling rate midway ({native} Hz, then {frame_rate} Hz); "
                    "convert it to one rate first."
                )
            decoded += samples.size
            if resampler is not None:
                samples = resampler.resample_chunk(samples)
            current = bounds(number)
            buffer.append(samples, keep_from=int(round((current[0] if current else 0.0) * rate)))
            while (current := bounds(number)) is not None:
                start, end = current
                if buffer.stop < int(round(end * rate)) + _MARGIN:
                    break
                yield AudioWindow(start, end, buffer.take(int(round(start * rate)), int(round(end * rate))))
                number += 1
            if given is not None and number >= len(given):
                return
    finally:
        container.close()
    if native is None:
        raise LCOInputError("the audio is empty (no samples); give at least a few milliseconds of sound.")
    if resampler is not None:
        buffer.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True), keep_from=buffer.base)
        # librosa.resample's length, computed as it computes it (fix_length pads with zeros).
        total = int(np.ceil(decoded * (float(rate) / native)))
    else:
        total = decoded
    buffer.resize(total)
    duration = total / rate
    remaining = (given if given is not None else plan.spans(duration))[number:]
    for start, end in remaining:
        first, last = int(round(start * rate)), int(round(min(end, duration) * rate))
        if first >= total:
            break
        yield AudioWindow(start, min(end, duration), buffer.take(first, last))


def audio_duration(path: str) -> float:
    """Seconds of the first audio stream of a file: the container's figure when it has one, else by decoding.

    The container's figure is cheap but may differ from the decoded length by a codec frame (AAC priming and
    padding); the decoded length counts the samples at the file's own rate.

    Args:
        path: Local audio or video file.

    Returns:
        The duration in seconds.

    Raises:
        LCOInputError: Missing or unreadable file, no audio stream, undecodable data.

    Example:
        >>> audio_duration("lecture.wav")
        1.0
    """
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            import av

            return container.duration / av.time_base
        samples, rate = 0, 0
        for frame_rate, mono in _decoded(container):
            samples, rate = samples + mono.size, frame_rate
        if not rate:
            raise LCOInputError("the audio is empty (no samples); give at least a few milliseconds of sound.")
        return samples / rate
    finally:
        container.close()
