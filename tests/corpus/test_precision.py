"""Stored precisions: exact float32, int8 within one bucket, binary signs; read back normalised."""

from __future__ import annotations

import numpy as np
import pytest

from lco_embedding.corpus.precision import arrow_type, calibrate, to_arrow, to_float


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _values(column):
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), -1)


def test_float32_is_stored_exactly():
    x = _unit(np.random.default_rng(0), 5, 12)
    column = to_arrow(x, "float32")
    assert column.type == arrow_type("float32", 12)
    np.testing.assert_array_equal(_values(column), x)
    np.testing.assert_allclose(to_float(_values(column), "float32", 12), x, atol=1e-7, rtol=0)  # re-normalised


def test_int8_stays_within_half_a_bucket_and_keeps_the_ranking():
    rng = np.random.default_rng(1)
    x = _unit(rng, 200, 64)
    ranges = calibrate(x)
    column = to_arrow(x, "int8", ranges)
    assert column.type == arrow_type("int8", 64)
    stored = _values(column)
    assert stored.dtype == np.int8 and stored.min() >= -128 and stored.max() <= 127
    steps = (np.asarray(ranges[1]) - np.asarray(ranges[0])) / 255
    back = np.asarray(ranges[0]) + (stored.astype(np.float64) + 128.5) * steps
    assert np.all(np.abs(back - x) <= steps / 2 + 1e-6)
    cosine = (to_float(stored, "int8", 64, ranges) * x).sum(1)
    assert cosine.min() > 0.99
    outside = to_arrow(np.full((1, 64), 5.0, np.float32), "int8", ranges)  # far above every range: clipped
    assert (_values(outside) == 127).all()


def test_binary_packs_sign_bits_and_reads_back_signs():
    x = _unit(np.random.default_rng(2), 7, 20)  # 20 bits -> 3 bytes
    column = to_arrow(x, "binary")
    assert column.type == arrow_type("binary", 20) and column.type.list_size == 3
    signs = to_float(_values(column), "binary", 20)
    np.testing.assert_array_equal(signs > 0, x > 0)
    np.testing.assert_allclose(np.abs(signs), 1 / np.sqrt(20), rtol=1e-6)


def test_bad_precisions_and_missing_ranges_are_refused():
    x = np.ones((1, 4), np.float32)
    with pytest.raises(ValueError, match="precision must be one of"):
        to_arrow(x, "float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="calibration"):
        to_arrow(x, "int8")
    with pytest.raises(ValueError, match="at least one"):
        calibrate(np.zeros((0, 4), np.float32))
