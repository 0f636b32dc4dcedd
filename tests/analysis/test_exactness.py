"""Kernel and alignment metrics on anisotropic sets (every row near one direction, as last-token states are):
within 1e-6 of a float64 reference computed from the same float32 inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from lco_embedding.analysis import alignment_scores, anisotropy, cka, cknna, svcca

TOL = 1e-6


def offset_clouds(anisotropy_level: float, n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two related float32 sets whose rows all lie near one direction each, with mean cosine ``anisotropy_level``:
    ``mu + s z / sqrt(d)`` with ``1 / (1 + s^2)`` = the level."""
    rng = np.random.default_rng(seed)
    spread = np.sqrt(1 / anisotropy_level - 1)
    z = rng.standard_normal((n, d))
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    a = mu_a / np.linalg.norm(mu_a) + spread * z / np.sqrt(d)
    related = z @ rng.standard_normal((d, d)) / np.sqrt(d) + 0.5 * rng.standard_normal((n, d))
    b = mu_b / np.linalg.norm(mu_b) + spread * related / np.sqrt(d)
    return a.astype(np.float32), b.astype(np.float32)


# ------------------------------------------------------------------------------------ float64 references
def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def linear_kernel(x):
    u = unit(x)
    return u @ u.T


def rbf_kernel(x, sigma=1.0):
    u = unit(x)
    distances = ((u[:, None, :] - u[None, :, :]) ** 2).sum(-1)  # differences first: no cancellation
    return np.exp(-distances / (2 * sigma**2))


def hsic_biased(k, l):  # noqa: E741
    n = len(k)
    h = np.eye(n) - 1 / n
    return np.trace(k @ h @ l @ h)


def hsic_unbiased(k, l):  # noqa: E741
    n = len(k)
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    value = (kt * lt.T).sum() + kt.sum() * lt.sum() / ((n - 1) * (n - 2)) - 2 * (kt @ lt).sum() / (n - 2)
    return value / (n * (n - 3))


def ref_cka(a, b, kernel, unbiased):
    make = linear_kernel if kernel == "linear" else rbf_kernel
    k, l = make(a), make(b)  # noqa: E741
    h = hsic_unbiased if unbiased else hsic_biased
    return h(k, l) / np.sqrt(h(k, k) * h(l, l))


def neighbor_mask(x, k):
    similarity = linear_kernel(x)
    np.fill_diagonal(similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    mask = np.zeros_like(similarity)
    np.put_along_axis(mask, order, 1.0, axis=1)
    return mask


def ref_cknna(a, b, k, unbiased=True):
    h = hsic_unbiased if unbiased else hsic_biased
    ka, lb = linear_kernel(a), linear_kernel(b)
    mask_a, mask_b = neighbor_mask(a, k), neighbor_mask(b, k)
    both = mask_a * mask_b
    return h(both * ka, both * lb) / np.sqrt(h(mask_a * ka, mask_a * ka) * h(mask_b * lb, mask_b * lb))


def ref_svcca(a, b, dims=10):
    def basis(x):
        x = unit(x)
        x = x - x.mean(0)
        x = x / (x.std(0, ddof=1) + 1e-8)
        return np.linalg.svd(x, full_matrices=False)[0][:, :dims]

    return float(np.mean(np.cos(scipy.linalg.subspace_angles(basis(a), basis(b)))))


def ref_anisotropy(x):
    k = linear_kernel(x)
    n = len(k)
    return (k.sum() - np.trace(k)) / (n * (n - 1))


# ------------------------------------------------------------------------------------------------ tests
LEVELS = [0.95, 0.99, 0.999]
SHAPES = [(200, 32), (60, 128)]  # more rows than dimensions (linear CKA from the features), and fewer (from Grams)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_every_kernel_metric_is_exact_on_anisotropic_sets(level, n, d):
    a, b = offset_clouds(level, n, d)
    assert anisotropy(a) == pytest.approx(level, abs=0.02)  # the sets are as anisotropic as named
    assert anisotropy(a) == pytest.approx(ref_anisotropy(a), abs=TOL)
    for kernel in ("linear", "rbf"):
        for unbiased in (False, True):
            want = ref_cka(a, b, kernel, unbiased)
            assert cka(a, b, kernel=kernel, unbiased=unbiased) == pytest.approx(want, abs=TOL), (kernel, unbiased)
    for unbiased in (True, False):
        assert cknna(a, b, 10, unbiased=unbiased) == pytest.approx(ref_cknna(a, b, 10, unbiased), abs=TOL)
    assert svcca(a, b) == pytest.approx(ref_svcca(a, b), abs=TOL)


def test_shared_computations_give_the_single_metric_values():
    a, b = offset_clouds(0.99, 120, 48, seed=3)
    names = ["mutual_knn", "cycle_knn", "lcs_knn", "cka_linear", "unbiased_cka_rbf", "cknna", "svcca"]
    together = alignment_scores(a, b, names, k=7)
    from lco_embedding.analysis import ALIGNMENT_METRICS

    for name in names:
        assert together[name] == pytest.approx(ALIGNMENT_METRICS[name](a, b, 7), abs=1e-12), name


def test_float32_kernels_would_not_be_exact_here():
    """The failure this guards against: the same biased linear CKA with float32 kernels is off by more than the
    tolerance at anisotropy 0.999 (large, nearly equal terms cancel)."""
    import torch

    a, b = offset_clouds(0.999, 200, 32)
    ua = torch.nn.functional.normalize(torch.from_numpy(a), dim=1)
    ub = torch.nn.functional.normalize(torch.from_numpy(b), dim=1)
    k, l = ua @ ua.T, ub @ ub.T  # noqa: E741

    def centred(m):
        return m - m.mean(0, keepdim=True) - m.mean(1, keepdim=True) + m.mean()

    float32 = float((centred(k) * l).sum() / torch.sqrt((centred(k) * k).sum() * (centred(l) * l).sum()))
    # off by far more than the tolerance, or NaN (a negative self-HSIC under the root)
    assert not abs(float32 - ref_cka(a, b, "linear", False)) <= 10 * TOL
