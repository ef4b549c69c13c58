"""The Gram shortcut of the CKA family: replicates on subsets and under shuffled pairing equal
direct computation (moved here from tests/analysis/test_stats.py with the code)."""

from __future__ import annotations

import numpy as np
import pytest

from repdrift.analysis.stats import half_samples, permutations
from repdrift.metrics.resampling import gram_cka_permuted, gram_cka_subsets


def plain_cka(X: np.ndarray, Y: np.ndarray, *, debiased: bool) -> float:
    """Reference CKA from the textbook formulas, written out with explicit centring matrices."""
    n = X.shape[0]
    K, L = X @ X.T, Y @ Y.T
    if not debiased:
        H = np.eye(n) - np.ones((n, n)) / n

        def hsic(A, B):
            return np.trace(A @ H @ B @ H)
    else:

        def hsic(A, B):  # Song et al. (2012), eq. (5)
            A, B = A - np.diag(np.diag(A)), B - np.diag(np.diag(B))
            one = np.ones(n)
            return (
                np.trace(A @ B)
                + (one @ A @ one) * (one @ B @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (one @ A @ B @ one)
            ) / (n * (n - 3))

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    Y = X @ rng.normal(size=(6, 5)) + rng.normal(size=(40, 5))
    return X, Y


@pytest.mark.parametrize("debiased", [True, False])
def test_subset_cka_equals_direct_computation(pair, debiased):
    X, Y = pair
    Xc = X - X.mean(0)
    idx = half_samples(40, 8, np.random.default_rng(1))
    got = gram_cka_subsets(Xc @ Xc.T, Y @ Y.T, idx, debiased=debiased)
    want = [plain_cka(X[r], Y[r], debiased=debiased) for r in idx]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_subset_cka_works_for_any_kernel(pair):
    X, Y = pair
    from scipy.spatial.distance import cdist

    K, L = np.exp(-cdist(X, X, "sqeuclidean") / 10), np.exp(-cdist(Y, Y, "sqeuclidean") / 10)
    idx = half_samples(40, 4, np.random.default_rng(2))
    got = gram_cka_subsets(K, L, idx, debiased=False)
    for g, r in zip(got, idx, strict=True):
        Ks, Ls = K[np.ix_(r, r)], L[np.ix_(r, r)]
        H = np.eye(len(r)) - 1 / len(r)
        want = np.trace(Ks @ H @ Ls @ H) / np.sqrt(
            np.trace(Ks @ H @ Ks @ H) * np.trace(Ls @ H @ Ls @ H)
        )
        assert g == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("debiased", [True, False])
def test_permuted_cka_equals_shuffled_pairing(pair, debiased):
    from repdrift.metrics.kernels import center_gram, u_center_gram

    X, Y = pair
    centre = u_center_gram if debiased else center_gram
    perms = permutations(40, 6, np.random.default_rng(3))
    got = gram_cka_permuted(centre(X @ X.T), centre(Y @ Y.T), perms)
    want = [plain_cka(X, Y[p], debiased=debiased) for p in perms]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_stacked_grams_equal_one_at_a_time(pair):
    from repdrift.metrics.kernels import u_center_gram

    X, Y = pair
    Z = np.random.default_rng(11).normal(size=X.shape)
    K = X @ X.T
    Ls = np.stack([Y @ Y.T, Z @ Z.T])
    idx = half_samples(40, 5, np.random.default_rng(12))
    stacked = gram_cka_subsets(K, Ls, idx, debiased=True)
    assert stacked.shape == (2, 5)
    np.testing.assert_array_equal(stacked[1], gram_cka_subsets(K, Ls[1], idx, debiased=True))
    perms = permutations(40, 7, np.random.default_rng(13))
    Us = np.stack([u_center_gram(L) for L in Ls])
    null = gram_cka_permuted(u_center_gram(K), Us, perms)
    assert null.shape == (2, 7)
    np.testing.assert_allclose(null[0], gram_cka_permuted(u_center_gram(K), Us[0], perms))
