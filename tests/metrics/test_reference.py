"""Every metric against a plain, obviously-correct implementation written here.

The references favour clarity over speed: explicit centring matrices, the U-statistic as a
sum over index tuples, scipy's Spearman / pdist / orthogonal Procrustes, covariance-whitening
CCA, loops over samples.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import scipy.stats

from repdrift import metrics


def _data(seed: int, n: int, d1: int, d2: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d1)) + 2.0  # non-zero mean exercises centring
    Y = np.tanh(X @ rng.standard_normal((d1, d2))) + 0.4 * rng.standard_normal((n, d2))
    return X, Y


# ---------------------------------------------------------------- CKA references


def ref_hsic_biased(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    return float(np.trace(K @ H @ L @ H)) / (n - 1) ** 2


def ref_hsic_unbiased_closed_form(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), Eq. (5)."""
    n = K.shape[0]
    Kt = K - np.diag(np.diag(K))
    Lt = L - np.diag(np.diag(L))
    one = np.ones(n)
    term = (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    )
    return float(term) / (n * (n - 3))


def ref_hsic_u_statistic(K: np.ndarray, L: np.ndarray) -> float:
    """The U-statistic by definition: average of h over ordered 4-tuples of distinct indices.

    h(s, t, u, v) = K_st L_st + K_st L_uv - 2 K_st L_su (Song et al. 2012, Theorem 2; the
    symmetrisation over the 4! orders is implied by summing over all ordered tuples).
    """
    n = K.shape[0]
    total = 0.0
    count = 0
    for s, t, u, v in itertools.permutations(range(n), 4):
        total += K[s, t] * L[s, t] + K[s, t] * L[u, v] - 2.0 * K[s, t] * L[s, u]
        count += 1
    return total / count


def ref_cka(X: np.ndarray, Y: np.ndarray, gram, hsic) -> float:
    K, L = gram(X), gram(Y)
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def linear(X: np.ndarray) -> np.ndarray:
    return X @ X.T


def kornblith_rbf(X: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """gram_rbf as written in Kornblith et al.'s reference notebook."""
    dot_products = X @ X.T
    sq_norms = np.diag(dot_products)
    sq_distances = -2 * dot_products + sq_norms[:, None] + sq_norms[None, :]
    sq_median_distance = np.median(sq_distances)
    return np.exp(-sq_distances / (2 * threshold**2 * sq_median_distance))


@pytest.mark.parametrize(("n", "d1", "d2"), [(40, 5, 7), (12, 30, 25)])
def test_cka_linear_matches_explicit_centring_matrix(n: int, d1: int, d2: int) -> None:
    X, Y = _data(0, n, d1, d2)
    ref = ref_cka(X, Y, linear, ref_hsic_biased)
    assert metrics.compute("cka_linear", X, Y) == pytest.approx(ref, abs=1e-12)
    assert metrics.hsic_biased(linear(X), linear(Y)) == pytest.approx(
        ref_hsic_biased(linear(X), linear(Y)), rel=1e-12
    )


@pytest.mark.parametrize(("d1", "d2"), [(3, 2), (20, 15)])
def test_cka_debiased_matches_the_u_statistic_by_definition(d1: int, d2: int) -> None:
    X, Y = _data(1, 7, d1, d2)  # 7·6·5·4 = 840 tuples
    ref = ref_cka(X, Y, linear, ref_hsic_u_statistic)
    assert metrics.compute("cka_debiased", X, Y) == pytest.approx(ref, abs=1e-12)
    K, L = linear(X), linear(Y)
    assert metrics.hsic_unbiased(K, L) == pytest.approx(ref_hsic_u_statistic(K, L), rel=1e-10)


@pytest.mark.parametrize(("n", "d1", "d2"), [(50, 6, 4), (30, 80, 60)])
def test_cka_debiased_matches_song_closed_form(n: int, d1: int, d2: int) -> None:
    X, Y = _data(2, n, d1, d2)
    ref = ref_cka(X, Y, linear, ref_hsic_unbiased_closed_form)
    assert metrics.compute("cka_debiased", X, Y) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("sigma", [0.4, 1.0])
def test_cka_rbf_matches_kornblith_gram_rbf(sigma: float) -> None:
    X, Y = _data(3, 36, 8, 5)
    ref = ref_cka(X, Y, lambda A: kornblith_rbf(A, sigma), ref_hsic_biased)
    assert metrics.compute("cka_rbf", X, Y, sigma=sigma) == pytest.approx(ref, abs=1e-12)


def test_cka_minibatch_matches_per_batch_loop() -> None:
    X, Y = _data(4, 50, 6, 9)
    # batch_size 16 on 50 rows: batches 0-15, 16-31 and 32-49 (a 2-row remainder joins the last)
    batches = [slice(0, 16), slice(16, 32), slice(32, 50)]
    assert metrics.minibatch_slices(50, 16) == batches
    hxy = sum(ref_hsic_unbiased_closed_form(linear(X[b]), linear(Y[b])) for b in batches)
    hxx = sum(ref_hsic_unbiased_closed_form(linear(X[b]), linear(X[b])) for b in batches)
    hyy = sum(ref_hsic_unbiased_closed_form(linear(Y[b]), linear(Y[b])) for b in batches)
    ref = hxy / np.sqrt(hxx * hyy)
    assert metrics.compute("cka_minibatch", X, Y, batch_size=16) == pytest.approx(ref, abs=1e-12)
    # a remainder of >= 4 rows is its own batch
    assert metrics.minibatch_slices(50, 20) == [slice(0, 20), slice(20, 40), slice(40, 50)]


def test_against_ckatorch_when_installed() -> None:
    torch = pytest.importorskip("torch")
    core = pytest.importorskip("ckatorch.core")
    X, Y = _data(5, 45, 10, 7)  # n² odd: torch's lower median equals numpy's median
    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    assert metrics.compute("cka_linear", X, Y) == pytest.approx(
        float(core.cka_base(tx, ty)), abs=1e-12
    )
    assert metrics.compute("cka_debiased", X, Y) == pytest.approx(
        float(core.cka_base(tx, ty, unbiased=True)), abs=1e-12
    )
    assert metrics.compute("cka_rbf", X, Y, sigma=0.8) == pytest.approx(
        float(core.cka_base(tx, ty, kernel="rbf", threshold=0.8)), abs=1e-12
    )


def test_centring_building_blocks() -> None:
    X, _ = _data(6, 20, 5, 5)
    K = metrics.gram_rbf(X, 0.7)
    H = np.eye(20) - 1 / 20
    np.testing.assert_allclose(metrics.center_gram(K), H @ K @ H, atol=1e-13)
    np.testing.assert_allclose(metrics.centered_gram(X), H @ linear(X) @ H, atol=1e-12)
    U = metrics.u_center_gram(K)
    # U-centred matrices have zero diagonal and zero row sums
    np.testing.assert_allclose(np.diag(U), 0.0, atol=1e-15)
    np.testing.assert_allclose(U.sum(axis=1), 0.0, atol=1e-13)
    np.testing.assert_allclose(
        metrics.u_centered_gram(X), metrics.u_center_gram(linear(X)), atol=1e-11
    )
    L = metrics.gram_linear(_data(7, 20, 5, 5)[1])
    assert metrics.hsic_unbiased(K, L) == pytest.approx(
        ref_hsic_unbiased_closed_form(K, L), rel=1e-10
    )


def test_permutation_commutes_with_centring() -> None:
    """The property repdrift.stats relies on: permute a centred Gram instead of recentring."""
    X, _ = _data(8, 15, 4, 4)
    perm = np.random.default_rng(0).permutation(15)
    K = linear(X)
    Kp = K[perm][:, perm]
    np.testing.assert_allclose(
        metrics.center_gram(Kp), metrics.center_gram(K)[perm][:, perm], atol=1e-12
    )
    np.testing.assert_allclose(
        metrics.u_center_gram(Kp), metrics.u_center_gram(K)[perm][:, perm], atol=1e-12
    )


# ---------------------------------------------------------------- other metrics


def _normalised(A: np.ndarray) -> np.ndarray:
    Ac = A - A.mean(axis=0)
    return Ac / np.linalg.norm(Ac)


@pytest.mark.parametrize(("n", "d"), [(40, 6), (10, 25)])
def test_procrustes_matches_scipy_orthogonal_procrustes(n: int, d: int) -> None:
    X, Y = _data(9, n, d, d)
    Xn, Yn = _normalised(X), _normalised(Y)
    R, scale = scipy.linalg.orthogonal_procrustes(Xn, Yn)
    sim = metrics.compute("procrustes", X, Y)
    assert sim == pytest.approx(scale, abs=1e-12)
    # documented convention: min_Q ||Xn Q - Yn||_F² = 2 - 2·similarity
    assert np.linalg.norm(Xn @ R - Yn) ** 2 == pytest.approx(2 - 2 * sim, abs=1e-12)


def test_procrustes_unequal_widths_zero_pads() -> None:
    X, Y = _data(10, 30, 8, 5)
    Xn, Yn = _normalised(X), _normalised(Y)
    Yp = np.hstack([Yn, np.zeros((30, 3))])
    assert metrics.compute("procrustes", X, Y) == pytest.approx(
        scipy.linalg.orthogonal_procrustes(Xn, Yp)[1], abs=1e-12
    )


@pytest.mark.parametrize("kind", ["correlation", "euclidean"])
def test_rsa_matches_scipy_spearman_of_pdist(kind: str) -> None:
    X, Y = _data(11, 30, 7, 9)
    ref = scipy.stats.spearmanr(
        scipy.spatial.distance.pdist(X, kind), scipy.spatial.distance.pdist(Y, kind)
    ).statistic
    assert metrics.compute("rsa", X, Y, rdm=kind) == pytest.approx(ref, abs=1e-12)


def test_rsa_handles_ties_like_spearmanr() -> None:
    rng = np.random.default_rng(12)
    X = rng.integers(0, 3, size=(20, 2)).astype(float)  # many tied distances
    Y = rng.standard_normal((20, 3))
    ref = scipy.stats.spearmanr(
        scipy.spatial.distance.pdist(X, "euclidean"), scipy.spatial.distance.pdist(Y, "euclidean")
    ).statistic
    assert metrics.compute("rsa", X, Y, rdm="euclidean") == pytest.approx(ref, abs=1e-12)


def ref_knn_sets(A: np.ndarray, k: int, metric: str) -> list[set[int]]:
    out = []
    for i in range(A.shape[0]):
        scored = []
        for j in range(A.shape[0]):
            if j == i:
                continue
            if metric == "cosine":
                score = A[i] @ A[j] / (np.linalg.norm(A[i]) * np.linalg.norm(A[j]))
            else:
                score = -np.linalg.norm(A[i] - A[j])
            scored.append((-score, j))
        out.append({j for _, j in sorted(scored)[:k]})
    return out


@pytest.mark.parametrize(("k", "metric"), [(3, "cosine"), (10, "cosine"), (5, "euclidean")])
def test_mutual_knn_matches_loops(k: int, metric: str) -> None:
    X, Y = _data(13, 40, 5, 6)
    nx, ny = ref_knn_sets(X, k, metric), ref_knn_sets(Y, k, metric)
    ref = np.mean([len(a & b) / k for a, b in zip(nx, ny, strict=True)])
    assert metrics.compute("mutual_knn", X, Y, k=k, metric=metric) == pytest.approx(ref, abs=1e-15)


def test_cosine_matches_row_loop() -> None:
    X, Y = _data(14, 25, 6, 6)
    ref = np.mean([X[i] @ Y[i] / (np.linalg.norm(X[i]) * np.linalg.norm(Y[i])) for i in range(25)])
    assert metrics.compute("cosine", X, Y) == pytest.approx(ref, abs=1e-14)


def inv_sqrt(S: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh(S)
    return (V / np.sqrt(w)) @ V.T


def ref_cca(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Textbook CCA by covariance whitening: correlations and X's canonical variates."""
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    Wx, Wy = inv_sqrt(Xc.T @ Xc), inv_sqrt(Yc.T @ Yc)
    U, rho, _ = np.linalg.svd(Wx @ (Xc.T @ Yc) @ Wy)
    k = min(X.shape[1], Y.shape[1])
    H = Xc @ Wx @ U[:, :k]  # unit-norm canonical variates of X
    return rho[:k], H, Xc


def test_cca_matches_covariance_whitening() -> None:
    X, Y = _data(15, 80, 6, 9)
    rho, _, _ = ref_cca(X, Y)
    assert metrics.compute("cca", X, Y) == pytest.approx(rho.mean(), abs=1e-10)


def test_svcca_matches_svd_then_cca() -> None:
    rng = np.random.default_rng(16)
    # decaying spectra so that 99% variance keeps only some directions
    X = rng.standard_normal((120, 20)) * np.geomspace(10, 0.01, 20)
    Y = np.tanh(X[:, :15]) * np.geomspace(5, 0.001, 15) + 0.01 * rng.standard_normal((120, 15))

    def reduce(A: np.ndarray) -> np.ndarray:
        Ac = A - A.mean(axis=0)
        U, s, _ = np.linalg.svd(Ac, full_matrices=False)
        keep = 0
        while np.sum(s[:keep] ** 2) / np.sum(s**2) < 0.99:
            keep += 1
        return U[:, :keep] * s[:keep]

    Xr, Yr = reduce(X), reduce(Y)
    assert 1 < Xr.shape[1] < 20 and 1 < Yr.shape[1] < 15
    rho, _, _ = ref_cca(Xr, Yr)
    assert metrics.compute("svcca", X, Y) == pytest.approx(rho.mean(), abs=1e-10)


def test_pwcca_matches_projection_weighting() -> None:
    X, Y = _data(17, 90, 5, 8)
    rho, H, Xc = ref_cca(X, Y)
    alpha = np.array([sum(abs(H[:, i] @ Xc[:, j]) for j in range(Xc.shape[1])) for i in range(5)])
    ref = float(alpha @ rho / alpha.sum())
    assert metrics.compute("pwcca", X, Y) == pytest.approx(ref, abs=1e-10)


def test_cca_rank_deficient_input_uses_the_column_space() -> None:
    X, Y = _data(18, 60, 4, 6)
    # duplicated and linearly dependent columns do not change the column space
    Xd = np.hstack([X, X[:, :2] * 3.0, X[:, [0]] - X[:, [1]]])
    assert metrics.compute("cca", Xd, Y) == pytest.approx(metrics.compute("cca", X, Y), abs=1e-10)
    assert metrics.compute("svcca", Xd, Y, keep_variance=1.0) == pytest.approx(
        metrics.compute("cca", X, Y), abs=1e-10
    )
