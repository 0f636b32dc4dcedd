"""The prompt table: the one place that holds the instruction text wrapped around every input.

Reference behaviour (the authors' model card, evaluation wrapper and contrastive training code): the content
is followed by ``"\\nSummarize the above {modality} in one word:"``, and inputs combining several modalities by
``"\\nSummarize the above in one word:"``. mteb 2.x instead appends the suffix of the dominant modality; that rule
is available as ``mixed_suffix="dominant"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from lco_embedding.core.modalities import DOMINANCE, MODALITY_TABLE, Modality

__all__ = ["SUFFIXES", "MIXED_SUFFIX", "DOMINANCE", "MixedSuffixRule", "suffix_for"]

SUFFIXES: dict[Modality, str] = {name: spec.suffix for name, spec in MODALITY_TABLE.items()}
"""Suffix appended after an input of a single modality (from the modality table)."""

MIXED_SUFFIX = "\nSummarize the above in one word:"
"""Suffix of the authors' contrastive training for inputs combining modalities."""


MixedSuffixRule: TypeAlias = Literal["reference", "dominant"]


def suffix_for(modalities: Iterable[Modality], rule: MixedSuffixRule = "reference") -> str:
    """Return the suffix for an input made of ``modalities``.

    Args:
        modalities: The modalities present in the input (repeats allowed).
        rule: ``"reference"`` gives :data:`MIXED_SUFFIX` to any input with two or more modalities;
            ``"dominant"`` gives the suffix of the first of :data:`DOMINANCE` present, as mteb 2.x does.

    Returns:
        The suffix text, starting with a newline.

    Raises:
        ValueError: If ``modalities`` is empty or ``rule`` is unknown.
    """
    present = set(modalities)
    if not present:
        raise ValueError("suffix_for needs at least one modality.")
    if len(present) == 1:
        return SUFFIXES[next(iter(present))]
    if rule == "reference":
        return MIXED_SUFFIX
    if rule == "dominant":
        return SUFFIXES[next(m for m in DOMINANCE if m in present)]
    raise ValueError(f"mixed_suffix must be 'reference' or 'dominant', got {rule!r}.")
