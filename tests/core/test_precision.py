"""The one home of embedding precision: truncate-and-normalise and the three quantization schemes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lco_embedding.core.precision import (
    SCHEME_PRECISIONS,
    check_precision,
    dequantize_stored,
    quantize_calibrated,
    quantize_fixed,
    quantize_stored,
    sign_bits,
    stored_ranges,
    truncate_normalize,
)


@pytest.fixture
def rows():
    return np.random.default_rng(0).standard_normal((7, 20)).astype(np.float32)


def test_truncate_then_normalise_equals_torch_and_keeps_zero_rows(rows):
    got = truncate_normalize(rows, truncate_dim=12)
    want = torch.nn.functional.normalize(torch.from_numpy(rows[:, :12]), dim=-1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-7, rtol=0)
    assert got.shape == (7, 12)
    assert np.all(truncate_normalize(np.zeros((2, 4), np.float32)) == 0)
    layered = np.stack([rows, 2 * rows], axis=1)  # [n, layers, d]: normalised along the last axis
    np.testing.assert_allclose(truncate_normalize(layered)[:, 1], truncate_normalize(rows), atol=1e-7)
    np.testing.assert_array_equal(truncate_normalize(rows, normalize=False), rows)


def test_the_calibrated_scheme_is_sentence_transformers(rows):
    from sentence_transformers.util import quantize_embeddings

    for precision in ("int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(quantize_calibrated(rows, precision), quantize_embeddings(rows, precision))


def test_the_stored_range_scheme_round_trips_near_the_cosine(rows):
    unit = truncate_normalize(rows)
    ranges = stored_ranges(unit)
    back = dequantize_stored(quantize_stored(unit, "int8", ranges), "int8", 20, ranges)
    assert np.min(np.sum(back * unit, axis=1)) > 0.99
    signs = dequantize_stored(quantize_stored(unit, "binary"), "binary", 20)
    np.testing.assert_array_equal(np.sign(signs), np.where(unit > 0, 1.0, -1.0))
    with pytest.raises(ValueError, match="float32, int8, binary"):
        quantize_stored(unit, "uint8")


def test_the_fixed_range_scheme_gives_the_same_bytes_whatever_the_batch(rows):
    unit = truncate_normalize(rows)
    alone = quantize_fixed(unit[:1], "int8")
    np.testing.assert_array_equal(quantize_fixed(unit, "int8")[:1], alone)
    np.testing.assert_array_equal(quantize_fixed(unit, "uint8"), quantize_fixed(unit, "int8") + 128)
    np.testing.assert_array_equal(quantize_fixed(unit, "ubinary"), sign_bits(unit))
    np.testing.assert_array_equal(quantize_fixed(unit, "binary"), sign_bits(unit).astype(np.int16) - 128)


def test_each_scheme_names_its_precisions():
    for scheme, allowed in SCHEME_PRECISIONS.items():
        for precision in allowed:
            assert check_precision(precision, scheme) == precision
        with pytest.raises(ValueError, match=", ".join(allowed)):
            check_precision("float16", scheme)
