"""The joint path of the two linear CKAs (one centred Gram, one gather per shuffle for both),
the blocked permutation gather, and the kept replicates of the estimator not asked for: all
equal the plain reference CKA recomputed on every resample."""

from __future__ import annotations

import numpy as np
import pytest

from _reference_cka import plain_cka
from repdrift import metrics
from repdrift.analysis.stats import half_samples, permutations
from repdrift.errors import InputError
from repdrift.metrics import gram_replicates, resampling
from repdrift.metrics.gram_replicates import inverse_permutations, permuted_inner, subset_ckas
from repdrift.metrics.kernels import centered_gram, u_center_gram
from repdrift.metrics.procrustes import procrustes_matrix


def plain(X: np.ndarray, Y: np.ndarray, *, debiased: bool) -> float:
    """The plain reference on mean-centred features (CKA ignores translations): with an offset
    the uncentred textbook Gram loses digits the fast paths keep."""
    return plain_cka(X - X.mean(0), Y - Y.mean(0), debiased=debiased)


def _runs(seed: int, n: int = 48, d: int = 130, offset: float = 3.0):
    """d > n with an offset: diagonal-dominated Grams, the study's regime (d = 2048 > n = 750)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) + offset
    Ys = [X + s * rng.normal(size=(n, d)) for s in (0.5, 4.0)]
    return X, Ys


@pytest.fixture
def small_blocks(monkeypatch):
    """Uneven row blocks and several batches at test sizes (n = 48: blocks of 7, 4 per GEMM)."""
    monkeypatch.setattr(gram_replicates, "PERMUTED_ROWS_PER_BLOCK", 7)
    monkeypatch.setattr(gram_replicates, "PERMUTED_BATCH", 4)


@pytest.mark.parametrize("blocks", ["default", "small"])
def test_linear_cka_replicates_equal_the_plain_reference(request, blocks):
    if blocks == "small":
        request.getfixturevalue("small_blocks")
    X, Ys = _runs(0)
    rng = np.random.default_rng(1)
    idx, perms = half_samples(48, 9, rng), permutations(48, 11, rng)
    both = resampling.linear_cka_replicates(X, Ys, idx, perms)
    for debiased in (False, True):
        res = both[debiased]
        for j, Y in enumerate(Ys):
            assert res.values[j] == pytest.approx(plain(X, Y, debiased=debiased), abs=1e-12)
            want = [plain(X[r], Y[r], debiased=debiased) for r in idx]
            np.testing.assert_allclose(res.subsets[j], want, rtol=0, atol=1e-12)
            want = [plain(X, Y[p], debiased=debiased) for p in perms]
            np.testing.assert_allclose(res.null[j], want, rtol=0, atol=1e-12)


def test_one_estimator_alone_equals_both_together():
    X, Ys = _runs(2)
    rng = np.random.default_rng(3)
    idx, perms = half_samples(48, 5, rng), permutations(48, 6, rng)
    both = resampling.linear_cka_replicates(X, Ys, idx, perms)
    for debiased in (False, True):
        alone = resampling.linear_cka_replicates(X, Ys, idx, perms, (debiased,))[debiased]
        for part in ("values", "subsets", "null"):  # the same sums, grouped differently
            want = getattr(both[debiased], part)
            np.testing.assert_allclose(getattr(alone, part), want, rtol=0, atol=1e-15)


def test_subset_ckas_share_products_without_losing_digits():
    """The debiased sums are the biased ones minus the diagonal terms: same numbers as zeroing
    the diagonal first, even where the diagonal dominates (offset 50, d > n)."""
    X, Ys = _runs(4, offset=50.0)
    K, Ls = centered_gram(X), np.stack([centered_gram(Y) for Y in Ys])
    idx = half_samples(48, 7, np.random.default_rng(5))
    biased, debiased = subset_ckas(K, Ls, idx, (False, True))
    for j, Y in enumerate(Ys):
        for b, r in enumerate(idx):
            assert biased[j, b] == pytest.approx(plain(X[r], Y[r], debiased=False), abs=1e-12)
            assert debiased[j, b] == pytest.approx(plain(X[r], Y[r], debiased=True), abs=1e-12)


@pytest.mark.usefixtures("small_blocks")
def test_permuted_inner_equals_brute_force_for_several_grams():
    X, Ys = _runs(6)
    A = u_center_gram(centered_gram(X))
    Bs = np.stack([centered_gram(Y) for Y in Ys] + [u_center_gram(centered_gram(Ys[0]))])
    perms = permutations(48, 10, np.random.default_rng(7))
    got = permuted_inner(A, Bs, perms)
    assert got.shape == (3, 10)
    for r, B in enumerate(Bs):
        want = [np.sum(A * B[np.ix_(p, p)]) for p in perms]
        np.testing.assert_allclose(got[r], want, rtol=1e-13, atol=0)
    torch = pytest.importorskip("torch")
    on_torch = permuted_inner(torch.from_numpy(A), torch.from_numpy(Bs), perms)
    np.testing.assert_allclose(on_torch.numpy(), got, rtol=1e-12, atol=0)


def test_inverse_permutations_refuse_what_is_not_a_permutation():
    perms = permutations(6, 3, np.random.default_rng(8))
    inverse = inverse_permutations(perms, 6)
    assert all((p[q] == np.arange(6)).all() for p, q in zip(perms, inverse, strict=True))
    assert inverse_permutations(np.empty((0, 6), dtype=int), 6).shape == (0, 6)
    for bad in ([[0, 1, 2, 3, 4, 4]], [[0, 1, 2, 3, 4, 6]], [[-1, 0, 1, 2, 3, 4]], [[0, 1, 2]]):
        with pytest.raises(InputError, match="perms"):
            inverse_permutations(np.array(bad), 6)


def test_resample_many_computes_the_linear_ckas_together_as_resample_does_apart():
    X, Ys = _runs(9)
    rng = np.random.default_rng(10)
    idx, perms = half_samples(48, 5, rng), permutations(48, 6, rng)
    names = ["cka_debiased", "cosine", "cka_linear", "procrustes"]
    many = metrics.resample_many(names, X, Ys, idx=idx, perms=perms,
                                 resampled=["cka_debiased", "cka_linear", "cosine"])  # fmt: skip
    assert set(many) == set(names)
    for name in ("cka_debiased", "cka_linear", "cosine"):
        alone = metrics.resample(name, X, Ys, idx=idx, perms=perms)
        for got, want in ((many[name].values, alone.values), (many[name].subsets, alone.subsets),
                          (many[name].null, alone.null)):  # fmt: skip
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # not resampled: values only, equal to compute
    assert many["procrustes"].subsets is None and many["procrustes"].null is None
    for j, Y in enumerate(Ys):
        assert many["procrustes"].values[j] == pytest.approx(metrics.compute("procrustes", X, Y), abs=1e-12)  # fmt: skip
        assert many["cka_linear"].values[j] == pytest.approx(plain(X, Y, debiased=False), abs=1e-12)


def test_resample_many_resamples_only_what_is_asked():
    X, Ys = _runs(12)
    perms = permutations(48, 4, np.random.default_rng(13))
    many = metrics.resample_many(["cka_linear", "cka_debiased"], X, Ys, perms=perms,
                                 resampled=["cka_debiased"])  # fmt: skip
    assert many["cka_linear"].null is None and many["cka_debiased"].null.shape == (len(Ys), 4)
    want = metrics.resample("cka_debiased", X, Ys, perms=perms)
    np.testing.assert_allclose(many["cka_debiased"].null, want.null, rtol=0, atol=1e-12)


def test_procrustes_self_comparison_matrix_equals_compute():
    X, Ys = _runs(14, n=30, d=40)
    layers = [X, *Ys]
    M = procrustes_matrix(layers, layers)
    for i, A in enumerate(layers):
        for j, B in enumerate(layers):
            assert M[i, j] == pytest.approx(metrics.compute("procrustes", A, B), abs=1e-12)
    np.testing.assert_array_equal(M, M.T)
