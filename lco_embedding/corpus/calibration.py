"""Modality-aware ranking: scores standardised per modality, so that the modality gap does not decide a mixed
ranking.

Last-token embeddings of different modalities lie in offset regions of the space: a text query is closer to almost
every text than to the image that answers it. A corpus's own rows measure the offset. :func:`compute_calibration`
takes a fixed sample of each modality's rows (up to :data:`SAMPLE_ROWS`, chosen by a hash of the row number, so the
same corpus always gives the same sample) and records, for each pair of modalities (probe ``p``, rows ``m``), the
mean and standard deviation of the cosines between the sampled rows of ``p`` and of ``m`` (a row never with itself).
A query of modality ``p`` then ranks a row of modality ``m`` by ``(cosine - mean[p][m]) / std[p][m]``: how far above
what a row of that modality usually scores against such a query it lies. When the corpus holds no rows of the
query's modality, the row's statistics against every other modality's rows, pooled, stand in.

Within one modality the standardisation is an increasing function, so it only reorders rows of different
modalities; with one modality in the corpus it changes no ranking. It helps where a query's best match may be of
another modality than most near-misses (text -> image, audio -> text over a mixed corpus); it does not make scores
of different corpora comparable, and a modality with very few rows gets rough statistics (the sample sizes are
recorded).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import numpy as np

from lco_embedding.corpus.visibility import visible

__all__ = [
    "MIN_STD",
    "SAMPLE_ROWS",
    "compute_calibration",
    "cosine_of",
    "is_current",
    "standardised",
    "statistics_for",
]

SAMPLE_ROWS = 512
"""Rows sampled per modality."""
MIN_STD = 1e-3
"""Statistics whose standard deviation is below this (cosines that hardly vary: e.g. a modality whose only rows are
identical) standardise nothing: dividing by them would blow float rounding up into scores of ±10^5. They are not
used; the pooled statistics, else none (the raw cosine), stand in."""


def _key(row: int) -> int:
    """A fixed pseudo-random order of row numbers (Knuth's multiplicative hash)."""
    return (row * 2654435761) % 2**32


def _sample(batches: Iterable[tuple[np.ndarray, np.ndarray, dict[str, list]]], size: int) -> dict[str, np.ndarray]:
    """Up to ``size`` rows per modality: those of the smallest hash keys, as L2-normalised float32 arrays."""
    kept: dict[str, list[tuple[int, int, np.ndarray]]] = {}
    for rows, vectors, extra in batches:
        for row, vector, modality in zip(rows.tolist(), vectors, extra["modality"], strict=True):
            heap = kept.setdefault(modality, [])
            entry = (-_key(row), row, vector)
            if len(heap) < size:
                heapq.heappush(heap, entry)
            elif entry[0] > heap[0][0]:
                heapq.heapreplace(heap, entry)
    sampled = {}
    for modality, heap in kept.items():
        vectors = np.stack([v for _, _, v in sorted(heap, key=lambda e: e[1])]).astype(np.float32)
        sampled[modality] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return sampled


def _stats(scores: np.ndarray) -> dict[str, float] | None:
    if scores.size < 2:
        return None
    return {"mean": float(scores.mean()), "std": float(scores.std()), "n": int(scores.size)}


def compute_calibration(store: Any, sample: int = SAMPLE_ROWS) -> dict[str, Any]:
    """The per-modality statistics of ``store``'s committed rows (see the module), as recorded in its manifest.

    Returns:
        ``{"rows", "sample", "modalities": {m: rows sampled}, "pairs": {p: {m: {"mean", "std", "n"}}},
        "pooled": {m: {...}}}``.
    """
    sampled = _sample(store.iter_embeddings(("modality",)), sample)
    pairs: dict[str, dict[str, Any]] = {}
    for probe, probes in sampled.items():
        for modality, rows in sampled.items():
            scores = probes @ rows.T
            if probe == modality:
                scores = scores[~np.eye(len(rows), dtype=bool)]
            found = _stats(scores.ravel())
            if found is not None:
                pairs.setdefault(probe, {})[modality] = found
    pooled = {}
    for modality, rows in sampled.items():
        others = [probes for probe, probes in sampled.items() if probe != modality]
        found = _stats((np.concatenate(others) @ rows.T).ravel()) if others else None
        if found is not None:
            pooled[modality] = found
    return {
        "rows": visible(store.manifest).token,
        "sample": sample,
        "modalities": {modality: len(rows) for modality, rows in sorted(sampled.items())},
        "pairs": pairs,
        "pooled": pooled,
    }


def is_current(calibration: dict[str, Any] | None, manifest: dict[str, Any]) -> bool:
    """True when ``calibration`` was computed over the rows the manifest's store shows now."""
    return bool(calibration) and calibration.get("rows") == visible(manifest).token


def statistics_for(calibration: dict[str, Any], query_modality: str, modality: str) -> tuple[float, float]:
    """``(mean, std)`` that standardise the scores of rows of ``modality`` for a query of ``query_modality``; (0, 1)
    where the corpus gives none."""
    for found in (calibration["pairs"].get(query_modality, {}).get(modality), calibration["pooled"].get(modality)):
        if found and found["std"] >= MIN_STD:
            return found["mean"], found["std"]
    return 0.0, 1.0


def standardised(cosines: Any, mean: Any, std: Any) -> Any:
    """Cosines as calibrated scores, ``(cosine - mean) / std`` (numbers or arrays): the one place the formula is
    written."""
    return (cosines - mean) / std


def cosine_of(score: float, mean: float, std: float) -> float:
    """The cosine a calibrated ``score`` stands for (the inverse of :func:`standardised`)."""
    return score * std + mean
