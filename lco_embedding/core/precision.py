"""Embedding precision: how float32 embeddings are cut to fewer dimensions, normalised, and turned into fewer bytes.
Every caller — ``encode``, the corpus shards, the server's two APIs — goes through these functions.

One :data:`Precision` type names the encodings (``float32``, ``int8``, ``uint8``, ``binary``, ``ubinary``); three
schemes decide the int8 ranges, each for a reason:

==================  =======================  ==================================================================
scheme              precisions               why it exists
==================  =======================  ==================================================================
``calibrated``      all                      ``encode(precision=...)``: sentence-transformers'
                                             ``quantize_embeddings``, ranges from the batch itself, so results
                                             equal what sentence-transformers users get, bit for bit
``stored-range``    float32 int8 binary      corpus shards: one ``[min, max]`` per dimension, calibrated once on
                                             the first shard and kept in the manifest, so every shard, a resumed
                                             run and every query share them (:func:`quantize_stored`)
``fixed-range``     all                      the Cohere-compatible server: one range for every dimension and
                                             every request (:func:`default_int8_range`), so the same item always
                                             gives the same bytes whatever else is in its request
==================  =======================  ==================================================================

``binary`` / ``ubinary`` are the signs (``x > 0``) packed eight to a byte, most significant first, in every scheme
(:func:`sign_bits`); ``binary`` is those bytes as signed values (``packed - 128``) where a scheme returns values.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import numpy as np

__all__ = [
    "PRECISIONS",
    "SCHEME_PRECISIONS",
    "Precision",
    "Scheme",
    "check_precision",
    "default_int8_range",
    "dequantize_stored",
    "quantize_calibrated",
    "quantize_fixed",
    "quantize_stored",
    "sign_bits",
    "stored_ranges",
    "truncate_normalize",
]

Precision: TypeAlias = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[Precision, ...] = ("float32", "int8", "uint8", "binary", "ubinary")
Scheme: TypeAlias = Literal["calibrated", "stored-range", "fixed-range"]
SCHEME_PRECISIONS: dict[Scheme, tuple[Precision, ...]] = {
    "calibrated": PRECISIONS,
    "stored-range": ("float32", "int8", "binary"),
    "fixed-range": PRECISIONS,
}
"""The precisions each scheme has (see the module)."""
_EPS = np.float32(1e-12)


def check_precision(value: object, scheme: Scheme = "calibrated") -> Precision:
    """``value`` if ``scheme`` has that precision.

    Raises:
        ValueError: Names the precisions the scheme has.
    """
    allowed = SCHEME_PRECISIONS[scheme]
    if value not in allowed:
        raise ValueError(f"precision must be one of {', '.join(allowed)}, got {value!r}.")
    return value  # type: ignore[return-value]


def truncate_normalize(rows: np.ndarray, truncate_dim: int | None = None, normalize: bool = True) -> np.ndarray:
    """``rows`` (``[..., d]`` float32) cut to their first ``truncate_dim`` dimensions, then L2-normalised along the
    last axis (as sentence-transformers does: truncate first); a zero row stays zero. The one home of this step.

    Example:
        >>> truncate_normalize(np.array([[3.0, 4.0, 12.0]], dtype=np.float32), truncate_dim=2).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    rows = np.asarray(rows, dtype=np.float32)
    if truncate_dim is not None:
        rows = rows[..., :truncate_dim]
    if not normalize or rows.size == 0:
        return rows
    norms = np.sqrt(np.square(rows).sum(axis=-1, keepdims=True, dtype=np.float32))
    return rows / np.maximum(norms, _EPS)


def sign_bits(rows: np.ndarray) -> np.ndarray:
    """The signs (``x > 0``) of ``[n, d]`` rows packed eight to a byte, most significant first (``[n, ceil(d/8)]``
    uint8): every scheme's ``ubinary``."""
    return np.packbits(rows > 0, axis=-1)


def quantize_calibrated(rows: np.ndarray, precision: Precision) -> np.ndarray:
    """The ``calibrated`` scheme: sentence-transformers' ``quantize_embeddings`` (ranges from ``rows``)."""
    check_precision(precision, "calibrated")
    if precision == "float32":
        return rows
    from sentence_transformers.util import quantize_embeddings

    return np.ascontiguousarray(quantize_embeddings(rows, precision=precision))


def stored_ranges(rows: np.ndarray) -> list[list[float]]:
    """The ``stored-range`` scheme's per-dimension ``[mins, maxs]`` of ``rows`` ``[n, d]`` (n >= 1)."""
    if len(rows) == 0:
        raise ValueError("int8 calibration needs at least one embedding.")
    return [rows.min(axis=0).astype(float).tolist(), rows.max(axis=0).astype(float).tolist()]


def _steps(ranges: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(ranges[0], dtype=np.float32)
    steps = (np.asarray(ranges[1], dtype=np.float32) - starts) / 255
    # A dimension that did not vary in the calibration set gets a tiny step instead of a division by zero.
    return starts, np.maximum(steps, _EPS)


def quantize_stored(rows: np.ndarray, precision: Precision, ranges: list[list[float]] | None = None) -> np.ndarray:
    """The ``stored-range`` scheme: ``float32`` as is; ``int8`` ``clip(floor((x - min) / step) - 128, -128, 127)``
    with ``step = (max - min) / 255`` from ``ranges``; ``binary`` :func:`sign_bits`."""
    check_precision(precision, "stored-range")
    if precision == "float32":
        return np.ascontiguousarray(rows, dtype=np.float32)
    if precision == "binary":
        return sign_bits(rows)
    if ranges is None:
        raise ValueError("int8 needs calibration ranges (see stored_ranges).")
    starts, steps = _steps(ranges)
    return np.clip(np.floor((rows - starts) / steps) - 128, -128, 127).astype(np.int8)


def dequantize_stored(
    values: np.ndarray, precision: Precision, dimension: int, ranges: list[list[float]] | None = None
) -> np.ndarray:
    """Stored ``[n, width]`` values back to ``[n, dimension]`` L2-normalised float32 vectors: int8 as the centre of
    its bucket, binary as ``±1``; a dot product with a normalised query then approximates the float32 cosine."""
    check_precision(precision, "stored-range")
    if precision == "float32":
        vectors = values.astype(np.float32, copy=False)
    elif precision == "int8":
        if ranges is None:
            raise ValueError("int8 needs the calibration ranges from the manifest.")
        starts, steps = _steps(ranges)
        vectors = starts + (values.astype(np.float32) + 128.5) * steps
    else:
        vectors = np.unpackbits(values, axis=-1, count=dimension).astype(np.float32) * 2 - 1
    return truncate_normalize(vectors)


def default_int8_range(dimension: int) -> float:
    """The ``fixed-range`` scheme's default range: four standard deviations of a coordinate of a random
    ``dimension``-d unit vector."""
    return 4.0 / math.sqrt(dimension)


def quantize_fixed(rows: np.ndarray, precision: Precision, int8_range: float | None = None) -> np.ndarray:
    """The ``fixed-range`` scheme on L2-normalised rows: ``int8`` ``round(clip(x / r, -1, 1) * 127)``, ``uint8``
    that + 128, ``binary`` the packed signs - 128, ``ubinary`` the packed signs (int16 values, to be listed)."""
    check_precision(precision, "fixed-range")
    if precision == "float32":
        return rows
    if precision in ("int8", "uint8"):
        r = int8_range if int8_range is not None else default_int8_range(rows.shape[1])
        values = np.round(np.clip(rows / np.float32(r), -1.0, 1.0) * 127).astype(np.int16)
        return values if precision == "int8" else values + 128
    packed = sign_bits(rows).astype(np.int16)
    return packed - 128 if precision == "binary" else packed
