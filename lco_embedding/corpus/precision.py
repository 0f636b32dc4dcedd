"""How embeddings are stored in shards (the ``stored-range`` scheme of :mod:`lco_embedding.core.precision`, as
Arrow columns), and read back as float32 for search.

* ``float32`` — as computed, ``fixed_size_list<float>[d]``.
* ``int8`` — scalar quantization with one ``[min, max]`` range per dimension (sentence-transformers' scheme),
  calibrated on the first shard that holds embeddings and kept in the manifest so every later shard, a resumed
  run and every query use the same ranges: ``q = clip(floor((x - min) / step) - 128, -128, 127)`` with
  ``step = (max - min) / 255``; read back as the centre of the bucket. ``fixed_size_list<int8>[d]``.
* ``binary`` — the sign bits, packed 8 per byte, most significant first (``numpy.packbits`` of ``x > 0``, as
  sentence-transformers' ``ubinary``); read back as ``±1``. ``fixed_size_list<uint8>[ceil(d / 8)]``.

Read-back vectors are L2-normalised, so a dot product with a normalised query is a cosine; for int8 and binary it
approximates the float32 cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lco_embedding.core.precision import (
    SCHEME_PRECISIONS,
    Precision,
    check_precision,
    dequantize_stored,
    quantize_stored,
    stored_ranges,
)

__all__ = ["PRECISIONS", "Precision", "arrow_type", "calibrate", "to_arrow", "to_float"]

PRECISIONS: tuple[Precision, ...] = SCHEME_PRECISIONS["stored-range"]
"""The precisions a corpus stores (the ``stored-range`` scheme)."""


def arrow_type(precision: Precision, dimension: int) -> Any:
    """The Arrow type of the ``embedding`` column."""
    import pyarrow as pa

    check_precision(precision, "stored-range")
    if precision == "float32":
        return pa.list_(pa.float32(), dimension)
    if precision == "int8":
        return pa.list_(pa.int8(), dimension)
    return pa.list_(pa.uint8(), (dimension + 7) // 8)


def calibrate(embeddings: np.ndarray) -> list[list[float]]:
    """Per-dimension ``[mins, maxs]`` of ``embeddings`` ``[n, d]`` (n >= 1), the int8 ranges
    (:func:`~lco_embedding.core.precision.stored_ranges`)."""
    return stored_ranges(embeddings)


def to_arrow(embeddings: np.ndarray, precision: Precision, ranges: list[list[float]] | None = None) -> Any:
    """``[n, d]`` float32 embeddings -> the ``embedding`` column (a ``FixedSizeListArray``)."""
    import pyarrow as pa

    values = quantize_stored(embeddings, precision, ranges)
    width = arrow_type(precision, embeddings.shape[1]).list_size
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def to_float(
    values: np.ndarray, precision: Precision, dimension: int, ranges: list[list[float]] | None = None
) -> np.ndarray:
    """Stored ``[n, width]`` values -> ``[n, dimension]`` L2-normalised float32 vectors."""
    return dequantize_stored(values, precision, dimension, ranges)
