"""How embeddings are stored in shards, and read back as float32 for search.

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

from typing import Any, Literal, TypeAlias

import numpy as np

__all__ = ["PRECISIONS", "Precision", "arrow_type", "calibrate", "to_arrow", "to_float"]

Precision: TypeAlias = Literal["float32", "int8", "binary"]
PRECISIONS: tuple[Precision, ...] = ("float32", "int8", "binary")


def arrow_type(precision: Precision, dimension: int) -> Any:
    """The Arrow type of the ``embedding`` column."""
    import pyarrow as pa

    if precision == "float32":
        return pa.list_(pa.float32(), dimension)
    if precision == "int8":
        return pa.list_(pa.int8(), dimension)
    if precision == "binary":
        return pa.list_(pa.uint8(), (dimension + 7) // 8)
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")


def calibrate(embeddings: np.ndarray) -> list[list[float]]:
    """Per-dimension ``[mins, maxs]`` of ``embeddings`` ``[n, d]`` (n >= 1), the int8 ranges."""
    if len(embeddings) == 0:
        raise ValueError("int8 calibration needs at least one embedding.")
    return [embeddings.min(axis=0).astype(float).tolist(), embeddings.max(axis=0).astype(float).tolist()]


def _steps(ranges: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.asarray(ranges[0], dtype=np.float32)
    steps = (np.asarray(ranges[1], dtype=np.float32) - starts) / 255
    # A dimension that did not vary in the calibration set gets a tiny step instead of a division by zero.
    return starts, np.maximum(steps, np.float32(1e-12))


def to_arrow(embeddings: np.ndarray, precision: Precision, ranges: list[list[float]] | None = None) -> Any:
    """``[n, d]`` float32 embeddings -> the ``embedding`` column (a ``FixedSizeListArray``)."""
    import pyarrow as pa

    n, dimension = embeddings.shape
    if precision == "float32":
        values = np.ascontiguousarray(embeddings, dtype=np.float32)
    elif precision == "int8":
        if ranges is None:
            raise ValueError("int8 needs calibration ranges (see calibrate).")
        starts, steps = _steps(ranges)
        values = np.clip(np.floor((embeddings - starts) / steps) - 128, -128, 127).astype(np.int8)
    elif precision == "binary":
        values = np.packbits(embeddings > 0, axis=-1)
    else:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    width = arrow_type(precision, dimension).list_size
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), width)


def to_float(
    values: np.ndarray, precision: Precision, dimension: int, ranges: list[list[float]] | None = None
) -> np.ndarray:
    """Stored ``[n, width]`` values -> ``[n, dimension]`` L2-normalised float32 vectors."""
    if precision == "float32":
        vectors = values.astype(np.float32, copy=False)
    elif precision == "int8":
        if ranges is None:
            raise ValueError("int8 needs the calibration ranges from the manifest.")
        starts, steps = _steps(ranges)
        vectors = starts + (values.astype(np.float32) + 128.5) * steps
    elif precision == "binary":
        vectors = np.unpackbits(values, axis=-1, count=dimension).astype(np.float32) * 2 - 1
    else:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))
