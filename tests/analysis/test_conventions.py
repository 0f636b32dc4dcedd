"""conventions="authors": each metric against an independent re-implementation of the formula in the LCO-Embedding
authors' Analysis/ code (anisotropy.py, kernel_alignment.py), on random and anisotropic float32 data, rows as given
(not normalised); and the authors' prompts in analyze_pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lco_embedding.analysis import (
    ALIGNMENT_METRICS,
    analyze_pairs,
    anisotropy,
    authors_item,
    cka,
    cknna,
    cycle_knn,
    edit_distance_knn,
    embed_pairs,
    lcs_knn,
    mutual_knn,
    svcca,
)
from tests.analysis.test_exactness import hsic_biased, hsic_unbiased, offset_clouds

TOL = 1e-5


# ---------------------------------------------------------------- the authors' formulas, re-implemented (float64)
def knn(x, k):
    """compute_nearest_neighbors: (X X^T) with the diagonal at -1e8, sorted descending."""
    similarity = x @ x.T
    np.fill_diagonal(similarity, -1e8)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def authors_mutual(a, b, k):
    na, nb = knn(a, k), knn(b, k)
    n = len(a)
    ma, mb = np.zeros((n, n)), np.zeros((n, n))
    np.put_along_axis(ma, na, 1.0, axis=1)
    np.put_along_axis(mb, nb, 1.0, axis=1)
    return ((ma * mb).sum(1) / k).mean()


def authors_cycle(a, b, k):
    back = knn(a, k)[knn(b, k)]
    return (back == np.arange(len(a))[:, None, None]).reshape(len(a), -1).max(1).mean()


def lcs_length(x, y):
    dp = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            dp[i][j] = dp[i - 1][j - 1] + 1 if x[i - 1] == y[j - 1] else max(dp[i - 1][j], dp[i][j - 1])
    return dp[-1][-1]


def authors_lcs(a, b, k):
    return np.mean([lcs_length(x, y) for x, y in zip(knn(a, k), knn(b, k), strict=True)])


def levenshtein(x, y):
    """torchaudio.functional.edit_distance (theirs) is the Levenshtein distance: NLTK's, an implementation of its
    own (not ours)."""
    from nltk.metrics.distance import edit_distance

    return edit_distance(list(x), list(y))


def test_the_independent_levenshtein_gives_known_distances():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein([1, 2, 3, 4], [2, 3, 5, 4, 6]) == 3
    assert levenshtein([], [7, 8]) == 2


def authors_edit_distance(a, b, k):
    return 1 - np.mean([levenshtein(x, y) for x, y in zip(knn(a, k), knn(b, k), strict=True)]) / k


def authors_cka(a, b, kernel="ip", unbiased=False, sigma=1.0):
    if kernel == "ip":
        k, l = a @ a.T, b @ b.T  # noqa: E741
    else:
        k = np.exp(-(((a[:, None] - a[None]) ** 2).sum(-1)) / (2 * sigma**2))
        l = np.exp(-(((b[:, None] - b[None]) ** 2).sum(-1)) / (2 * sigma**2))  # noqa: E741
    h = hsic_unbiased if unbiased else hsic_biased
    return h(k, l) / (np.sqrt(h(k, k) * h(l, l)) + 1e-6)


def authors_cknna(a, b, k, unbiased=True):
    kk, ll = a @ a.T, b @ b.T
    n = len(a)

    def similarity(x, y):
        xh, yh = x.copy(), y.copy()
        if unbiased:
            np.fill_diagonal(xh, -np.inf)
            np.fill_diagonal(yh, -np.inf)
        mx, my = np.zeros((n, n)), np.zeros((n, n))
        np.put_along_axis(mx, np.argsort(-xh, axis=1, kind="stable")[:, :k], 1.0, axis=1)
        np.put_along_axis(my, np.argsort(-yh, axis=1, kind="stable")[:, :k], 1.0, axis=1)
        mask = mx * my
        return (hsic_unbiased if unbiased else hsic_biased)(mask * x, mask * y)

    return similarity(kk, ll) / (np.sqrt(similarity(kk, kk) * similarity(ll, ll)) + 1e-6)


def authors_svcca(a, b, dims=10):
    from sklearn.cross_decomposition import CCA

    def preprocess(x):
        x = torch.from_numpy(x)
        x = x - torch.mean(x, dim=0)
        return x / (torch.std(x, dim=0) + 1e-8)

    torch.manual_seed(0)  # the authors' script seeds once, then reduces A and B in turn
    u1 = torch.svd_lowrank(preprocess(a), q=dims)[0].numpy()
    u2 = torch.svd_lowrank(preprocess(b), q=dims)[0].numpy()
    u1c, u2c = CCA(n_components=dims).fit(u1, u2).transform(u1, u2)
    return np.mean([np.corrcoef(u1c[:, i], u2c[:, i])[0, 1] for i in range(dims)])


def authors_anisotropy(x):
    from sklearn.metrics.pairwise import cosine_similarity

    lower = np.tril(cosine_similarity(x, x), k=-1)
    return np.sum(lower) / np.count_nonzero(lower)


# ------------------------------------------------------------------------------------------------ tests
def random_sets(seed=0, n=40, d=24):
    rng = np.random.default_rng(seed)
    a = 3 * rng.standard_normal((n, d))  # not unit rows: the authors' functions take them as given
    b = a @ rng.standard_normal((d, d)) + rng.standard_normal((n, d))
    return a.astype(np.float32), b.astype(np.float32)


DATA = {
    "random": random_sets(),
    "anisotropic-0.99": offset_clouds(0.99, 40, 24, seed=1),
    "anisotropic-0.999": offset_clouds(0.999, 40, 24, seed=2),
}


@pytest.mark.parametrize("name", list(DATA))
def test_each_metric_follows_the_authors_formula(name):
    a32, b32 = DATA[name]
    a, b = a32.astype(np.float64), b32.astype(np.float64)
    k, c = 5, "authors"
    assert mutual_knn(a32, b32, k, conventions=c) == pytest.approx(authors_mutual(a, b, k), abs=TOL)
    assert cycle_knn(a32, b32, k, conventions=c) == pytest.approx(authors_cycle(a, b, k), abs=TOL)
    assert lcs_knn(a32, b32, k, conventions=c) == pytest.approx(authors_lcs(a, b, k), abs=TOL)
    assert edit_distance_knn(a32, b32, k, conventions=c) == pytest.approx(authors_edit_distance(a, b, k), abs=TOL)
    for kernel, ours in (("ip", "linear"), ("rbf", "rbf")):
        for unbiased in (False, True):
            want = authors_cka(a, b, kernel, unbiased)
            got = cka(a32, b32, kernel=ours, unbiased=unbiased, conventions=c)
            assert got == pytest.approx(want, abs=TOL), (kernel, unbiased)
    for unbiased in (True, False):
        want = authors_cknna(a, b, k, unbiased)
        assert cknna(a32, b32, k, unbiased=unbiased, conventions=c) == pytest.approx(want, abs=TOL), unbiased
    assert svcca(a32, b32, conventions=c) == pytest.approx(authors_svcca(a, b), abs=TOL)
    assert anisotropy(a32, conventions=c) == pytest.approx(authors_anisotropy(a), abs=TOL)


def test_where_the_conventions_differ_they_do():
    a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in random_sets(seed=4))  # as their script passes
    k = 5
    assert lcs_knn(a, b, k, conventions="authors") == pytest.approx(k * lcs_knn(a, b, k), abs=1e-9)
    own = cknna(a, b, k, unbiased=False, conventions="authors")
    assert abs(own - cknna(a, b, k, unbiased=False)) > 1e-3  # each point in its own top k, or not
    # Exactly orthogonal pairs: the authors' mean leaves them out.
    basis = np.eye(6, dtype=np.float32)
    tilted = np.vstack([basis, basis[0] + basis[1]])
    assert anisotropy(tilted) == pytest.approx(2 * np.sqrt(0.5) / 21, abs=1e-6)  # 21 distinct pairs, 2 not 0
    assert anisotropy(tilted, conventions="authors") == pytest.approx(np.sqrt(0.5), abs=1e-6)
    # A degenerate set (every row the same, as at the embedding layer): NaN, or the authors' number.
    same = np.tile(a[:1], (len(a), 1))
    assert math.isnan(mutual_knn(same, b, k)) and not math.isnan(mutual_knn(same, b, k, conventions="authors"))
    with pytest.raises(ValueError, match="conventions must be"):
        cka(a, b, conventions="theirs")


def test_rows_are_taken_as_given_by_the_authors_and_normalised_by_the_paper():
    a, b = random_sets(seed=5)
    scaled = a * np.linspace(0.5, 3, len(a), dtype=np.float32)[:, None]  # same directions, other lengths
    assert ALIGNMENT_METRICS["mutual_knn"](scaled, b, 5) == ALIGNMENT_METRICS["mutual_knn"](a, b, 5)
    authors = [ALIGNMENT_METRICS["cka_linear"](x, b, 5, conventions="authors") for x in (a, scaled)]
    assert abs(authors[0] - authors[1]) > 1e-3


def test_analyze_pairs_with_the_authors_conventions(embedder, media):
    pairs = [({"image": media[name]}, f"caption {i} of a picture") for i, name in enumerate(["png", "jpg", "gray_png"])]
    pairs += [({"image": media["png_rgba"]}, "a long caption " * 200)]  # past max_length: the authors do not cut
    first, second = embed_pairs(embedder, pairs, layers=[-1], conventions="authors")
    image = embedder.encode(authors_item(pairs[0][0]))
    np.testing.assert_allclose(first[0, 0] / np.linalg.norm(first[0, 0]), image, atol=1e-5)
    assert np.dot(image, embedder.encode(pairs[0][0])) < 0.9999  # not the image suffix
    whole = embedder.encode([[{"role": "user", "content": [{"type": "text", "text": pairs[3][1] + "\nSummarize "
                                                              "the above text in one word:"}]}]])[0]  # fmt: skip
    np.testing.assert_allclose(second[3, 0] / np.linalg.norm(second[3, 0]), whole, atol=1e-5)
    table = analyze_pairs(embedder, pairs, metrics=["lcs_knn", "cka_linear"], layers=[-1], k=2, conventions="authors")
    lcs = table[table["metric"] == "lcs_knn"]["value"].item()
    assert 0 <= lcs <= 2 and lcs == pytest.approx(
        lcs_knn(first[:, 0], second[:, 0], 2, conventions="authors"), abs=1e-9
    )
