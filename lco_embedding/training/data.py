"""Training data: JSONL files of contrastive examples (anchor, positive, optional hard negatives) and of generative
examples (a caption or document, optionally with its image, audio or video).

Contrastive lines, one example each:

* ``{"anchor": SIDE, "positive": SIDE, "negative": SIDE}`` — the authors' format; ``"negative"`` may be a list of
  sides, may be spelled ``"negatives"``, and may be missing (in-batch negatives only);
* ``["anchor text", "positive text"]`` or ``[anchor, positive, negative]`` — plain text pairs and triplets (NLI).

A SIDE is a string (text) or an object with any of ``text``, ``image``, ``audio``, ``video`` (the authors' keys
``image_path``, ``audio_path`` and ``video_path`` too): a side with several becomes one mixed item, media first, as
``LCOEmbedder`` embeds it. Empty strings and nulls count as absent (the authors' text-only sides carry
``"image_path": ""``). Relative media paths are resolved against the JSONL file's folder.

Generative lines: ``{"text": "...", "image": "..."}`` — a caption or document, with at most one optional media
key (or a ``*_path`` spelling); the loss is on the text.

Every malformed line raises ``ValueError`` naming the file, the line number and the reason; nothing is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lco_embedding.core.jsonl import read_jsonl
from lco_embedding.core.modalities import MEDIA_MODALITIES, MODALITIES
from lco_embedding.corpus.records import row_item

__all__ = ["ContrastiveExample", "GenerativeExample", "read_contrastive_data", "read_generative_data"]

_ALIASES = {f"{modality}_path": modality for modality in MEDIA_MODALITIES}
_SIDE_KEYS = (*MODALITIES, *_ALIASES)


@dataclass(frozen=True)
class ContrastiveExample:
    """One contrastive example: items in ``LCOEmbedder.encode``'s dict form.

    Attributes:
        anchor: The query side, e.g. ``{"text": "a cat"}`` or ``{"image": "/data/cat.jpg", "text": "..."}``.
        positive: The matching document.
        negatives: Hard negatives (may be empty).
        line: Line number in the source file (1-based), for messages and the training log.
    """

    anchor: dict[str, Any]
    positive: dict[str, Any]
    negatives: tuple[dict[str, Any], ...] = ()
    line: int = 0


@dataclass(frozen=True)
class GenerativeExample:
    """One generative example: the text to learn to generate, and the media it is conditioned on (if any).

    Attributes:
        text: A caption or a document.
        media: ``{}`` or one of ``{"image": path}``, ``{"audio": path}``, ``{"video": path}``.
        line: Line number in the source file (1-based).
    """

    text: str
    media: dict[str, Any]
    line: int = 0


def _side(value: Any, name: str, folder: str) -> dict[str, Any]:
    """One side as an encode item; raises ValueError with the reason."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"the {name} is an empty string.")
        return {"text": value}
    if not isinstance(value, dict):
        raise ValueError(f"the {name} must be a string or an object with text/image/audio/video, got {value!r:.80}.")
    unknown = sorted(set(value) - set(_SIDE_KEYS))
    if unknown:
        raise ValueError(f"the {name} has unknown keys {unknown}; use any of {', '.join(_SIDE_KEYS)}.")
    row: dict[str, Any] = {}
    for key, item in value.items():
        modality = _ALIASES.get(key, key)
        if item in (None, ""):
            continue
        if modality in row:
            raise ValueError(f"the {name} gives {modality} twice ({modality!r} and {key!r}).")
        if not isinstance(item, str):
            raise ValueError(f"the {name}'s {key} must be a string (text or a path), got {type(item).__name__}.")
        row[modality] = item
    item, _, problem = row_item(row, folder)
    if problem:
        raise ValueError(f"the {name}: {problem}")
    return item  # type: ignore[return-value]


def _contrastive(value: Any, folder: str, line: int) -> ContrastiveExample:
    if isinstance(value, list):
        if len(value) not in (2, 3) or not all(isinstance(text, str) for text in value):
            raise ValueError("a list line must be 2 or 3 strings: [anchor, positive] or [anchor, positive, negative].")
        names = ("anchor", "positive", "negative")[: len(value)]
        sides = [_side(text, name, folder) for text, name in zip(value, names, strict=True)]
        return ContrastiveExample(sides[0], sides[1], tuple(sides[2:]), line)
    if not isinstance(value, dict):
        raise ValueError('expected {"anchor": ..., "positive": ..., "negative": ...} or a list of 2 or 3 strings.')
    if "negative" in value and "negatives" in value:
        raise ValueError('give either "negative" or "negatives", not both.')
    missing = [key for key in ("anchor", "positive") if value.get(key) in (None, "")]
    if missing:
        raise ValueError(f"missing {' and '.join(repr(m) for m in missing)}.")
    unknown = sorted(set(value) - {"anchor", "positive", "negative", "negatives"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}; a line has anchor, positive and optionally negative(s).")
    negatives = value.get("negative", value.get("negatives"))
    if negatives in (None, "", []):
        negatives = []
    elif not isinstance(negatives, list):
        negatives = [negatives]
    return ContrastiveExample(
        anchor=_side(value["anchor"], "anchor", folder),
        positive=_side(value["positive"], "positive", folder),
        negatives=tuple(_side(n, f"negative {i + 1}", folder) for i, n in enumerate(negatives)),
        line=line,
    )


def _generative(value: Any, folder: str, line: int) -> GenerativeExample:
    if not isinstance(value, dict):
        raise ValueError('expected {"text": ..., optionally "image"/"audio"/"video": path}.')
    item = _side(value, "line", folder)
    text = item.pop("text", None)
    if text is None:
        raise ValueError('the line has no "text" to learn.')
    if len(item) > 1:
        raise ValueError(f"a generative example is conditioned on at most one media item, got {sorted(item)}.")
    return GenerativeExample(text=text, media=item, line=line)


def _read(path: str | os.PathLike[str], parse: Any) -> list[Any]:
    folder = str(Path(path).resolve().parent)
    examples = []
    for number, value in read_jsonl(path):
        try:
            examples.append(parse(value, folder, number))
        except ValueError as e:
            raise ValueError(f"{path}, line {number}: {e}") from None
    if not examples:
        raise ValueError(f"{path} holds no examples.")
    return examples


def read_contrastive_data(path: str | os.PathLike[str]) -> list[ContrastiveExample]:
    """Read a JSONL file of contrastive examples (see the module docstring for the accepted lines).

    Raises:
        ValueError: A malformed line (with its number and the reason), a missing media file, or an empty file.
    """
    return _read(path, _contrastive)


def read_generative_data(path: str | os.PathLike[str]) -> list[GenerativeExample]:
    """Read a JSONL file of generative examples: ``{"text": ..., "image": ...}`` per line, media optional.

    Raises:
        ValueError: A malformed line (with its number and the reason), a missing media file, or an empty file.
    """
    return _read(path, _generative)
