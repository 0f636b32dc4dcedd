"""Representation metrics of the LCO-Embedding paper's analysis (section 2): anisotropy of a set, kernel alignment
between paired sets, and the modality gap.

Every function takes float tensors (or arrays) of shape ``[n, d]`` — for alignment, two sets whose rows are paired,
``A[i] <-> B[i]`` — and returns a float. Computation is in float64 on the tensors' device (CPU or GPU): last-token
states are highly anisotropic (all rows close to one direction), and there the large, nearly equal terms of a
centred HSIC cancel; in float32 CKA was off by up to 0.7 at anisotropy 0.997. Nearest neighbours are searched in
row blocks; kernel metrics hold ``min(n, d)^2`` float64 values for linear CKA and ``n^2`` for the RBF kernel and
CKNNA.

Two conventions (``conventions=``):

* ``"paper"`` (default): rows are L2-normalised inside every function; a point is never its own neighbour; LCS
  k-NN is divided by k (identical lists score 1); SVCCA uses an exact SVD; no epsilon in the CKA denominators;
  anisotropy is the mean over every distinct pair; alignment is NaN where a set is degenerate (every row the same
  direction, as every set of embedding-layer states is).
* ``"authors"``: the formulas of the LCO-Embedding authors' ``Analysis/`` code (adapted from the Platonic
  Representation Hypothesis' code): rows taken as given (their script normalises them before the call, as
  :func:`~lco_embedding.analysis.analyze_pairs` does), the mean LCS length, ``cknna(unbiased=False)`` counting a
  point in its own top k, ``torch.svd_lowrank(q=dims)`` (seeded with 0) and scikit-learn's CCA for SVCCA, ``+ 1e-6``
  in the CKA and CKNNA denominators, anisotropy averaged over the non-zero cosines only, no NaN for degenerate sets.
  Their float32 precision loss is not reproduced. docs/analysis.md lists each difference.

Ties between equal similarities are broken by the lower index under both conventions. Does not subsample,
bootstrap or compute confidence intervals: call the metrics on subsets for that.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import torch

__all__ = [
    "ALIGNMENT_METRICS",
    "AUTHORS_EPS",
    "CONVENTIONS",
    "Conventions",
    "PairedSets",
    "alignment_scores",
    "anisotropy",
    "cka",
    "cknna",
    "cycle_knn",
    "edit_distance_knn",
    "hsic",
    "lcs_knn",
    "modality_gap",
    "mutual_knn",
    "probe_accuracy",
    "svcca",
]

Conventions: TypeAlias = Literal["paper", "authors"]
CONVENTIONS: tuple[Conventions, ...] = ("paper", "authors")
AUTHORS_EPS = 1e-6
"""The authors' epsilon in the CKA and CKNNA denominators."""

_BLOCK = 4096


def _check_conventions(conventions: str) -> None:
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be 'paper' or 'authors', got {conventions!r}.")


def _rows(x: Any, device: str | torch.device | None, normalise: bool) -> torch.Tensor:
    """``x`` as a float64 ``[n, d]`` tensor on ``device``, L2-normalised rows if asked."""
    tensor = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    tensor = tensor.to(device=device or tensor.device, dtype=torch.float64)
    if tensor.ndim != 2 or len(tensor) < 2:
        raise ValueError(f"expected a set of at least 2 vectors, shape [n, d]; got shape {tuple(tensor.shape)}.")
    return torch.nn.functional.normalize(tensor, p=2, dim=1) if normalise else tensor


def _degenerate(x: torch.Tensor) -> bool:
    """True when every row is the same vector: neighbours and kernels are then ties and noise."""
    return bool((x - x[0]).abs().max() < 1e-6)


def _check_k(k: int, n: int) -> None:
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}.")


class PairedSets:
    """Two paired sets prepared once for several metrics: float64 rows, their Gram matrices and neighbour lists
    (computed when first needed, then kept).

    Args:
        a, b: ``[n, d_a]`` and ``[n, d_b]`` paired sets.
        conventions: ``"paper"`` or ``"authors"`` (see the module).
        device: Where to compute (default: where ``a`` is).
    """

    def __init__(
        self, a: Any, b: Any, *, conventions: Conventions = "paper", device: str | torch.device | None = None
    ) -> None:
        _check_conventions(conventions)
        self.conventions: Conventions = conventions
        normalise = conventions == "paper"
        self.a = _rows(a, device, normalise)
        self.b = _rows(b, device, normalise).to(self.a.device)
        if len(self.a) != len(self.b):
            raise ValueError(f"paired sets need the same number of rows, got {len(self.a)} and {len(self.b)}.")
        self.n = len(self.a)
        self._grams: dict[str, torch.Tensor] = {}
        self._neighbors: dict[tuple[str, int, bool], torch.Tensor] = {}

    @property
    def degenerate(self) -> bool:
        """True when either set is degenerate and the paper's conventions apply (alignment is then NaN)."""
        return self.conventions == "paper" and (_degenerate(self.a) or _degenerate(self.b))

    def side(self, name: str) -> torch.Tensor:
        """The rows of side ``"a"`` or ``"b"``."""
        return self.a if name == "a" else self.b

    def gram(self, name: str) -> torch.Tensor:
        """``X X^T`` of one side (float64, ``[n, n]``)."""
        if name not in self._grams:
            x = self.side(name)
            self._grams[name] = x @ x.T
        return self._grams[name]

    def neighbors(self, name: str, k: int, *, include_self: bool = False) -> torch.Tensor:
        """``[n, k]`` indices of each row's ``k`` most similar rows (dot product; cosine for unit rows), most similar
        first, ties by the lower index; the row itself only with ``include_self``."""
        _check_k(k, self.n + include_self)
        key = (name, k, include_self)
        if key not in self._neighbors:
            x = self.side(name)
            blocks = []
            for start in range(0, self.n, _BLOCK):
                if name in self._grams:
                    similarity = self._grams[name][start : start + _BLOCK].clone()
                else:
                    similarity = x[start : start + _BLOCK] @ x.T
                if not include_self:
                    rows = torch.arange(len(similarity), device=x.device)
                    similarity[rows, rows + start] = -torch.inf
                blocks.append(torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :k])
            self._neighbors[key] = torch.cat(blocks)
        return self._neighbors[key]

    def membership(self, name: str, k: int, *, include_self: bool = False) -> torch.Tensor:
        """``[n, n]`` float64 mask: 1 where column ``j`` is among row ``i``'s ``k`` nearest."""
        neighbors = self.neighbors(name, k, include_self=include_self)
        mask = torch.zeros(self.n, self.n, dtype=torch.float64, device=neighbors.device)
        mask[torch.arange(self.n, device=neighbors.device).unsqueeze(1), neighbors] = 1.0
        return mask


def _prepared(a: Any, b: Any, conventions: Conventions, device: Any) -> PairedSets:
    return a if isinstance(a, PairedSets) else PairedSets(a, b, conventions=conventions, device=device)


def _ratio(numerator: torch.Tensor, kk: torch.Tensor, ll: torch.Tensor, conventions: Conventions) -> float:
    """``numerator / sqrt(kk * ll)``: the authors add 1e-6 to the denominator; the paper's is 0 when not positive."""
    if conventions == "authors":
        return float(numerator / (torch.sqrt(kk * ll) + AUTHORS_EPS))
    denominator = torch.sqrt(kk * ll)
    return float(numerator / denominator) if denominator > 0 else 0.0


# ---------------------------------------------------------------------------------------------- anisotropy
def anisotropy(x: Any, *, conventions: Conventions = "paper", device: str | torch.device | None = None) -> float:
    """Mean cosine similarity between distinct members of a set: ``(|sum_i x_i|^2 - n) / (n (n - 1))`` for unit
    rows ``x_i`` (the mean off-diagonal entry of the cosine matrix, without building it).

    0 for directions spread evenly (isotropic), 1 when every vector points the same way. Per layer and modality, the
    paper's Figure 2 (after Ethayarajh, 2019, "How Contextual are Contextualized Word Representations?").
    ``conventions="authors"``: the sum of the cosine matrix's lower triangle over its non-zero entries
    (``np.count_nonzero``), which leaves out exactly orthogonal pairs.
    """
    _check_conventions(conventions)
    unit = _rows(x, device, normalise=True)  # the authors' cosine_similarity normalises rows too
    n = len(unit)
    if conventions == "paper":
        total = unit.sum(dim=0)
        return float((total @ total - n) / (n * (n - 1)))
    value, nonzero = torch.zeros((), dtype=torch.float64, device=unit.device), 0
    for start in range(0, n, _BLOCK):
        block = torch.tril(unit[start : start + _BLOCK] @ unit.T, diagonal=start - 1)
        value += block.sum()
        nonzero += int(torch.count_nonzero(block))
    return float(value / nonzero) if nonzero else math.nan


# ------------------------------------------------------------------------------------------- k-NN metrics
def mutual_knn(
    a: Any, b: Any, k: int = 10, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """Mutual k-nearest-neighbour alignment: ``mean_i |N_A(i) & N_B(i)| / k``, the share of each item's k nearest
    neighbours in A that are also among its k nearest in B.

    The paper's main alignment metric (k = 10), from Huh et al. (2024), "The Platonic Representation Hypothesis".
    """
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    overlap = sets.membership("a", k) * sets.membership("b", k)
    return float(overlap.sum(dim=1).mean() / k)


def cycle_knn(
    a: Any, b: Any, k: int = 10, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """Cycle k-NN: the share of items ``i`` found among the A-neighbours of their own B-neighbours,
    ``mean_i 1[i in U_{j in N_B(i)} N_A(j)]`` (Huh et al., 2024)."""
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    back = sets.neighbors("a", k)[sets.neighbors("b", k)]  # [n, k, k]
    own = torch.arange(sets.n, device=back.device).view(-1, 1, 1)
    return float((back == own).flatten(1).any(dim=1).double().mean())


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


def _sequence_scores(sets: PairedSets, k: int, score: Callable[[list[int], list[int]], int]) -> list[int]:
    knn_a, knn_b = sets.neighbors("a", k).tolist(), sets.neighbors("b", k).tolist()
    return [score(x, y) for x, y in zip(knn_a, knn_b, strict=True)]


def lcs_knn(
    a: Any, b: Any, k: int = 10, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """Longest-common-subsequence k-NN: ``mean_i LCS(N_A(i), N_B(i)) / k`` over the ordered neighbour lists
    (Huh et al., 2024, who report the LCS length itself, as ``conventions="authors"`` does; divided by k here so
    that identical lists score 1)."""
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    mean = float(np.mean(_sequence_scores(sets, k, _lcs)))
    return mean if sets.conventions == "authors" else mean / k


def edit_distance_knn(
    a: Any, b: Any, k: int = 10, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """Edit-distance k-NN: ``1 - mean_i Levenshtein(N_A(i), N_B(i)) / k`` over the ordered neighbour lists
    (Huh et al., 2024)."""
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    return float(1 - np.mean(_sequence_scores(sets, k, _levenshtein)) / k)


# ------------------------------------------------------------------------------------------ kernel metrics
def hsic(k: torch.Tensor, l: torch.Tensor, *, unbiased: bool = False) -> torch.Tensor:  # noqa: E741
    """Hilbert-Schmidt independence criterion of two ``n x n`` kernel matrices (computed in their dtype: pass
    float64 for anisotropic data).

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


def _linear_hsic(x: torch.Tensor, y: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """HSIC of the linear kernels ``X X^T`` and ``Y Y^T`` from the features, without an ``n x n`` matrix:
    biased ``|Xc^T Yc|_F^2`` (``Xc``: centred columns); unbiased, eq. 5 with every term written in the features."""
    n = len(x)
    if not unbiased:
        return (x - x.mean(dim=0)).T.matmul(y - y.mean(dim=0)).square().sum()
    if n < 4:
        raise ValueError("the unbiased HSIC needs at least 4 items.")
    p, q = x.square().sum(dim=1), y.square().sum(dim=1)  # the diagonals
    sx, sy = x.sum(dim=0), y.sum(dim=0)
    trace = (x.T @ y).square().sum() - (p * q).sum()
    total_k, total_l = sx @ sx - p.sum(), sy @ sy - q.sum()
    chain = ((x @ sx - p) * (y @ sy - q)).sum()
    return (trace + total_k * total_l / ((n - 1) * (n - 2)) - 2 * chain / (n - 2)) / (n * (n - 3))


def _rbf(sets: PairedSets, name: str, sigma: float) -> torch.Tensor:
    gram = sets.gram(name)
    norms = gram.diagonal()
    distances = (norms[:, None] + norms[None, :] - 2 * gram).clamp(min=0)
    return torch.exp(-distances / (2 * sigma**2))


def cka(
    a: Any,
    b: Any,
    *,
    kernel: str = "linear",
    unbiased: bool = False,
    sigma: float = 1.0,
    conventions: Conventions = "paper",
    device: str | torch.device | None = None,
) -> float:
    """Centered kernel alignment: ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K``, ``L`` the kernel matrices
    of A and B: linear (``X X^T``) or RBF (``exp(-|x_i - x_j|^2 / (2 sigma^2))``), biased or unbiased HSIC
    (:func:`hsic`).

    Kornblith et al. (2019), "Similarity of Neural Network Representations Revisited"; unbiased form as in Huh et al.
    (2024). 1 for identical sets, invariant to rotations and to isotropic scaling; near 0 for independent sets with
    the unbiased HSIC (the biased one is positively biased for small n). Linear CKA is computed from the features
    when ``n`` exceeds their dimension (no ``n x n`` matrix), from the Gram matrices otherwise.
    """
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"kernel must be 'linear' or 'rbf', got {kernel!r}.")
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    if kernel == "linear" and sets.n > max(sets.a.shape[1], sets.b.shape[1]):
        x, y = sets.a, sets.b
        kl, kk, ll = (_linear_hsic(u, v, unbiased) for u, v in ((x, y), (x, x), (y, y)))
    else:
        k, l = (sets.gram(s) if kernel == "linear" else _rbf(sets, s, sigma) for s in ("a", "b"))  # noqa: E741
        kl, kk, ll = hsic(k, l, unbiased=unbiased), hsic(k, k, unbiased=unbiased), hsic(l, l, unbiased=unbiased)
    return _ratio(kl, kk, ll, sets.conventions)


def cknna(
    a: Any,
    b: Any,
    k: int = 10,
    *,
    unbiased: bool = True,
    conventions: Conventions = "paper",
    device: str | torch.device | None = None,
) -> float:
    """Centered kernel nearest-neighbour alignment: CKA restricted to mutual neighbours. With linear kernels ``K``,
    ``L`` and ``M_ij = 1`` when ``j`` is among the k nearest of ``i`` in both (``j != i``),
    ``HSIC(M * K, M * L) / sqrt(HSIC(M_K * K, M_K * K) HSIC(M_L * L, M_L * L))`` (unbiased HSIC by default).

    Huh et al. (2024), "The Platonic Representation Hypothesis": alignment of local neighbourhoods only. With the
    unbiased HSIC the ratio is not bounded by 1: on small sets (tens of pairs) it can exceed it.
    ``conventions="authors"`` with ``unbiased=False`` counts each point among its own k nearest, as their code does.
    """
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    include_self = sets.conventions == "authors" and not unbiased
    if sets.conventions == "authors" and k < 2:
        raise ValueError("CKNNA requires k >= 2 (the authors' code).")
    kk, ll = sets.gram("a"), sets.gram("b")
    mask_k = sets.membership("a", k, include_self=include_self)
    mask_l = sets.membership("b", k, include_self=include_self)
    both = mask_k * mask_l
    return _ratio(
        hsic(both * kk, both * ll, unbiased=unbiased),
        hsic(mask_k * kk, mask_k * kk, unbiased=unbiased),
        hsic(mask_l * ll, mask_l * ll, unbiased=unbiased),
        sets.conventions,
    )


# ---------------------------------------------------------------------------------------------------- SVCCA
def _standardised(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(dim=0)
    return x / (x.std(dim=0) + 1e-8)


def svcca(
    a: Any, b: Any, dims: int = 10, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """Singular vector canonical correlation analysis: each set is centred and standardised per dimension, reduced to
    its top ``dims`` singular directions (``U_A``, ``U_B``, orthonormal), and the canonical correlations between the
    two subspaces (the singular values of ``U_A^T U_B``, the cosines of their principal angles) are averaged.

    Raghu et al. (2017), "SVCCA"; as used by Huh et al. (2024). ``dims`` is capped by n - 1 and d.
    ``conventions="authors"``: the subspaces from ``torch.svd_lowrank(q=dims)`` (randomised; seeded with 0 here),
    the correlations from scikit-learn's ``CCA(n_components=dims)`` fitted on them, their mean.
    """
    sets = _prepared(a, b, conventions, device)
    if sets.degenerate:
        return math.nan
    x, y = _standardised(sets.a), _standardised(sets.b)
    if sets.conventions == "paper":
        dims = min(dims, sets.n - 1, x.shape[1], y.shape[1])
        u, v = (torch.linalg.svd(z, full_matrices=False).U[:, :dims] for z in (x, y))
        return float(torch.linalg.svdvals(u.T @ v).clamp(max=1).mean())
    from sklearn.cross_decomposition import CCA

    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(0)
        u, v = (torch.svd_lowrank(z, q=dims)[0].cpu().numpy() for z in (x, y))
    u_c, v_c = CCA(n_components=dims).fit(u, v).transform(u, v)
    return float(np.mean([np.corrcoef(u_c[:, i], v_c[:, i])[0, 1] for i in range(dims)]))


# ---------------------------------------------------------------------------------------------- the gap
def modality_gap(
    a: Any, b: Any, *, conventions: Conventions = "paper", device: str | torch.device | None = None
) -> float:
    """The distance between the centroids of two sets of unit vectors, ``|mean_i a_i - mean_i b_i|``.

    Liang et al. (2022), "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive Representation
    Learning". 0 when the centroids coincide; at most 2. Not in the authors' code: the same under both conventions
    (rows normalised).
    """
    _check_conventions(conventions)
    x, y = _rows(a, device, normalise=True), _rows(b, device, normalise=True)
    return float(torch.linalg.vector_norm(x.mean(dim=0) - y.to(x.device).mean(dim=0)))


def probe_accuracy(a: Any, b: Any, *, folds: int = 5, conventions: Conventions = "paper") -> float:
    """Linear-probe separability of two paired sets: the cross-validated accuracy of a logistic regression telling
    rows of A from rows of B (L2-normalised rows; ``folds``-fold, a pair's two members always in the same fold, so
    that no pair is split between training and test; scikit-learn).

    0.5 when the modalities share one region of the space (identical sets score exactly 0.5), 1.0 when a hyperplane
    separates them: the modality gap seen by a linear classifier (Liang et al., 2022). Not in the authors' code:
    the same under both conventions.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    _check_conventions(conventions)
    x, y = (_rows(s, None, normalise=True).cpu().numpy() for s in (a, b))
    if len(x) != len(y):
        raise ValueError(f"paired sets need the same number of rows, got {len(x)} and {len(y)}.")
    features = np.concatenate([x, y])
    labels = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    groups = np.concatenate([np.arange(len(x)), np.arange(len(y))])
    split = GroupKFold(n_splits=max(2, min(folds, len(x))))
    scores = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=split, groups=groups)
    return float(scores.mean())


# ------------------------------------------------------------------------------------------ the metric table
_Score = Callable[[PairedSets, int], float]

_SCORES: dict[str, _Score] = {
    "mutual_knn": lambda s, k: mutual_knn(s, None, k),
    "cycle_knn": lambda s, k: cycle_knn(s, None, k),
    "lcs_knn": lambda s, k: lcs_knn(s, None, k),
    "edit_distance_knn": lambda s, k: edit_distance_knn(s, None, k),
    "cka_linear": lambda s, k: cka(s, None, kernel="linear"),
    "cka_rbf": lambda s, k: cka(s, None, kernel="rbf"),
    "unbiased_cka_linear": lambda s, k: cka(s, None, kernel="linear", unbiased=True),
    "unbiased_cka_rbf": lambda s, k: cka(s, None, kernel="rbf", unbiased=True),
    "cknna": lambda s, k: cknna(s, None, k),
    "svcca": lambda s, k: svcca(s, None),
    "modality_gap": lambda s, k: modality_gap(s.a, s.b, conventions=s.conventions),
    "probe_accuracy": lambda s, k: probe_accuracy(s.a.cpu(), s.b.cpu(), conventions=s.conventions),
}


def alignment_scores(
    a: Any,
    b: Any,
    metrics: Sequence[str],
    k: int = 10,
    *,
    conventions: Conventions = "paper",
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Several alignment metrics of one pair of sets, sharing their Gram matrices and neighbour lists: ``{metric:
    value}`` for names from :data:`ALIGNMENT_METRICS`.

    Example:
        >>> x = np.random.default_rng(0).standard_normal((20, 8))
        >>> alignment_scores(x, x, ["mutual_knn", "cka_linear"], k=5)
        {'mutual_knn': 1.0, 'cka_linear': 1.0}
    """
    unknown = sorted(set(metrics) - set(_SCORES))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(_SCORES)}.")
    sets = PairedSets(a, b, conventions=conventions, device=device)
    if any(name not in ("modality_gap", "probe_accuracy", "svcca") for name in metrics) and sets.n <= max(
        sets.a.shape[1], sets.b.shape[1]
    ):
        sets.gram("a"), sets.gram("b")  # shared by the neighbour search and every kernel
    return {name: _SCORES[name](sets, k) for name in metrics}


def _metric(name: str) -> Callable[..., float]:
    def score(a: Any, b: Any, k: int, device: Any = None, conventions: Conventions = "paper") -> float:
        return alignment_scores(a, b, [name], k, conventions=conventions, device=device)[name]

    score.__name__ = name
    score.__doc__ = f"``{name}`` of two paired sets: ``(A, B, k, device=None, conventions='paper') -> float``."
    return score


ALIGNMENT_METRICS: dict[str, Callable[..., float]] = {name: _metric(name) for name in _SCORES}
"""Metric name -> ``(A, B, k, device=None, conventions="paper") -> float`` for paired sets (see
:func:`alignment_scores` to compute several at once)."""
