"""The resampling shortcuts (Gram for the CKA family, per-sample cosines for cosine) and their
torch path: replicates on subsets and under shuffled pairing equal
direct computation (moved here from tests/analysis/test_stats.py with the code)."""

from __future__ import annotations

import numpy as np
import pytest

from _reference_cka import plain_cka
from repdrift import metrics
from repdrift.analysis.stats import half_samples, permutations
from repdrift.errors import InputError
from repdrift.metrics import gram_replicates, resampling
from repdrift.metrics.resampling import gram_cka_permuted, gram_cka_subsets


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


# ---------------------------------------------------------------- cosine and devices

HOOKED = ["cka_linear", "cka_debiased", "cka_rbf", "cosine"]


def _runs(seed: int = 0, n: int = 50, d: int = 7, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + offset
    Ys = [X + s * rng.normal(size=(n, d)) for s in (0.3, 1.0, 3.0)]
    return X, Ys


@pytest.mark.parametrize("offset", [0.0, 5.0])
def test_cosine_hook_equals_recomputing_every_replicate(offset):
    """Half-samples as means of per-sample cosines and shuffles as gathers from one cross
    product matrix equal the metric recomputed on the resampled rows to 1e-12."""
    X, Ys = _runs(1, offset=offset)
    rng = np.random.default_rng(2)
    idx, perms = half_samples(50, 30, rng), permutations(50, 40, rng)
    fast = resampling.CosineResampling().replicates(X, Ys, idx, perms)
    slow = resampling.by_recomputing(
        lambda A, B: metrics.compute("cosine", A, B), X, Ys, idx, perms
    )
    assert fast.subsets.shape == (3, 30) and fast.null.shape == (3, 40)
    for got, want in zip(
        (fast.values, fast.subsets, fast.null), (slow.values, slow.subsets, slow.null), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # and against a plain per-row formula written here
    unit = lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)  # noqa: E731
    for j, Y in enumerate(Ys):
        for k, p in enumerate(perms):
            plain = np.mean([unit(X)[i] @ unit(Y)[p[i]] for i in range(50)])
            assert fast.null[j, k] == pytest.approx(plain, abs=1e-12)


def test_cosine_null_without_the_cross_product_matrix(monkeypatch):
    """Above COSINE_MATRIX_MAX_N each shuffle is read from the rows; same numbers."""
    X, Ys = _runs(3)
    perms = permutations(50, 6, np.random.default_rng(4))
    want = resampling.CosineResampling().replicates(X, Ys, None, perms).null
    monkeypatch.setattr(resampling, "COSINE_MATRIX_MAX_N", 10)
    got = resampling.CosineResampling().replicates(X, Ys, None, perms).null
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)


def test_cosine_hook_refuses_what_cosine_refuses():
    X, Ys = _runs(5)
    with pytest.raises(InputError, match="equal widths"):
        metrics.resample(
            "cosine", X, [Ys[0][:, :3]], perms=permutations(50, 2, np.random.default_rng(0))
        )
    zero = Ys[0].copy()
    zero[4] = 0.0
    with pytest.raises(InputError, match="all-zero row"):
        metrics.resample("cosine", X, [zero])


@pytest.mark.parametrize("name", [*HOOKED, "cka_minibatch", "procrustes"])
def test_torch_path_equals_numpy(name):
    """device="cpu" runs the Grams / GEMMs / gathers in torch float64: same as numpy to 1e-10."""
    X, Ys = _runs(6, n=60, d=9, offset=1.0)
    rng = np.random.default_rng(7)
    idx, perms = half_samples(60, 12, rng), permutations(60, 11, rng)
    ref = metrics.resample(name, X, Ys, idx=idx, perms=perms)
    got = metrics.resample(name, X, Ys, idx=idx, perms=perms, device="cpu")
    for a, b in zip(
        (got.values, got.subsets, got.null), (ref.values, ref.subsets, ref.null), strict=True
    ):
        assert isinstance(a, np.ndarray) and a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", HOOKED)
def test_torch_gathers_in_several_chunks(monkeypatch, name):
    X, Ys = _runs(8, n=40)
    perms = permutations(40, 9, np.random.default_rng(9))
    ref = metrics.resample(name, X, Ys, perms=perms)
    monkeypatch.setattr(gram_replicates, "TORCH_GATHER_BYTES", 3 * 8 * 40 * 40)  # 3 shuffles at once
    got = metrics.resample(name, X, Ys, perms=perms, device="cpu")
    np.testing.assert_allclose(got.null, ref.null, rtol=0, atol=1e-10)


def test_gram_functions_take_torch_tensors():
    torch = pytest.importorskip("torch")
    from repdrift.metrics.kernels import center_gram, u_center_gram

    X, Ys = _runs(10, n=30)
    K, Ls = X @ X.T, np.stack([Y @ Y.T for Y in Ys])
    idx = half_samples(30, 5, np.random.default_rng(11))
    perms = permutations(30, 4, np.random.default_rng(12))
    for debiased, centre in ((True, u_center_gram), (False, center_gram)):
        got = gram_cka_subsets(torch.from_numpy(K), torch.from_numpy(Ls), idx, debiased=debiased)
        assert torch.is_tensor(got) and got.shape == (3, 5)
        want = gram_cka_subsets(K, Ls, idx, debiased=debiased)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)
        Kc, Lcs = centre(K), centre(Ls)
        got = gram_cka_permuted(torch.from_numpy(Kc), torch.from_numpy(Lcs[0]), perms)
        assert got.shape == (4,)
        np.testing.assert_allclose(got.numpy(), gram_cka_permuted(Kc, Lcs[0], perms), atol=1e-12)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", HOOKED)
def test_cuda_path_equals_numpy(name):  # pragma: no cover - runs where a GPU is present
    X, Ys = _runs(13, n=200, d=64)
    rng = np.random.default_rng(14)
    idx, perms = half_samples(200, 50, rng), permutations(200, 60, rng)
    ref = metrics.resample(name, X, Ys, idx=idx, perms=perms)
    got = metrics.resample(name, X, Ys, idx=idx, perms=perms, device="cuda")
    for a, b in zip(
        (got.values, got.subsets, got.null), (ref.values, ref.subsets, ref.null), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)


def test_resample_with_no_representations():
    X, _ = _runs(15)
    res = metrics.resample("cosine", X, [], idx=half_samples(50, 3, np.random.default_rng(0)))
    assert res.values.shape == (0,) and res.subsets.shape == (0, 3) and res.null is None
