"""Representation metrics of the LCO-Embedding paper's analysis (section 2): anisotropy of a set, kernel alignment
between paired sets, and the modality gap.

Every function takes float tensors (or arrays) of shape ``[n, d]`` — for alignment, two sets whose rows are paired,
``A[i] <-> B[i]`` — computes in float32 on the tensors' device (CPU or GPU), and returns a float. Rows are
L2-normalised first, as in the paper and in the Platonic Representation Hypothesis' code (Huh et al., 2024), from
which the alignment metrics come. Nearest neighbours exclude the point itself and rank by cosine similarity; the
n x n similarity matrices are computed in row blocks, so n of a few tens of thousands fits in memory.

Does not subsample, bootstrap or compute confidence intervals: call the metrics on subsets for that.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "ALIGNMENT_METRICS",
    "anisotropy",
    "cka",
    "cknna",
    "cycle_knn",
    "edit_distance_knn",
    "hsic",
    "lcs_knn",
    "modality_gap",
    "mutual_knn",
    "nearest_neighbors",
    "probe_accuracy",
    "svcca",
]

_BLOCK = 4096


def _unit(x: Any, device: str | torch.device | None = None) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    tensor = tensor.to(device=device or tensor.device, dtype=torch.float32)
    if tensor.ndim != 2 or len(tensor) < 2:
        raise ValueError(f"expected a set of at least 2 vectors, shape [n, d]; got shape {tuple(tensor.shape)}.")
    return torch.nn.functional.normalize(tensor, p=2, dim=1)


def _paired(a: Any, b: Any, device: str | torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _unit(a, device), _unit(b, device)
    if len(a) != len(b):
        raise ValueError(f"paired sets need the same number of rows, got {len(a)} and {len(b)}.")
    return a, b.to(a.device)


def _degenerate(x: torch.Tensor) -> bool:
    """True when every unit row is the same vector: neighbours and kernels are then ties and noise."""
    return bool((x - x[0]).abs().max() < 1e-6)


def _defined(metric: Callable[..., float]) -> Callable[..., float]:
    """An alignment metric, NaN when either set is degenerate (all rows pointing one way), as every set of
    last-token states of the embedding layer is: the last token is the same for every input."""

    @functools.wraps(metric)
    def checked(a: Any, b: Any, *args: Any, device: str | torch.device | None = None, **kwargs: Any) -> float:
        unit_a, unit_b = _paired(a, b, device)
        if _degenerate(unit_a) or _degenerate(unit_b):
            return math.nan
        return metric(unit_a, unit_b, *args, device=device, **kwargs)

    return checked


def _check_k(k: int, n: int) -> None:
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}.")


def anisotropy(x: Any, *, device: str | torch.device | None = None) -> float:
    """Mean cosine similarity between distinct members of a set: ``(|sum_i x_i|^2 - n) / (n (n - 1))`` for unit
    rows ``x_i`` (the mean off-diagonal entry of the cosine matrix, without building it).

    0 for directions spread evenly (isotropic), 1 when every vector points the same way. Per layer and modality, the
    paper's Figure 2 (after Ethayarajh, 2019, "How Contextual are Contextualized Word Representations?").
    """
    unit = _unit(x, device)
    n = len(unit)
    total = unit.sum(dim=0)
    return float((total @ total - n) / (n * (n - 1)))


def nearest_neighbors(x: Any, k: int, *, device: str | torch.device | None = None) -> torch.Tensor:
    """``[n, k]`` indices of each row's ``k`` most cosine-similar other rows, most similar first (ties: lower index)."""
    unit = _unit(x, device)
    _check_k(k, len(unit))
    blocks = []
    for start in range(0, len(unit), _BLOCK):
        similarity = unit[start : start + _BLOCK] @ unit.T
        rows = torch.arange(start, start + len(similarity), device=unit.device)
        similarity[torch.arange(len(similarity), device=unit.device), rows] = -torch.inf
        # A stable descending sort: equal similarities keep index order.
        blocks.append(torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :k])
    return torch.cat(blocks)


def _membership(neighbors: torch.Tensor) -> torch.Tensor:
    n = len(neighbors)
    mask = torch.zeros(n, n, dtype=torch.bool, device=neighbors.device)
    mask[torch.arange(n, device=neighbors.device).unsqueeze(1), neighbors] = True
    return mask


@_defined
def mutual_knn(a: Any, b: Any, k: int = 10, *, device: str | torch.device | None = None) -> float:
    """Mutual k-nearest-neighbour alignment: ``mean_i |N_A(i) & N_B(i)| / k``, the share of each item's k nearest
    neighbours in A that are also among its k nearest in B.

    The paper's main alignment metric (k = 10), from Huh et al. (2024), "The Platonic Representation Hypothesis".
    """
    a, b = _paired(a, b, device)
    overlap = _membership(nearest_neighbors(a, k)) & _membership(nearest_neighbors(b, k))
    return float(overlap.sum(dim=1).float().mean() / k)


@_defined
def cycle_knn(a: Any, b: Any, k: int = 10, *, device: str | torch.device | None = None) -> float:
    """Cycle k-NN: the share of items ``i`` found among the A-neighbours of their own B-neighbours,
    ``mean_i 1[i in U_{j in N_B(i)} N_A(j)]`` (Huh et al., 2024)."""
    a, b = _paired(a, b, device)
    knn_a, knn_b = nearest_neighbors(a, k), nearest_neighbors(b, k)
    back = knn_a[knn_b]  # [n, k, k]
    own = torch.arange(len(a), device=a.device).view(-1, 1, 1)
    return float((back == own).flatten(1).any(dim=1).float().mean())


def _sequence_scores(a: Any, b: Any, k: int, device: Any, score: Callable[[list[int], list[int]], int]) -> list[int]:
    a, b = _paired(a, b, device)
    knn_a, knn_b = nearest_neighbors(a, k).tolist(), nearest_neighbors(b, k).tolist()
    return [score(x, y) for x, y in zip(knn_a, knn_b, strict=True)]


def _lcs(x: list[int], y: list[int]) -> int:
    previous = [0] * (len(y) + 1)
    for xi in x:
        current = [0]
        for j, yj in enumerate(y):
            current.append(previous[j] + 1 if xi == yj else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def _levenshtein(x: list[int], y: list[int]) -> int:
    previous = list(range(len(y) + 1))
    for i, xi in enumerate(x, 1):
        current = [i]
        for j, yj in enumerate(y, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (xi != yj)))
        previous = current
    return previous[-1]


@_defined
def lcs_knn(a: Any, b: Any, k: int = 10, *, device: str | torch.device | None = None) -> float:
    """Longest-common-subsequence k-NN: ``mean_i LCS(N_A(i), N_B(i)) / k`` over the ordered neighbour lists
    (Huh et al., 2024, who report the LCS length itself; divided by k here so that identical lists score 1)."""
    return float(np.mean(_sequence_scores(a, b, k, device, _lcs)) / k)


@_defined
def edit_distance_knn(a: Any, b: Any, k: int = 10, *, device: str | torch.device | None = None) -> float:
    """Edit-distance k-NN: ``1 - mean_i Levenshtein(N_A(i), N_B(i)) / k`` over the ordered neighbour lists
    (Huh et al., 2024)."""
    return float(1 - np.mean(_sequence_scores(a, b, k, device, _levenshtein)) / k)


def hsic(k: torch.Tensor, l: torch.Tensor, *, unbiased: bool = False) -> torch.Tensor:  # noqa: E741
    """Hilbert-Schmidt independence criterion of two ``n x n`` kernel matrices.

    Biased (Gretton et al., 2005): ``tr(K H L H)`` with ``H = I - 11^T / n`` (the normalising constant cancels in
    CKA). Unbiased (Song et al., 2012, eq. 5), with ``K~``, ``L~`` the kernels with zeroed diagonals:
    ``[tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2 1^T K~ L~ 1 / (n-2)] / (n (n-3))`` (needs n > 3).
    """
    n = len(k)
    if not unbiased:
        kc = k - k.mean(dim=0, keepdim=True) - k.mean(dim=1, keepdim=True) + k.mean()
        return (kc * l.T).sum()  # tr(K H L H) = sum_ij (HKH)_ij L_ji
    if n < 4:
        raise ValueError("the unbiased HSIC needs at least 4 items.")
    kt, lt = k.clone().fill_diagonal_(0), l.clone().fill_diagonal_(0)
    value = (kt * lt.T).sum() + kt.sum() * lt.sum() / ((n - 1) * (n - 2)) - 2 * (kt.sum(0) @ lt.sum(1)) / (n - 2)
    return value / (n * (n - 3))


def _kernel(x: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    if kernel == "linear":
        return x @ x.T
    if kernel == "rbf":
        return torch.exp(-torch.cdist(x, x).square() / (2 * sigma**2))
    raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}.")


def _normalised(kl: torch.Tensor, kk: torch.Tensor, ll: torch.Tensor) -> float:
    denominator = torch.sqrt(kk * ll)
    return float(kl / denominator) if denominator > 0 else 0.0


@_defined
def cka(
    a: Any,
    b: Any,
    *,
    kernel: str = "linear",
    unbiased: bool = False,
    sigma: float = 1.0,
    device: str | torch.device | None = None,
) -> float:
    """Centered kernel alignment: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K``, ``L`` the kernel matrices
    of A and B: linear (``X X^T``) or RBF (``exp(-|x_i - x_j|^2 / (2 sigma^2))`` on the unit rows), biased or unbiased
    HSIC (:func:`hsic`).

    Kornblith et al. (2019), "Similarity of Neural Network Representations Revisited"; unbiased form as in Huh et al.
    (2024). 1 for identical sets, invariant to rotations and to isotropic scaling; near 0 for independent sets with
    the unbiased HSIC (the biased one is positively biased for small n).
    """
    a, b = _paired(a, b, device)
    k, l = _kernel(a, kernel, sigma), _kernel(b, kernel, sigma)  # noqa: E741
    return _normalised(hsic(k, l, unbiased=unbiased), hsic(k, k, unbiased=unbiased), hsic(l, l, unbiased=unbiased))


@_defined
def cknna(a: Any, b: Any, k: int = 10, *, unbiased: bool = True, device: str | torch.device | None = None) -> float:
    """Centered kernel nearest-neighbour alignment: CKA restricted to mutual neighbours. With linear kernels ``K``,
    ``L`` and ``M_ij = 1`` when ``j`` is among the k nearest of ``i`` in both (``j != i``),
    ``HSIC(M * K, M * L) / sqrt(HSIC(M_K * K, M_K * K) HSIC(M_L * L, M_L * L))`` (unbiased HSIC by default).

    Huh et al. (2024), "The Platonic Representation Hypothesis": alignment of local neighbourhoods only. With the
    unbiased HSIC the ratio is not bounded by 1: on small sets (tens of pairs) it can exceed it.
    """
    a, b = _paired(a, b, device)
    _check_k(k, len(a))
    kk, ll = a @ a.T, b @ b.T
    mask_k = _membership(nearest_neighbors(a, k)).float()
    mask_l = _membership(nearest_neighbors(b, k)).float()
    both = mask_k * mask_l
    return _normalised(
        hsic(both * kk, both * ll, unbiased=unbiased),
        hsic(mask_k * kk, mask_k * kk, unbiased=unbiased),
        hsic(mask_l * ll, mask_l * ll, unbiased=unbiased),
    )


@_defined
def svcca(a: Any, b: Any, dims: int = 10, *, device: str | torch.device | None = None) -> float:
    """Singular vector canonical correlation analysis: each set is centred and standardised per dimension, reduced to
    its top ``dims`` singular directions (``U_A``, ``U_B``, orthonormal), and the canonical correlations between the
    two subspaces (the singular values of ``U_A^T U_B``, the cosines of their principal angles) are averaged.

    Raghu et al. (2017), "SVCCA"; as used by Huh et al. (2024). ``dims`` is capped by n - 1 and d.
    """
    a, b = _paired(a, b, device)
    dims = min(dims, len(a) - 1, a.shape[1], b.shape[1])

    def basis(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=0)
        x = x / (x.std(dim=0) + 1e-8)
        return torch.linalg.svd(x.double(), full_matrices=False).U[:, :dims]

    correlations = torch.linalg.svdvals(basis(a).T @ basis(b))
    return float(correlations.clamp(max=1).mean())


def modality_gap(a: Any, b: Any, *, device: str | torch.device | None = None) -> float:
    """The distance between the centroids of two sets of unit vectors, ``|mean_i a_i - mean_i b_i|``.

    Liang et al. (2022), "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive Representation
    Learning". 0 when the centroids coincide; at most 2.
    """
    a, b = _unit(a, device), _unit(b, device)
    return float(torch.linalg.vector_norm(a.mean(dim=0) - b.to(a.device).mean(dim=0)))


def probe_accuracy(a: Any, b: Any, *, folds: int = 5) -> float:
    """Linear-probe separability of two paired sets: the cross-validated accuracy of a logistic regression telling
    rows of A from rows of B (L2-normalised rows; ``folds``-fold, a pair's two members always in the same fold, so
    that no pair is split between training and test; scikit-learn).

    0.5 when the modalities share one region of the space (identical sets score exactly 0.5), 1.0 when a hyperplane
    separates them: the modality gap seen by a linear classifier (Liang et al., 2022).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    a, b = (x.cpu().numpy() for x in _paired(a, b, None))
    features = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    groups = np.concatenate([np.arange(len(a)), np.arange(len(b))])
    split = GroupKFold(n_splits=max(2, min(folds, len(a))))
    scores = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=split, groups=groups)
    return float(scores.mean())


def _with_k(metric: Callable[..., float]) -> Callable[..., float]:
    return lambda a, b, k, device=None: metric(a, b, k, device=device)


def _without_k(metric: Callable[..., float], **options: Any) -> Callable[..., float]:
    return lambda a, b, k, device=None: metric(a, b, device=device, **options)


ALIGNMENT_METRICS: dict[str, Callable[..., float]] = {
    "mutual_knn": _with_k(mutual_knn),
    "cycle_knn": _with_k(cycle_knn),
    "lcs_knn": _with_k(lcs_knn),
    "edit_distance_knn": _with_k(edit_distance_knn),
    "cka_linear": _without_k(cka, kernel="linear"),
    "cka_rbf": _without_k(cka, kernel="rbf"),
    "unbiased_cka_linear": _without_k(cka, kernel="linear", unbiased=True),
    "unbiased_cka_rbf": _without_k(cka, kernel="rbf", unbiased=True),
    "cknna": _with_k(cknna),
    "svcca": _without_k(svcca),
    "modality_gap": _without_k(modality_gap),
    "probe_accuracy": lambda a, b, k, device=None: probe_accuracy(a, b),
}
"""Metric name -> ``(A, B, k, device=None) -> float`` for paired sets, as :func:`analyze_pairs` calls them."""
