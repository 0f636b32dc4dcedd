"""Synthetic test media, written by the tests themselves: images, WAVs, videos with and without sound tracks, and
a corpus whose modalities sit apart (see :mod:`lco_embedding.testing`)."""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "make_test_media",
    "modality_offset_corpus",
    "synthetic_image",
    "write_audio_only_mp4",
    "write_clip_with_silent_track",
    "write_clip_with_sound",
    "write_long_wav",
    "write_mp4",
    "write_noise_jpegs",
    "write_video",
    "write_wav",
]


def synthetic_image(height: int, width: int, rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    """A ``(height, width, channels)`` uint8 gradient with noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // max(width - 1, 1)), (y * 255 // max(height - 1, 1)), (x + y) % 256], -1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    if channels == 4:
        arr = np.concatenate([arr, np.full((height, width, 1), 200, np.uint8)], -1)
    return arr


NOISE_JPEG_SIZES = ((480, 640), (200, 300), (1200, 1600), (57, 91), (1000, 333), (2000, 2000))
"""(height, width) of :func:`write_noise_jpegs`: below, near and above the default pixel budget, and thin."""


def write_noise_jpegs(folder: str | Path, *, seed: int = 0) -> list[Path]:
    """Write uniform-noise JPEGs (quality 90) of the :data:`NOISE_JPEG_SIZES`: the hardest case for a resize that
    differs from the reference's (every pixel is an edge)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for height, width in NOISE_JPEG_SIZES:
        path = folder / f"noise_{height}x{width}.jpg"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def write_video(path: str | Path, frames: Iterable[np.ndarray], *, fps: int) -> Path:
    """Write ``(height, width, 3)`` uint8 frames (even sizes) as an MPEG-4 video."""
    import av

    with av.open(str(path), "w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream("mpeg4", rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError("write_video needs at least one frame.")
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_mp4(path: str | Path, *, seconds: float, fps: int, width: int, height: int, rng: np.random.Generator) -> Path:
    """Write an MPEG-4 video of a gradient scrolling sideways."""
    first = synthetic_image(height, width, rng)
    return write_video(path, (np.roll(first, shift=4 * i, axis=1) for i in range(round(fps * seconds))), fps=fps)


def write_audio_only_mp4(path: str | Path, *, seconds: float = 1.3, rate: int = 16000) -> Path:
    """Write an MPEG-4 file with an AAC sound stream (silence) and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        _encode_audio(container, stream, np.zeros((1, max(1, round(seconds * rate / 1024)) * 1024), np.float32), rate)
    return Path(path)


def _encode_audio(container: Any, stream: Any, sound: np.ndarray, rate: int) -> None:
    """Encode ``(channels, samples)`` float samples into ``stream`` of ``container``, 1024 at a time."""
    import av

    layout = "mono" if sound.shape[0] == 1 else "stereo"
    for i, start in enumerate(range(0, sound.shape[1], 1024)):
        chunk = np.zeros((sound.shape[0], 1024), np.float32)
        piece = sound[:, start : start + 1024]
        chunk[:, : piece.shape[1]] = piece
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = rate, i * 1024
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_clip_with_sound(
    path: str | Path,
    *,
    seconds: float,
    fps: int = 4,
    width: int = 64,
    height: int = 48,
    rate: int = 16000,
    tone: float = 440.0,
    channels: int = 1,
    video_codec: str = "mpeg4",
) -> Path:
    """Write a video with a sound track: a bright square moving across a dark frame, and a sine ``tone`` (Hz,
    rising over the clip, plus a little noise) encoded as AAC at ``rate`` with ``channels`` channels. With
    ``video_codec="mjpeg"`` (and a ``.mkv`` path) every frame is a key frame: a cut made by copying packets decodes
    to the same frames."""
    import av

    rng = np.random.default_rng(int(tone))
    frames = round(seconds * fps)
    samples = round(seconds * rate)
    t = np.arange(samples) / rate
    sound = 0.4 * np.sin(2 * np.pi * (tone + 40 * t / max(seconds, 1e-9)) * t) + 0.02 * rng.standard_normal(samples)
    sound = np.repeat(sound[None, :], channels, axis=0).astype(np.float32)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=fps)
        video.height, video.width = height, width
        video.pix_fmt = {"png": "rgb24", "mjpeg": "yuvj420p"}.get(video_codec, "yuv420p")
        audio = container.add_stream("aac", rate=rate, layout=layout)
        side = max(4, height // 4)
        for i in range(frames):
            image = np.full((height, width, 3), 30, np.uint8)
            x = int((width - side) * i / max(frames - 1, 1))
            image[height // 3 : height // 3 + side, x : x + side] = (230, 200, 40)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        _encode_audio(container, audio, sound, rate)
    return Path(path)


def write_clip_with_silent_track(path: str | Path, *, seconds: float = 2.0, fps: int = 4) -> Path:
    """Write a video whose sound track exists (an AAC stream in the container) but holds no packets, as some
    screen recorders and muted exports leave it. Give a ``.mkv`` path: MP4 muxers drop a stream without packets."""
    import av

    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.height, video.width, video.pix_fmt = 48, 64, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")  # never given a sample
        first = synthetic_image(48, 64, rng)
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.roll(first, 4 * i, axis=1), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in [*video.encode(), *audio.encode(None)]:
            container.mux(packet)
    return Path(path)


def write_long_wav(path: str | Path, *, minutes: int, rate: int = 16000, silent: bool = False) -> Path:
    """Write ``minutes`` of a 220 Hz tone (or of silence) as 16-bit mono WAV, a minute at a time (never the whole in
    memory)."""
    amplitude = 0.0 if silent else 0.2
    minute = (amplitude * np.sin(2 * np.pi * 220 * np.arange(60 * rate) / rate) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        for _ in range(minutes):
            f.writeframes(minute)
    return Path(path)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write float samples in [-1, 1] (``(n,)`` or ``(n, channels)``) as 16-bit PCM WAV."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())


def make_test_media(folder: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Write small synthetic media files (png, jpg, wav, flac, mp4) and return their paths by name.

    Keys: ``png``, ``png_rgba``, ``jpg``, ``gray_png``, ``wav`` (16 kHz mono, 1 s), ``wav_22k_stereo``
    (22.05 kHz stereo), ``flac``, ``mp4`` (2 s at 8 fps, 64x48), ``mp4_short`` (1 s), ``corrupt_png``,
    ``empty_wav`` (no samples).
    """
    import soundfile as sf
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, Path] = {}

    def image_array(h: int, w: int, channels: int = 3) -> np.ndarray:
        return synthetic_image(h, w, rng, channels)

    out["png"] = folder / "gradient.png"
    Image.fromarray(image_array(60, 80)).save(out["png"])
    out["png_rgba"] = folder / "rgba.png"
    Image.fromarray(image_array(50, 50, 4), mode="RGBA").save(out["png_rgba"])
    out["jpg"] = folder / "photo.jpg"
    Image.fromarray(image_array(90, 70)).save(out["jpg"], quality=90)
    out["gray_png"] = folder / "gray.png"
    Image.fromarray(image_array(40, 40)[..., 0]).save(out["gray_png"])
    out["corrupt_png"] = folder / "corrupt.png"
    out["corrupt_png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)

    t = np.arange(16000) / 16000
    out["wav"] = folder / "tone.wav"
    write_wav(out["wav"], 0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size), 16000)
    t22 = np.arange(22050 // 2) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 330 * t22), 0.3 * np.sin(2 * np.pi * 550 * t22)], -1) * 0.5
    out["wav_22k_stereo"] = folder / "stereo_22k.wav"
    write_wav(out["wav_22k_stereo"], stereo, 22050)
    out["flac"] = folder / "chirp.flac"
    chirp = 0.4 * np.sin(2 * np.pi * (200 + 600 * t[:12000]) * t[:12000])
    sf.write(out["flac"], chirp.astype(np.float32), 16000, format="FLAC")
    out["empty_wav"] = folder / "empty.wav"
    write_wav(out["empty_wav"], np.zeros(0), 16000)

    for name, seconds in (("mp4", 2), ("mp4_short", 1)):
        out[name] = folder / f"{name}.mp4"
        write_mp4(out[name], seconds=seconds, fps=8, width=64, height=48, rng=rng)
    return out


def modality_offset_corpus(
    rng: np.random.Generator,
    *,
    topics: int = 40,
    dimension: int = 256,
    offset: float = 1.5,
    noise: float = 0.1,
    modalities: tuple[str, ...] = ("text", "image", "audio", "video"),
) -> tuple[np.ndarray, list[str], list[int], np.ndarray]:
    """A corpus with a known modality gap, for testing modality-aware ranking: one row per (modality, topic), each
    its topic's unit direction plus its modality's offset (``offset`` times a unit vector every row of the modality
    shares) plus noise, normalised; and one query per topic, its direction plus the first modality's offset. Raw
    cosine then ranks every row of the first modality (about ``offset**2 / (1 + offset**2)``) above the other
    modalities' rows of the query's own topic (about ``1 / (1 + offset**2)``).

    Returns:
        ``(vectors [rows, dimension], modality of each row, topic of each row, queries [topics, dimension])``.
    """

    def unit(*shape: int) -> np.ndarray:
        x = rng.standard_normal((*shape, dimension))
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    directions = unit(topics)
    offsets = dict(zip(modalities, offset * unit(len(modalities)), strict=True))
    rows, row_modalities, topic_of = [], [], []
    for modality in modalities:
        for topic in range(topics):
            rows.append(directions[topic] + offsets[modality] + noise * unit()[0])
            row_modalities.append(modality)
            topic_of.append(topic)
    vectors = np.array(rows, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = np.array([directions[t] + offsets[modalities[0]] for t in range(topics)], dtype=np.float32)
    return vectors, row_modalities, topic_of, queries
