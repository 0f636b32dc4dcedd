"""JSON Lines read with the line numbers that name each row in messages: the one reader of every ``.jsonl`` file
the package takes (corpus tables, eval datasets, training and analysis pairs)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["jsonl_rows", "read_jsonl"]


def jsonl_rows(path: str | os.PathLike[str], skip: int = 0) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, None)`` for each non-blank line of a JSONL file, or ``(line number, None, problem)``
    for a line that is not valid JSON (a corpus job records it and goes on). The first ``skip`` rows come as
    ``(line number, None, None)`` without being parsed. Lines are read as bytes and decoded as UTF-8 by
    ``json.loads``, which names bad bytes.
    """
    with open(path, "rb") as f:
        number = 0
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            number += 1
            if number <= skip:
                yield line_number, None, None
                continue
            try:
                yield line_number, json.loads(line), None
            except ValueError as e:
                yield line_number, None, f"not valid JSON ({e})."


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSONL file.

    Raises:
        ValueError: A line is not valid JSON (``"PATH, line N: not valid JSON (...)"``).

    Example:
        >>> _ = open("rows.jsonl", "w").write('{"text": "a cat"}\\n\\n{"text": "a dog"}\\n')
        >>> list(read_jsonl("rows.jsonl"))
        [(1, {'text': 'a cat'}), (3, {'text': 'a dog'})]
    """
    for number, value, problem in jsonl_rows(path):
        if problem is not None:
            raise ValueError(f"{path}, line {number}: {problem}")
        yield number, value
