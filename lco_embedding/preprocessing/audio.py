"""Audio preprocessing: load from any source, mix down to mono, resample to 16 kHz, cap the duration.

Files are read with ``librosa.load(..., sr=16000)`` as in the reference pipeline (qwen-omni-utils); in-memory
waveforms go through the same mono mix-down and the same resampler (soxr, librosa's default). Only the first
``max_seconds`` (plus one second, so the resampler's edge lies beyond the cut) are decoded: an hour-long file costs
what five minutes cost. The samples kept equal those of decoding the whole file and then cutting, as the
reference does (the resampling filter reaches a few milliseconds, not a second).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lco_embedding.core import notes
from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.sources import ReadLimits, is_file_object, is_reference, local_path, read_bytes

__all__ = ["AudioOptions", "preprocess_audio"]


@dataclass(frozen=True)
class AudioOptions:
    """How audio is prepared for the model.

    Attributes:
        sampling_rate: Rate the feature extractor expects (16,000 Hz for Whisper-style encoders).
        max_seconds: Longer audio is cut to this many seconds. Default 300, Qwen2.5-Omni's feature-extractor
            chunk length (the reference pipeline cuts there too). ``None`` keeps everything.
        limits: How long and how large a URL download may be.
    """

    sampling_rate: int = 16000
    max_seconds: float | None = 300.0
    limits: ReadLimits = field(default_factory=ReadLimits)

    def __post_init__(self) -> None:
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_audio_seconds must be positive or None, got {self.max_seconds}.")


DECODE_MARGIN = 1.0
"""Seconds decoded past ``max_seconds``, so the resampler's filter sees the samples after the cut."""


def _decode_errors() -> tuple[type[BaseException], ...]:
    """What librosa's readers raise for data they cannot decode."""
    import audioread
    import soundfile

    errors: list[type[BaseException]] = [soundfile.LibsndfileError, audioread.DecodeError, EOFError, ValueError]
    errors.append(getattr(audioread, "NoBackendError", audioread.DecodeError))
    return (*errors, RuntimeError, OSError)


def _load_file(data: str | bytes, sampling_rate: int, seconds: float | None, suffix: str = "") -> np.ndarray:
    import librosa

    duration = None if seconds is None else seconds + DECODE_MARGIN
    errors = _decode_errors()
    try:
        if isinstance(data, bytes):
            try:
                return librosa.load(io.BytesIO(data), sr=sampling_rate, duration=duration)[0]
            except errors:
                # soundfile cannot read every container from memory (e.g. m4a); let audioread/ffmpeg try a file.
                with tempfile.NamedTemporaryFile(suffix=suffix or ".audio", delete=False) as f:
                    f.write(data)
                try:
                    return librosa.load(f.name, sr=sampling_rate, duration=duration)[0]
                finally:
                    os.unlink(f.name)
        return librosa.load(data, sr=sampling_rate, duration=duration)[0]
    except librosa.util.exceptions.ParameterError as e:  # librosa checks what it decoded
        if "not finite" in str(e):
            raise LCOInputError("the audio holds NaN or infinite samples; the file's samples are damaged.") from e
        raise
    except errors as e:
        raise LCOInputError(
            f"cannot decode the audio ({type(e).__name__}: {e}); the data is corrupt or in a format neither "
            "libsndfile nor ffmpeg reads (wav, flac, mp3 and ogg are safe)."
        ) from e


def _waveform(array: Any, rate: int, target: int, seconds: float | None = None) -> np.ndarray:
    import librosa

    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if np.iscomplexobj(array):
        raise LCOInputError("the audio array holds complex numbers; pass real samples (a spectrum is not audio).")
    if array.dtype.kind not in "iuf":
        raise LCOInputError(f"audio samples must be integers or floats, got dtype {array.dtype}.")
    if array.ndim == 2:
        # (channels, samples) or (samples, channels): the channel axis is the short one.
        if array.shape[0] > array.shape[1]:
            array = array.T
    elif array.ndim != 1:
        raise LCOInputError(
            f"an audio array must be 1-D (samples) or 2-D (channels x samples), got shape {array.shape}."
        )
    if seconds is not None:  # only what is kept (and the resampler's margin) is converted and resampled
        array = array[..., : int((seconds + DECODE_MARGIN) * rate)]
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    array = array.astype(np.float32)
    if array.size == 0:
        return array.reshape(-1)
    if not np.isfinite(array).all():
        raise LCOInputError("the audio array holds NaN or infinite values.")
    if array.ndim == 2:
        array = librosa.to_mono(array)
    if rate != target:
        array = librosa.resample(array, orig_sr=rate, target_sr=target)
    return array


def preprocess_audio(source: Any, options: AudioOptions = AudioOptions()) -> np.ndarray:
    """Load audio as a float32 mono waveform at ``options.sampling_rate``.

    Args:
        source: Path, URL, data URI, bytes, ``{"array": ..., "sampling_rate": ...}``, or a bare 1-D/2-D array
            or tensor taken to be at ``options.sampling_rate`` already.
        options: Sampling rate and duration cap.

    Raises:
        LCOInputError: Missing file, unreadable data, empty audio, NaN samples, bad array shape.
    """
    target = options.sampling_rate
    if isinstance(source, dict):
        rate = source.get("sampling_rate")
        if not isinstance(rate, int | np.integer) or rate <= 0:
            raise LCOInputError(f"'sampling_rate' must be a positive integer, got {rate!r}.")
        waveform = _waveform(source["array"], int(rate), target, options.max_seconds)
    elif isinstance(source, np.ndarray | torch.Tensor):
        waveform = _waveform(source, target, target, options.max_seconds)
    elif isinstance(source, bytes | bytearray) or is_file_object(source):
        suffix = os.path.splitext(str(getattr(source, "name", "")))[1]
        waveform = _load_file(read_bytes(source), target, options.max_seconds, suffix)
    elif is_reference(source):
        path = local_path(source)
        if path is not None:
            waveform = _load_file(path, target, options.max_seconds)
        else:
            suffix = os.path.splitext(str(source).split("?", 1)[0])[1]
            waveform = _load_file(read_bytes(source, limits=options.limits), target, options.max_seconds, suffix)
    else:
        raise LCOInputError(
            "audio must be a path, URL, data URI, bytes, {'array': ..., 'sampling_rate': ...} or a 1-D array, "
            f"got {type(source).__name__}."
        )
    if waveform.size == 0:
        raise LCOInputError("the audio is empty (no samples); give at least a few milliseconds of sound.")
    if not np.isfinite(waveform).all():
        raise LCOInputError("the audio holds NaN or infinite samples; the file's samples are damaged.")
    if options.max_seconds is not None:
        kept = int(options.max_seconds * target)
        if len(waveform) > kept:
            cut = _seconds_cut(source, options.max_seconds, len(waveform) / target, target)
            notes.note(notes.AUDIO_SECONDS, cut)
        waveform = waveform[:kept]
    return waveform


def _seconds_cut(source: Any, max_seconds: float, decoded: float, rate: int) -> float:
    """How much sound past ``max_seconds`` the item had: from an array's length, or a file's header (only the
    first ``max_seconds`` plus a margin were decoded); the decoded excess when the header says nothing."""
    if isinstance(source, dict):
        rate, array = source.get("sampling_rate"), np.asarray(source["array"])
        return max(0.0, max(array.shape) / float(rate) - max_seconds)
    if isinstance(source, np.ndarray | torch.Tensor):
        return max(0.0, max(source.shape) / float(rate) - max_seconds) if source.ndim else 0.0
    duration = _header_duration(source)
    return max(0.0, (duration if duration is not None else decoded) - max_seconds)


def _header_duration(source: Any) -> float | None:
    """A file's duration from its header (libsndfile, else PyAV), or None."""
    import soundfile

    try:
        if isinstance(source, bytes | bytearray):
            return float(soundfile.info(io.BytesIO(source)).duration)
        path = local_path(source) if is_reference(source) else None
        if path is not None:
            return float(soundfile.info(path).duration)
    except Exception:  # not a format libsndfile reads from a header (mp3 in old libsndfile, m4a): try PyAV
        pass
    try:
        import av

        target = io.BytesIO(source) if isinstance(source, bytes | bytearray) else local_path(source)
        if target is None:
            return None
        with av.open(target) as container:
            return None if container.duration is None else container.duration / 1_000_000
    except Exception:
        return None
