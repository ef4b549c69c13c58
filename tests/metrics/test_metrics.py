"""Registry behaviour and mathematical properties of every similarity metric.

Reference values against plain implementations live in test_metrics_reference.py, the
streaming accumulators in test_metrics_streaming.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repdrift import metrics
from repdrift.errors import InputError

REQUIRED = {
    "cka_linear",
    "cka_debiased",
    "cka_rbf",
    "cka_minibatch",
    "cosine",
    "procrustes",
    "rsa",
    "mutual_knn",
    "svcca",
    "pwcca",
}
SYMMETRIC = sorted(n for n in metrics.names() if metrics.get(n).symmetric)
N, D = 60, 12  # n > d so the CCA family is well posed


def _pair(seed: int = 0, n: int = N, d1: int = D, d2: int = D) -> tuple[np.ndarray, np.ndarray]:
    """Related but not identical representations: Y = nonlinear(X W) + noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d1))
    Y = np.tanh(X @ rng.standard_normal((d1, d2))) + 0.5 * rng.standard_normal((n, d2))
    return X, Y


def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# ---------------------------------------------------------------- registry


def test_names_cover_the_contract() -> None:
    assert REQUIRED <= set(metrics.names())
    assert metrics.names() == sorted(metrics.names())


def test_unknown_name_suggests_close_names() -> None:
    X, Y = _pair()
    with pytest.raises(InputError, match=r"unknown metric 'cka_linaer'.*did you mean 'cka_linear'"):
        metrics.compute("cka_linaer", X, Y)
    with pytest.raises(InputError, match=r"Known metrics: .*procrustes"):
        metrics.matrix("zzz", [X], [Y])


def test_unknown_param_is_named() -> None:
    X, Y = _pair()
    with pytest.raises(InputError, match=r"cka_rbf got unknown parameter 'sigam'.*'sigma'"):
        metrics.compute("cka_rbf", X, Y, sigam=0.5)
    with pytest.raises(InputError, match=r"cka_linear got unknown parameter 'k'.*no parameters"):
        metrics.compute("cka_linear", X, Y, k=3)


def test_params_are_declared() -> None:
    assert metrics.get("cka_rbf").params == {"sigma": 1.0}
    assert metrics.get("mutual_knn").params == {"k": 10, "metric": "cosine"}
    assert metrics.get("svcca").params == {"keep_variance": 0.99}
    assert metrics.get("cka_minibatch").params == {"batch_size": 256}


# ---------------------------------------------------------------- input errors


def test_refuses_non_2d() -> None:
    X, _ = _pair()
    with pytest.raises(InputError, match=r"X has shape \(60,\); expected 2-D.*X\[:, None\]"):
        metrics.compute("cka_linear", X[:, 0], X)


def test_refuses_n_mismatch() -> None:
    X, Y = _pair()
    with pytest.raises(InputError, match="X has 60 rows and Y has 59"):
        metrics.compute("cka_linear", X, Y[:-1])
    with pytest.raises(InputError, match=r"layers_a\[1\] has 59 rows"):
        metrics.matrix("cka_linear", [X, X[:-1]], [Y])
    with pytest.raises(InputError, match="layers_a hold n=60 samples and layers_b n=59"):
        metrics.matrix("cka_linear", [X], [Y[:-1]])


def test_refuses_nan_and_inf_with_counts() -> None:
    X, Y = _pair()
    Y = Y.copy()
    Y[0, 0] = np.nan
    Y[3, 1] = np.nan
    Y[5, 2] = np.inf
    with pytest.raises(InputError, match=r"Y \(shape \(60, 12\)\) contains 2 NaN and 1 Inf"):
        metrics.compute("cka_linear", X, Y)
    with pytest.raises(InputError, match=r"layers_b\[0\].*2 NaN and 1 Inf"):
        metrics.matrix("procrustes", [X], [torch.from_numpy(Y)])


def test_refuses_too_few_samples_for_debiased() -> None:
    X, Y = _pair(n=3)
    with pytest.raises(InputError, match="cka_debiased needs at least n = 4 samples; got n = 3"):
        metrics.compute("cka_debiased", X, Y)
    assert np.isfinite(metrics.compute("cka_debiased", *_pair(n=4)))


def test_cosine_refuses_width_mismatch() -> None:
    X, Y = _pair(d2=D + 1)
    with pytest.raises(InputError, match="needs equal widths; X has d=12 and Y has d=13"):
        metrics.compute("cosine", X, Y)
    with pytest.raises(InputError, match="equal widths"):
        metrics.matrix("cosine", [X], [X, Y])


@pytest.mark.parametrize("name", sorted(REQUIRED | {"cca"}))
def test_refuses_zero_variance(name: str) -> None:
    X, _ = _pair()
    # identical rows; for cosine (defined for equal rows) all-zero rows
    const = np.zeros((N, D)) if name == "cosine" else np.full((N, D), 3.0)
    with pytest.raises(InputError, match="undefined"):
        metrics.compute(name, X, const)


def test_param_values_are_checked() -> None:
    X, Y = _pair()
    with pytest.raises(InputError, match="sigma=-1"):
        metrics.compute("cka_rbf", X, Y, sigma=-1)
    with pytest.raises(InputError, match="k=59 with n=60"):
        metrics.compute("mutual_knn", X, Y, k=59)
    with pytest.raises(InputError, match="batch_size=2"):
        metrics.compute("cka_minibatch", X, Y, batch_size=2)
    with pytest.raises(InputError, match="keep_variance=0"):
        metrics.compute("svcca", X, Y, keep_variance=0)
    with pytest.raises(InputError, match="rdm='cosine'"):
        metrics.compute("rsa", X, Y, rdm="cosine")
    with pytest.raises(InputError, match="weights_from='z'"):
        metrics.compute("pwcca", X, Y, weights_from="z")


# ---------------------------------------------------------------- properties


@pytest.mark.parametrize("name", metrics.names())
def test_identity_gives_the_upper_bound(name: str) -> None:
    X, _ = _pair(1)
    assert metrics.compute(name, X, X) == pytest.approx(metrics.get(name).bounds[1], abs=1e-12)


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric(name: str) -> None:
    X, Y = _pair(2, d2=D if name == "cosine" else D - 3)
    assert metrics.compute(name, X, Y) == pytest.approx(metrics.compute(name, Y, X), abs=1e-12)


def test_pwcca_is_not_symmetric_but_weights_from_y_swaps() -> None:
    X, Y = _pair(3, d2=D - 4)
    xy = metrics.compute("pwcca", X, Y)
    assert xy != pytest.approx(metrics.compute("pwcca", Y, X), abs=1e-6)
    assert metrics.compute("pwcca", Y, X, weights_from="y") == pytest.approx(xy, abs=1e-12)
    # the reference code's rule: the side with fewer units (Y here) gives the weights
    assert metrics.compute("pwcca", X, Y, weights_from="smaller") == pytest.approx(
        metrics.compute("pwcca", Y, X), abs=1e-12
    )


@pytest.mark.parametrize("name", metrics.names())
@pytest.mark.parametrize("seed", [4, 5])
def test_within_bounds(name: str, seed: int) -> None:
    X, Y = _pair(seed)
    lo, hi = metrics.get(name).bounds
    assert lo - 1e-12 <= metrics.compute(name, X, Y) <= hi + 1e-12


def _orth(Y: np.ndarray) -> np.ndarray:
    return Y @ _orthogonal(Y.shape[1], 7)


def _scale(Y: np.ndarray) -> np.ndarray:
    return 3.7 * Y


def _shift(Y: np.ndarray) -> np.ndarray:
    return Y + np.random.default_rng(8).standard_normal(Y.shape[1]) * 5.0


def _invertible(Y: np.ndarray) -> np.ndarray:
    A = np.random.default_rng(9).standard_normal((Y.shape[1], Y.shape[1])) + 3 * np.eye(Y.shape[1])
    return Y @ A


def _permute_flip(Y: np.ndarray) -> np.ndarray:
    perm = np.random.default_rng(10).permutation(Y.shape[1])
    return Y[:, perm] * np.where(np.arange(Y.shape[1]) % 2, -1.0, 1.0)


INVARIANT = {
    "cka_linear": [_orth, _scale, _shift, _permute_flip],
    "cka_debiased": [_orth, _scale, _shift, _permute_flip],
    "cka_rbf": [_orth, _scale, _shift, _permute_flip],
    "cka_minibatch": [_orth, _scale, _shift, _permute_flip],
    "procrustes": [_orth, _scale, _shift, _permute_flip],
    "cca": [_orth, _scale, _shift, _invertible],
    "svcca": [_orth, _scale, _shift],
    "rsa": [_scale],
    "mutual_knn": [_orth, _scale, _permute_flip],
}


@pytest.mark.parametrize(
    ("name", "transform"),
    [(n, t) for n, ts in INVARIANT.items() for t in ts],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_invariance(name: str, transform) -> None:
    X, Y = _pair(11)
    base = metrics.compute(name, X, Y)
    assert metrics.compute(name, X, transform(Y)) == pytest.approx(base, abs=1e-9)
    if metrics.get(name).symmetric:
        assert metrics.compute(name, transform(X), Y) == pytest.approx(base, abs=1e-9)


@pytest.mark.parametrize("transform", [_orth, _scale, _shift, _invertible])
def test_pwcca_invariant_to_maps_of_the_unweighted_side(transform) -> None:
    X, Y = _pair(12)
    base = metrics.compute("pwcca", X, Y)
    assert metrics.compute("pwcca", X, transform(Y)) == pytest.approx(base, abs=1e-9)
    # weighting side: translation, scale, unit permutation and sign flips
    for t in (_scale, _shift, _permute_flip):
        assert metrics.compute("pwcca", t(X), Y) == pytest.approx(base, abs=1e-9)


def test_svcca_with_full_variance_is_cca_and_invariant_to_invertible_maps() -> None:
    X, Y = _pair(13)
    full = metrics.compute("svcca", X, Y, keep_variance=1.0)
    assert full == pytest.approx(metrics.compute("cca", X, Y), abs=1e-12)
    assert metrics.compute("svcca", X, _invertible(Y), keep_variance=1.0) == pytest.approx(
        full, abs=1e-9
    )


def test_rsa_euclidean_and_knn_euclidean_are_rigid_invariant() -> None:
    X, Y = _pair(14)
    for name, params in (("rsa", {"rdm": "euclidean"}), ("mutual_knn", {"metric": "euclidean"})):
        base = metrics.compute(name, X, Y, **params)
        for t in (_orth, _scale, _shift):
            assert metrics.compute(name, X, t(Y), **params) == pytest.approx(base, abs=1e-9)


def test_cosine_invariant_to_a_shared_rotation_and_row_scaling() -> None:
    X, Y = _pair(15)
    Q = _orthogonal(D, 16)
    base = metrics.compute("cosine", X, Y)
    assert metrics.compute("cosine", X @ Q, Y @ Q) == pytest.approx(base, abs=1e-12)
    s = np.random.default_rng(17).uniform(0.1, 10, size=(N, 1))
    assert metrics.compute("cosine", X * s, Y) == pytest.approx(base, abs=1e-12)


def test_debiased_cka_removes_the_high_dimensional_bias() -> None:
    # Independent Gaussians with d >> n: the biased estimator reports ~0.91 similarity
    # (measured over seeds 0-4), the unbiased one ~0.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 1000))
    Y = rng.standard_normal((100, 1000))
    assert metrics.compute("cka_linear", X, Y) > 0.8
    assert abs(metrics.compute("cka_debiased", X, Y)) < 0.05


def test_cka_detects_a_planted_relation() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 50))
    related = X @ rng.standard_normal((50, 40))
    unrelated = rng.standard_normal((200, 40))
    for name in ("cka_linear", "cka_debiased", "cka_rbf", "procrustes", "rsa", "mutual_knn"):
        assert metrics.compute(name, X, related) > metrics.compute(name, X, unrelated) + 0.2, name


# ---------------------------------------------------------------- matrix and backends


def _layers(seed: int, widths: list[int], n: int = N) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 8))
    out = []
    for d in widths:  # shared structure across layers so entries are not all ~equal
        out.append(np.tanh(base @ rng.standard_normal((8, d))) + 0.3 * rng.standard_normal((n, d)))
    return out


PARAMS = {"cka_minibatch": {"batch_size": 16}, "mutual_knn": {"k": 5}}


@pytest.mark.parametrize("name", metrics.names())
def test_matrix_equals_per_pair_compute(name: str) -> None:
    widths_a, widths_b = ([D] * 3, [D] * 2) if name == "cosine" else ([D, 5, 9], [7, D])
    la, lb = _layers(20, widths_a), _layers(21, widths_b)
    p = PARAMS.get(name, {})
    M = metrics.matrix(name, la, lb, **p)
    assert M.shape == (3, 2) and M.dtype == np.float64
    ref = np.array([[metrics.compute(name, a, b, **p) for b in lb] for a in la])
    np.testing.assert_allclose(M, ref, rtol=0, atol=1e-12)
    S = metrics.matrix(name, la, la, **p)  # same object: self-comparison path
    ref_s = np.array([[metrics.compute(name, a, b, **p) for b in la] for a in la])
    np.testing.assert_allclose(S, ref_s, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["cka_linear", "cka_debiased"])
def test_linear_cka_matrix_feature_route_equals_gram_route(name: str) -> None:
    # n >> d picks the feature route; compare against explicit centred-Gram alignment.
    la, lb = _layers(22, [6, 4], n=400), _layers(23, [5], n=400)
    M = metrics.matrix(name, la, lb)
    centre = metrics.u_centered_gram if name == "cka_debiased" else metrics.centered_gram
    ref = [[metrics.kernel_alignment(centre(a), centre(b)) for b in lb] for a in la]
    np.testing.assert_allclose(M, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", metrics.names())
def test_torch_input_equals_numpy(name: str) -> None:
    X, Y = _pair(30)
    p = PARAMS.get(name, {})
    ref = metrics.compute(name, X, Y, **p)
    tx, ty = torch.from_numpy(X).float(), torch.from_numpy(Y).float()
    # float32 tensors are converted to float64: equal to numpy on the same float32 values
    ref32 = metrics.compute(name, X.astype(np.float32), Y.astype(np.float32), **p)
    assert metrics.compute(name, tx, ty, **p) == pytest.approx(ref32, abs=1e-12)
    t64 = (torch.from_numpy(X), torch.from_numpy(Y))
    assert metrics.compute(name, *t64, device="cpu", **p) == pytest.approx(ref, abs=1e-12)
    la = [X, X**2 if name == "cosine" else X[:, :5] ** 2]
    lb = [Y, np.sin(Y)]
    M = metrics.matrix(name, [torch.from_numpy(a) for a in la], lb, device="cpu", **p)
    np.testing.assert_allclose(M, metrics.matrix(name, la, lb, **p), rtol=0, atol=1e-12)


def test_matrix_refuses_a_single_array() -> None:
    X, _ = _pair()
    with pytest.raises(InputError, match="sequence"):
        metrics.matrix("cka_linear", X, [X])
    with pytest.raises(InputError, match="empty"):
        metrics.matrix("cka_linear", [], [X])


def test_bad_device_is_refused() -> None:
    X, Y = _pair()
    with pytest.raises(InputError, match="device='gpu0'"):
        metrics.compute("cka_linear", X, Y, device="gpu0")


@pytest.mark.parametrize("name", metrics.names())
def test_matrix_on_float32_layers_computes_in_float64(name: str) -> None:
    # float32 layers are converted lazily (per layer, or fused into centring); the result
    # must equal the matrix of the same values given as float64.
    widths = [D, D] if name == "cosine" else [D, 7]
    la = [a.astype(np.float32) for a in _layers(40, widths)]
    lb = [b.astype(np.float32) for b in _layers(41, widths)]
    p = PARAMS.get(name, {})
    ref = metrics.matrix(
        name, [a.astype(np.float64) for a in la], [b.astype(np.float64) for b in lb], **p
    )
    np.testing.assert_allclose(metrics.matrix(name, la, lb, **p), ref, rtol=0, atol=1e-12)
    tl = [torch.from_numpy(a) for a in la]
    np.testing.assert_allclose(metrics.matrix(name, tl, lb, **p), ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        metrics.matrix(name, tl, lb, device="cpu", **p), ref, rtol=0, atol=1e-12
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(
    "name", ["cka_linear", "cka_debiased", "cka_rbf", "cka_minibatch", "cosine"]
)
def test_cuda_matches_cpu(name: str) -> None:
    la, lb = _layers(50, [D, D]), _layers(51, [D, D])
    p = PARAMS.get(name, {})
    ref = metrics.matrix(name, la, lb, **p)
    np.testing.assert_allclose(
        metrics.matrix(name, la, lb, device="cuda", **p), ref, rtol=0, atol=1e-10
    )
    X, Y = _pair(52)
    assert metrics.compute(name, X, Y, device="cuda", **p) == pytest.approx(
        metrics.compute(name, X, Y, **p), abs=1e-10
    )
