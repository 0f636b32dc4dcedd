"""The sound track of a video, for ``use_audio_in_video``: decoded with PyAV (no ffmpeg executable needed).

The reference pipeline (qwen-omni-utils) reads a video's sound through audioread, which runs
``ffmpeg -i VIDEO -f s16le -``: the first audio stream, converted to 16-bit PCM at its own rate and channel count,
then mixed down to mono and resampled to 16 kHz by librosa (soxr). This module does the same steps with the FFmpeg
libraries PyAV ships — the same conversion to 16-bit samples, the same mix-down and resampler — so the waveform
equals the reference's, without the executable. Only the first ``max_seconds`` (plus the resampler's margin) are
decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lco_embedding.core.errors import LCOInputError
from lco_embedding.preprocessing.audio import DECODE_MARGIN, AudioOptions, preprocess_audio
from lco_embedding.preprocessing.sources import is_file_object, is_reference, local_copy
from lco_embedding.preprocessing.video import VideoOptions, decoded_video, preprocess_video

__all__ = ["preprocess_video_with_sound", "read_soundtrack"]


def read_soundtrack(path: str, options: AudioOptions | None = None) -> np.ndarray | None:
    """The first audio stream of the video at ``path`` as float32 mono at ``options.sampling_rate``: None when the
    file has no audio stream, an empty array when its audio stream holds no samples.

    Raises:
        LCOInputError: The file cannot be decoded.
    """
    import av
    import librosa

    options = options or AudioOptions()
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            pcm = _decode_pcm16(container, stream, options.max_seconds)
            rate, channels = stream.rate, stream.channels
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        raise LCOInputError(
            f"cannot decode the video's sound track ({type(e).__name__}: {e}); the file is corrupt."
        ) from e
    if pcm.size == 0:
        return np.zeros(0, np.float32)
    waveform = (pcm.astype(np.float64) / 32768.0).astype(np.float32)  # librosa's buf_to_float
    if channels > 1:
        waveform = librosa.to_mono(waveform.reshape(-1, channels).T)
    if rate != options.sampling_rate:
        waveform = librosa.resample(waveform, orig_sr=rate, target_sr=options.sampling_rate)
    if options.max_seconds is not None:
        waveform = waveform[: int(options.max_seconds * options.sampling_rate)]
    return waveform


def preprocess_video_with_sound(
    source: Any, video_options: VideoOptions, audio_options: AudioOptions, *, required: bool
) -> tuple[Any, np.ndarray | None]:
    """A video's frames (as :func:`~lco_embedding.preprocessing.video.preprocess_video` gives them) and its sound
    track (:func:`read_soundtrack`), reading a URL or in-memory video once; a video decoded elsewhere may bring its
    sound as ``{"frames": ..., "audio": ...}``. The sound is None when the video has none (frames given as a list
    or array have none) and ``required`` is False.

    Raises:
        LCOInputError: The video cannot be read, or has no sound track and ``required`` is True.
    """
    if isinstance(source, dict):  # decoded elsewhere, with its sound
        frames, sound = decoded_video(source)
        if sound is None and required:
            raise LCOInputError(
                "the video's dict has no 'audio' (its sound track) to embed with it (use_audio_in_video=True): add "
                "it, or set use_audio_in_video to False (or 'auto') for this item."
            )
        waveform = None if sound is None else preprocess_audio(sound, audio_options)
        return preprocess_video(frames, video_options), waveform
    if not (isinstance(source, bytes | bytearray) or is_reference(source) or is_file_object(source)):
        if required:
            raise LCOInputError(
                "a video given as frames has no sound track to embed with it (use_audio_in_video): pass the video "
                "file, or set use_audio_in_video to False (or 'auto') for this item."
            )
        return preprocess_video(source, video_options), None
    with local_copy(source, limits=video_options.limits, suffix=".mp4") as path:
        frames = preprocess_video(path, video_options)
        sound = read_soundtrack(path, audio_options)
    if (sound is None or sound.size == 0) and required:
        what = "no sound track" if sound is None else "a sound track that holds no samples"
        raise LCOInputError(
            f"the video has {what} (use_audio_in_video=True needs sound): embed it without "
            "(use_audio_in_video=False), or with use_audio_in_video='auto' to use the sound only where there is some."
        )
    return frames, (None if sound is None or sound.size == 0 else sound)


def _decode_pcm16(container: Any, stream: Any, seconds: float | None) -> np.ndarray:
    """Interleaved 16-bit samples of ``stream`` at its own rate and layout, as ``ffmpeg -f s16le`` writes them: the
    encoder's padding after the stream's end (its container duration) is cut, as the ffmpeg command does."""
    import av

    resampler = av.AudioResampler(format="s16")
    wanted = None if seconds is None else int((seconds + DECODE_MARGIN) * stream.rate) * stream.channels
    chunks: list[np.ndarray] = []
    held = 0
    first: float | None = None  # the first decoded sample's time, in seconds

    def keep(frames: list[Any]) -> None:
        nonlocal held
        for frame in frames:
            chunk = frame.to_ndarray().reshape(-1)
            chunks.append(chunk)
            held += chunk.size

    for frame in container.decode(stream):
        if first is None and frame.pts is not None and frame.time_base is not None:
            first = float(frame.pts * frame.time_base)
        keep(resampler.resample(frame))
        if wanted is not None and held >= wanted:
            break
    else:
        keep(resampler.resample(None))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if stream.duration is not None and stream.time_base is not None:
        end = float((stream.duration + (stream.start_time or 0)) * stream.time_base)
        pcm = pcm[: max(0, round((end - (first or 0.0)) * stream.rate)) * stream.channels]
    return pcm if wanted is None else pcm[:wanted]
