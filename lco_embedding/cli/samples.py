"""The demo's sample set, drawn and synthesised by code (about 500 KB): shapes, sounds, short clips, captions, and
one longer recording of the four sounds in a row (for segments).

Each item is simple enough to describe in a few words, so a real checkpoint has something to match across
modalities: a red circle, a ticking metronome, a ball moving right. Written once per folder; the files are the same
on every machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CAPTIONS", "Samples", "write_samples"]

RATE = 16000
SECONDS = 1.5
SIZE = 160

CAPTIONS = {
    "red-circle": "a red circle on a white background",
    "blue-square": "a blue square",
    "green-triangle": "a green triangle pointing up",
    "beep": "a steady high-pitched beep",
    "static": "loud white noise, like radio static",
    "metronome": "the regular ticking of a metronome",
    "siren": "a siren rising and falling",
    "moving-ball": "a red ball moving from left to right",
    "flashing": "a screen flashing black and white",
}
"""Caption id -> text (the ``text`` rows of ``captions.jsonl``)."""


@dataclass
class Samples:
    """Where the sample set lies: a folder of media and a JSONL table of captions (plus one mixed row)."""

    folder: Path
    media: Path
    captions: Path

    @property
    def medley(self) -> Path:
        """A 12-s recording: the beep, the static, the metronome and the siren, 3 s each, in that order."""
        return self.folder / "long" / "medley.wav"


def _shape(path: Path, shape: str, points: list[tuple[int, int]], colour: tuple[int, int, int]) -> None:
    """Draw one filled shape (``ellipse``, ``rectangle`` or ``polygon`` of ``ImageDraw``) on white."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), "white")
    getattr(ImageDraw.Draw(image), shape)(points, fill=colour)
    image.save(path)


def _images(media: Path) -> None:
    low, high = SIZE // 5, SIZE - SIZE // 5
    _shape(media / "red_circle.png", "ellipse", [(low, low), (high, high)], (220, 20, 30))
    _shape(media / "blue_square.png", "rectangle", [(low, low), (high, high)], (20, 60, 220))
    _shape(media / "green_triangle.png", "polygon", [(SIZE // 2, low), (high, high), (low, high)], (30, 160, 40))


def _sounds(media: Path) -> None:
    from lco_embedding.testing import write_wav

    t = np.arange(int(RATE * SECONDS)) / RATE
    rng = np.random.default_rng(0)
    write_wav(media / "beep.wav", 0.5 * np.sin(2 * np.pi * 880 * t), RATE)
    write_wav(media / "static.wav", np.clip(0.3 * rng.standard_normal(t.size), -1, 1), RATE)
    clicks = np.zeros_like(t)
    for start in range(0, t.size, RATE // 4):  # four ticks a second, each a short decaying burst
        burst = np.exp(-np.arange(400) / 60) * np.sin(2 * np.pi * 2000 * np.arange(400) / RATE)
        clicks[start : start + 400] = 0.8 * burst[: t.size - start]
    write_wav(media / "metronome.wav", clicks, RATE)
    sweep = 700 + 400 * np.sin(2 * np.pi * 0.7 * t)  # the pitch rises and falls
    write_wav(media / "siren.wav", 0.5 * np.sin(2 * np.pi * np.cumsum(sweep) / RATE), RATE)


def _medley(path: Path) -> None:
    """The four sounds one after another, 3 s each (:attr:`Samples.medley`)."""
    from lco_embedding.testing import write_wav

    t = np.arange(3 * RATE) / RATE
    rng = np.random.default_rng(1)
    clicks = np.zeros_like(t)
    burst = np.exp(-np.arange(400) / 60) * np.sin(2 * np.pi * 2000 * np.arange(400) / RATE)
    for start in range(0, t.size - 400, RATE // 4):
        clicks[start : start + 400] = 0.8 * burst
    sweep = 700 + 400 * np.sin(2 * np.pi * 0.7 * t)
    parts = [
        0.5 * np.sin(2 * np.pi * 880 * t),
        np.clip(0.3 * rng.standard_normal(t.size), -1, 1),
        clicks,
        0.5 * np.sin(2 * np.pi * np.cumsum(sweep) / RATE),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, np.concatenate(parts), RATE)


def _clips(media: Path) -> None:
    from lco_embedding.testing import write_video

    fps, count, height, width = 8, 16, 96, 128

    def ball(i: int) -> np.ndarray:
        frame = np.full((height, width, 3), 255, np.uint8)
        y, x = np.mgrid[0:height, 0:width]
        centre = 12 + i * (width - 24) / (count - 1)
        frame[(x - centre) ** 2 + (y - height / 2) ** 2 <= 12**2] = (220, 20, 30)
        return frame

    write_video(media / "moving_ball.mp4", (ball(i) for i in range(count)), fps=fps)
    flashes = (np.full((height, width, 3), 255 * (i // 2 % 2), np.uint8) for i in range(count))
    write_video(media / "flashing.mp4", flashes, fps=fps)


def write_samples(folder: str | Path) -> Samples:
    """Write the sample set into ``folder`` (kept if it is already there) and say where its parts are."""
    folder = Path(folder)
    media = folder / "media"
    captions = folder / "captions.jsonl"
    samples = Samples(folder=folder, media=media, captions=captions)
    if not captions.is_file():
        media.mkdir(parents=True, exist_ok=True)
        _images(media)
        _sounds(media)
        _clips(media)
        _medley(samples.medley)
        rows = [{"id": key, "text": text} for key, text in CAPTIONS.items()]
        rows.append({"id": "red-circle+caption", "text": "a shape", "image": "media/red_circle.png"})
        temporary = captions.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        temporary.replace(captions)  # written last: its presence means the set is complete
    return samples
