"""Every metric against known answers and against an independent, straightforward implementation (loops)."""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
import scipy.linalg
import torch

from lco_embedding.analysis import (
    ALIGNMENT_METRICS,
    anisotropy,
    cka,
    cknna,
    cycle_knn,
    edit_distance_knn,
    lcs_knn,
    modality_gap,
    mutual_knn,
    probe_accuracy,
    svcca,
)

ALIGNMENT = [m for m in ALIGNMENT_METRICS if m not in ("modality_gap", "probe_accuracy")]


def _sets(n=40, d=16, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d)).astype(np.float32)
    b = (a @ rng.standard_normal((d, d)) + 0.8 * rng.standard_normal((n, d))).astype(np.float32)  # related to a
    return a, b


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _neighbors(x, k):
    unit = _unit(x)
    out = []
    for i in range(len(unit)):
        scored = sorted((-float(unit[i] @ unit[j]), j) for j in range(len(unit)) if j != i)
        out.append([j for _, j in scored[:k]])
    return out


# --------------------------------------------------------------------------------- independent references
def ref_anisotropy(x):
    unit = _unit(x)
    values = [unit[i] @ unit[j] for i in range(len(unit)) for j in range(len(unit)) if i != j]
    return float(np.mean(values))


def ref_mutual_knn(a, b, k):
    na, nb = _neighbors(a, k), _neighbors(b, k)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(na, nb, strict=True)]))


def ref_cycle_knn(a, b, k):
    na, nb = _neighbors(a, k), _neighbors(b, k)
    return float(np.mean([any(i in na[j] for j in nb[i]) for i in range(len(na))]))


def ref_lcs(x, y):
    @cache
    def go(i, j):
        if i == len(x) or j == len(y):
            return 0
        return 1 + go(i + 1, j + 1) if x[i] == y[j] else max(go(i + 1, j), go(i, j + 1))

    return go(0, 0)


def ref_edit(x, y):
    @cache
    def go(i, j):
        if i == len(x):
            return len(y) - j
        if j == len(y):
            return len(x) - i
        return min(go(i + 1, j) + 1, go(i, j + 1) + 1, go(i + 1, j + 1) + (x[i] != y[j]))

    return go(0, 0)


def ref_lcs_knn(a, b, k):
    na, nb = _neighbors(a, k), _neighbors(b, k)
    return float(np.mean([ref_lcs(tuple(x), tuple(y)) / k for x, y in zip(na, nb, strict=True)]))


def ref_edit_knn(a, b, k):
    na, nb = _neighbors(a, k), _neighbors(b, k)
    return float(1 - np.mean([ref_edit(tuple(x), tuple(y)) / k for x, y in zip(na, nb, strict=True)]))


def ref_kernel(x, kind, sigma=1.0):
    unit = _unit(x)
    n = len(unit)
    if kind == "linear":
        return np.array([[unit[i] @ unit[j] for j in range(n)] for i in range(n)])
    return np.array([[np.exp(-np.sum((unit[i] - unit[j]) ** 2) / (2 * sigma**2)) for j in range(n)] for i in range(n)])


def ref_hsic_biased(k, l):  # noqa: E741
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n
    return np.trace(k @ h @ l @ h)


def ref_hsic_unbiased(k, l):  # noqa: E741
    """The U-statistic itself (Song et al., 2012): the mean over ordered 4-tuples of distinct indices of
    k_ij l_ij + k_ij l_qr - 2 k_ij l_iq."""
    n = len(k)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        count += 1
    return total / count


def ref_hsic_eq5(k, l):  # noqa: E741
    """Song et al.'s eq. 5 term by term with loops, for kernels that need not be symmetric (CKNNA's masked ones)."""
    n = len(k)
    off = [(i, j) for i in range(n) for j in range(n) if i != j]
    trace = sum(k[i, j] * l[j, i] for i, j in off)
    sums = sum(k[i, j] for i, j in off) * sum(l[i, j] for i, j in off)
    chain = sum(k[i, j] * l[j, q] for i, j in off for q in range(n) if q != j)
    return (trace + sums / ((n - 1) * (n - 2)) - 2 * chain / (n - 2)) / (n * (n - 3))


def ref_cka(a, b, kind="linear", unbiased=False):
    k, l = ref_kernel(a, kind), ref_kernel(b, kind)  # noqa: E741
    h = ref_hsic_unbiased if unbiased else ref_hsic_biased
    return h(k, l) / np.sqrt(h(k, k) * h(l, l))


def ref_cknna(a, b, k):
    ka, lb = ref_kernel(a, "linear"), ref_kernel(b, "linear")
    na, nb = _neighbors(a, k), _neighbors(b, k)
    n = len(ka)
    mask_a = np.array([[float(j in na[i]) for j in range(n)] for i in range(n)])
    mask_b = np.array([[float(j in nb[i]) for j in range(n)] for i in range(n)])
    both = mask_a * mask_b
    return ref_hsic_eq5(both * ka, both * lb) / np.sqrt(
        ref_hsic_eq5(mask_a * ka, mask_a * ka) * ref_hsic_eq5(mask_b * lb, mask_b * lb)
    )


def ref_svcca(a, b, dims):
    def basis(x):
        x = np.asarray(_unit(x))
        x = x - x.mean(0)
        x = x / (x.std(0, ddof=1) + 1e-8)
        return np.linalg.svd(x, full_matrices=False)[0][:, :dims]

    return float(np.mean(np.cos(scipy.linalg.subspace_angles(basis(a), basis(b)))))


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_their_references(seed):
    a, b = _sets(n=9, d=6, seed=seed)  # small: the unbiased references loop over every 4-tuple
    k = 3
    assert anisotropy(a) == pytest.approx(ref_anisotropy(a), abs=1e-6)
    assert mutual_knn(a, b, k) == pytest.approx(ref_mutual_knn(a, b, k), abs=1e-6)
    assert cycle_knn(a, b, k) == pytest.approx(ref_cycle_knn(a, b, k), abs=1e-6)
    assert lcs_knn(a, b, k) == pytest.approx(ref_lcs_knn(a, b, k), abs=1e-6)
    assert edit_distance_knn(a, b, k) == pytest.approx(ref_edit_knn(a, b, k), abs=1e-6)
    for kind in ("linear", "rbf"):
        for unbiased in (False, True):
            assert cka(a, b, kernel=kind, unbiased=unbiased) == pytest.approx(
                ref_cka(a, b, kind, unbiased), abs=1e-4
            ), (kind, unbiased)
    assert cknna(a, b, k) == pytest.approx(ref_cknna(a, b, k), abs=1e-4)
    assert svcca(a, b, dims=4) == pytest.approx(ref_svcca(a, b, 4), abs=1e-5)
    gap = np.linalg.norm(_unit(a).mean(0) - _unit(b).mean(0))
    assert modality_gap(a, b) == pytest.approx(gap, abs=1e-6)


def test_a_set_compared_with_itself_scores_one():
    a, _ = _sets()
    for name in ALIGNMENT:
        assert ALIGNMENT_METRICS[name](a, a, 10) == pytest.approx(1.0, abs=1e-5), name
    assert modality_gap(a, a) == pytest.approx(0.0, abs=1e-6)
    assert probe_accuracy(a, a) == 0.5  # nothing to separate; each pair stays in one fold


def test_a_rotation_keeps_cka_and_the_neighbourhood_metrics_at_one():
    a, _ = _sets(n=50, d=24)
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((24, 24)))
    rotated = (a @ rotation).astype(np.float32)
    for name in ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna", "cka_linear", "cka_rbf",
                 "unbiased_cka_linear", "unbiased_cka_rbf"):  # fmt: skip
        assert ALIGNMENT_METRICS[name](a, rotated, 10) == pytest.approx(1.0, abs=1e-4), name


def test_unbiased_cka_of_independent_sets_is_near_zero():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((300, 64)), rng.standard_normal((300, 64))
    # Tolerance 0.02: the unbiased estimator's spread at n = 300 is well below it (0.004 seen over seeds 0-9);
    # the biased CKA of the same sets is far from 0.
    assert abs(cka(a, b, unbiased=True)) < 0.02
    assert abs(cka(a, b, kernel="rbf", unbiased=True)) < 0.02
    assert cka(a, b) > 0.1


def test_anisotropy_known_answers():
    rng = np.random.default_rng(0)
    assert abs(anisotropy(rng.standard_normal((500, 2048)))) < 0.005  # isotropic: mean cosine ~ 0 (sd ~ 1e-3)
    assert anisotropy(np.tile(rng.standard_normal(32), (10, 1))) == pytest.approx(1.0, abs=1e-6)
    assert anisotropy(np.abs(rng.standard_normal((200, 64)))) > 0.5  # one orthant: strongly anisotropic


def test_probe_and_gap_see_a_shifted_modality():
    a, _ = _sets(n=60, d=16)
    shifted = a + 3.0  # after normalisation, pulled toward one direction
    assert probe_accuracy(a, shifted) > 0.95 and modality_gap(a, shifted) > 0.5


def test_gpu_or_cpu_tensors_and_bad_shapes():
    a, b = _sets()
    assert mutual_knn(torch.from_numpy(a), torch.from_numpy(b), 5) == pytest.approx(mutual_knn(a, b, 5))
    with pytest.raises(ValueError, match="same number of rows"):
        mutual_knn(a, b[:-1], 5)
    with pytest.raises(ValueError, match="k must be between"):
        mutual_knn(a, b, len(a))
    with pytest.raises(ValueError, match="shape"):
        anisotropy(a[0])


def test_degenerate_sets_give_nan_not_noise():
    """The embedding layer's last-token states are one vector repeated (the last token is always the same): every
    alignment metric is undefined there and says so."""
    a, b = _sets()
    same = np.tile(a[0], (len(a), 1))
    for name in ALIGNMENT:
        assert np.isnan(ALIGNMENT_METRICS[name](same, b, 5)), name
        assert np.isnan(ALIGNMENT_METRICS[name](a, same, 5)), name
    assert anisotropy(same) == pytest.approx(1.0)
