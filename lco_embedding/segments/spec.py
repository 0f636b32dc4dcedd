"""How long media and long texts are cut into segments: :class:`SegmentSpec`, and its command-line form.

Audio and video are cut into windows of seconds, text into windows of tokens of the checkpoint's tokenizer (with
an overlap, at sentence ends where possible: :mod:`lco_embedding.segments.text`). A modality whose window is None is
not cut: its items are embedded whole, as one segment each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lco_embedding.core.modalities import SOUND, spec_of

__all__ = ["MAX_WINDOW_SECONDS", "MAX_WINDOW_TOKENS", "SegmentSpec"]

MAX_WINDOW_SECONDS = 86_400.0
"""The longest media window or stride a spec takes (a day): longer ones are a typo, and would size buffers by it."""
MAX_WINDOW_TOKENS = 1_000_000
"""The longest text window a spec takes."""

_PART = re.compile(r"^\s*(audio|video|text)\s*=\s*([0-9.]+)\s*(s|sec|seconds|tok|tokens)?\s*$")


@dataclass(frozen=True)
class SegmentSpec:
    """Window sizes per modality (defaults: 30-s audio and video windows, 300-token text windows overlapping by
    50 tokens).

    Attributes:
        audio: Seconds per audio window; None embeds audio whole.
        video: Seconds per video window (frames sampled in each as the model's video settings say); None: whole.
        text: Tokens per text window (at most the model's ``max_length``); None: whole.
        audio_stride: Seconds from one audio window's start to the next (default: ``audio``, no overlap).
        video_stride: Seconds from one video window's start to the next (default: ``video``).
        text_overlap: Tokens each text window repeats of the one before (default 50).
    """

    audio: float | None = 30.0
    video: float | None = 30.0
    text: int | None = 300
    audio_stride: float | None = None
    video_stride: float | None = None
    text_overlap: int = 50

    def __post_init__(self) -> None:
        for name in ("audio", "video", "audio_stride", "video_stride"):
            value = getattr(self, name)
            if value is not None and not (_number(value) and 0 < value <= MAX_WINDOW_SECONDS):
                raise ValueError(
                    f"segment {name} must be a positive number of seconds (at most {MAX_WINDOW_SECONDS:,.0f}) or None, "
                    f"got {value!r}."
                )
        for name in ("audio", "video"):
            window, stride = getattr(self, name), getattr(self, f"{name}_stride")
            if stride is not None and (window is None or stride > window):
                raise ValueError(
                    f"segment {name}_stride ({stride}) must be at most the {name} window ({window}): windows would "
                    "leave gaps."
                )
        if self.text is not None and not (isinstance(self.text, int) and not isinstance(self.text, bool)):
            raise ValueError(f"segment text must be a positive number of tokens or None, got {self.text!r}.")
        if self.text is not None and not 1 <= self.text <= MAX_WINDOW_TOKENS:
            raise ValueError(
                f"segment text must be a positive number of tokens (at most {MAX_WINDOW_TOKENS:,}) or None, got "
                f"{self.text!r}."
            )
        overlap = self.text_overlap
        if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 0:
            raise ValueError(f"segment text_overlap must be a non-negative number of tokens, got {overlap!r}.")
        if self.text is not None and overlap >= self.text:
            raise ValueError(f"segment text_overlap ({overlap}) must be smaller than the text window ({self.text}).")

    @classmethod
    def parse(cls, text: str) -> SegmentSpec:
        """The spec a command line gives: ``"audio=30s,video=30s,text=300"``; modalities left out are not cut.

        Raises:
            ValueError: A malformed entry (the message shows the form).
        """
        values: dict[str, Any] = {"audio": None, "video": None, "text": None}
        given: dict[str, str] = {}
        for part in filter(str.strip, text.split(",")):
            match = _PART.match(part)
            if match is None:
                raise ValueError(
                    f"--segment takes MODALITY=SIZE entries separated by commas, e.g. audio=30s,video=30s,text=300 "
                    f"(seconds for audio and video, tokens for text); {part.strip()!r} is not one."
                )
            modality, size, unit = match.groups()
            if modality in given:
                raise ValueError(
                    f"--segment names {modality} twice ({given[modality]!r} and {part.strip()!r}); give each modality "
                    "once."
                )
            given[modality] = part.strip()
            seconds = spec_of(modality).window_unit == "seconds"
            if unit and seconds != unit.startswith("s"):
                raise ValueError(f"--segment {modality} is sized in {'seconds' if seconds else 'tokens'}: {part!r}.")
            values[modality] = float(size) if seconds else _tokens(size, part)
        if all(value is None for value in values.values()):
            raise ValueError("--segment names no modality; e.g. audio=30s,video=30s,text=300.")
        text_window = values["text"]
        overlap = min(cls.text_overlap, text_window // 6) if text_window else cls.text_overlap
        return cls(**values, text_overlap=overlap)

    def window(self, modality: str) -> float | int | None:
        """The window of ``modality`` (seconds or tokens), or None when its items are not cut."""
        return getattr(self, modality, None)

    def stride(self, modality: str) -> float | int | None:
        """The step from one window's start to the next (seconds for audio and video, tokens for text)."""
        window = self.window(modality)
        if window is None:
            return None
        if spec_of(modality).window_unit == "tokens":
            return int(window) - self.text_overlap
        stride = getattr(self, f"{modality}_stride")
        return window if stride is None else stride

    def with_window(self, window: float | None, stride: float | None = None) -> SegmentSpec:
        """This spec with one ``window`` (and ``stride``) for every modality: seconds for audio and video, and,
        when they are whole numbers, tokens for text (overlapping by ``window - stride``, or by this spec's overlap
        when no stride is given); other text windows stay as they are.

        Raises:
            ValueError: A stride without a window, or bad values.
        """
        if window is None and stride is None:
            return self
        if window is None:
            raise ValueError("stride needs a window.")
        step = window if stride is None else stride
        for name, value in (("window", window), ("stride", step)):
            if not _number(value):
                raise ValueError(f"segment {name} must be a number, got {value!r}.")
        text, overlap = self.text, self.text_overlap
        if float(window).is_integer() and float(step).is_integer():
            text = int(window)
            overlap = min(overlap, text - 1) if stride is None else text - int(step)
        return SegmentSpec(audio=float(window), video=float(window), text=text, audio_stride=float(step),
                           video_stride=float(step), text_overlap=max(overlap, 0))  # fmt: skip

    @classmethod
    def from_json(cls, value: Any) -> SegmentSpec:
        """The spec a JSON object gives (the server's item ``"segment"``): ``true`` (the defaults), or an object
        with any of this class's fields and ``window`` / ``stride`` (:meth:`with_window`).

        Raises:
            ValueError: Unknown keys or bad values (the message names them).
        """
        if value is True:
            return cls()
        if not isinstance(value, dict):
            raise ValueError(f'segment must be true or an object such as {{"window": 30}}, got {value!r}.')
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(value) - fields - {"window", "stride"})
        if unknown:
            raise ValueError(f"segment keys {unknown} are not understood; use window, stride or {', '.join(fields)}.")
        given = {key: v for key, v in value.items() if key in fields}
        return cls(**given).with_window(value.get("window"), value.get("stride"))

    def limit_problem(
        self, modality: str, bounds: Mapping[str, float | None], *, with_sound: bool = False
    ) -> str | None:
        """Why windows of this spec would be cut before the model sees them whole, for an item of ``modality``
        (the modality table's ``window_limit``: text windows above ``max_length`` tokens, audio windows above
        ``max_audio_seconds``; a video's with its sound, the sound's limit), or None: such segments would claim a
        span the model never saw. ``bounds``: the limits by setting name (:attr:`~.context.CutContext.bounds`)."""
        window, row = self.window(modality), spec_of(modality)
        limit = row.window_limit or (SOUND.window_limit if row.sound == "track" and with_sound else None)
        bound = bounds.get(limit) if limit else None
        if window is None or bound is None or window <= bound:
            return None
        unit = "tokens" if row.window_unit == "tokens" else "s"
        return (
            f"{modality} windows of {_shown(window)} {unit} are longer than {limit} ({_shown(bound)}), which would "
            f"cut {'them' if row.window_unit == 'tokens' else 'their sound'}: use a smaller window or a larger {limit}."
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain values (recorded in a corpus manifest)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def replace(self, **changes: Any) -> SegmentSpec:
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e12 else f"{float(value):.3g}"


def _tokens(size: str, part: str) -> int:
    number = float(size)
    if not number.is_integer() or number < 1:
        raise ValueError(f"--segment text is a whole number of tokens: {part!r}.")
    return int(number)
