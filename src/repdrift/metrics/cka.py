"""Centred kernel alignment: ``cka_linear``, ``cka_debiased``, ``cka_rbf``, ``cka_minibatch``.

``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` (Kornblith et al. 2019).

- ``cka_linear``: linear kernel, biased HSIC (Gretton et al. 2005). In [0, 1].
- ``cka_debiased``: linear kernel, unbiased HSIC U-statistic (Song et al. 2012), as used by
  Nguyen et al. (2021) and Davari et al. (2023). Can be slightly negative; ≈ 0 for
  independent representations even when d ≫ n, where biased CKA is inflated. n >= 4.
- ``cka_rbf``: Gaussian kernel with bandwidth ``sigma`` * median distance
  (see :func:`repdrift.metrics.kernels.gram_rbf`), biased HSIC. Default ``sigma = 1.0``
  follows the default ``threshold`` of Kornblith et al.'s reference code; their paper also
  reports 0.2, 0.4 and 0.8.
- ``cka_minibatch``: Nguyen et al. (2021): unbiased HSIC averaged over consecutive
  minibatches of ``batch_size`` rows (in the given order), then normalised. Not equal to
  ``cka_debiased`` on the full set, by design.

Linear CKA is computed from features (``||Xcᵀ Yc||²_F``, cost n·d1·d2) or from Grams
(cost n²·(d1 + d2)), whichever is cheaper; both are exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import (
    Layers,
    center_or_refuse,
    is_torch,
    mean64,
    refuse_zero_variance,
    zero_variance,
)
from repdrift.metrics._pairwise import stacked_inner_products
from repdrift.metrics.kernels import (
    center_features,
    center_gram,
    gram_rbf,
    u_center_gram,
    u_center_gram_inplace,
)

# Above this many samples a Gram (n² float64) is too large to hold: use the feature route.
GRAM_MAX_N = 20_000
# The Gram route of matrix() keeps La Grams of n² float64; beyond this it uses features.
GRAM_ROUTE_MAX_BYTES = 3 * 2**30


def _sqnorm(M: Any) -> float:
    flat = M.reshape(-1)
    return float(flat @ flat)


def _row_sq(Xc: Any) -> Any:
    return (Xc * Xc).sum(axis=1)


def debiased_numerator(cross_sq: float, kx: Any, ky: Any, n: int) -> float:
    """n(n-3)·HSIC₁ from features, given column-centred X, Y.

    With ``K = Xc Xcᵀ`` (so ``K 1 = 0``) and ``kx = diag(K)``, ``ky = diag(L)``, the Song et
    al. estimator's numerator reduces to
    ``||XcᵀYc||² - kxᵀky + (Σkx)(Σky)/((n-1)(n-2)) - 2 kxᵀky/(n-2)``.

    Parameters
    ----------
    cross_sq : float
        ``||Xcᵀ Yc||²_F``.
    kx, ky : (n,) float64
        Squared row norms of the centred X and Y.
    n : int
    """
    kl = float(kx @ ky)
    cross_sums = float(kx.sum()) * float(ky.sum()) / ((n - 1) * (n - 2))
    return cross_sq - kl + cross_sums - 2.0 * kl / (n - 2)


def _use_features(n: int, dims_a: Sequence[int], dims_b: Sequence[int]) -> bool:
    """Whether the feature route is cheaper (or the only feasible one) for these shapes."""
    if n > GRAM_MAX_N:
        return True
    sa, sb = sum(dims_a), sum(dims_b)
    gram = n * n * (sa + sb) + len(dims_a) * len(dims_b) * n * n
    feat = n * (sum(d * d for d in dims_a) + sum(d * d for d in dims_b) + sa * sb)
    return feat < gram


# ---------------------------------------------------------------- one pair


def cka_linear(X: Any, Y: Any) -> float:
    """Linear CKA with the biased HSIC (Kornblith et al. 2019).

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64
        Rows paired by sample.

    Returns
    -------
    float in [0, 1]; 1 iff the centred Grams are proportional.
    """
    n = X.shape[0]
    Xc = center_or_refuse(X, "X", "cka_linear")
    Yc = center_or_refuse(Y, "Y", "cka_linear")
    if _use_features(n, [X.shape[1]], [Y.shape[1]]):
        num = _sqnorm(Xc.T @ Yc)
        return num / math.sqrt(_sqnorm(Xc.T @ Xc) * _sqnorm(Yc.T @ Yc))
    K = Xc @ Xc.T
    L = Yc @ Yc.T
    return _frob(K, L) / math.sqrt(_frob(K, K) * _frob(L, L))


def cka_debiased(X: Any, Y: Any) -> float:
    """Linear CKA with the unbiased HSIC of Song et al. (2012).

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64, n >= 4

    Returns
    -------
    float in [-1, 1], ≈ 0 for independent representations.
    """
    n = X.shape[0]
    Xc = center_or_refuse(X, "X", "cka_debiased")
    Yc = center_or_refuse(Y, "Y", "cka_debiased")
    if _use_features(n, [X.shape[1]], [Y.shape[1]]):
        kx, ky = _row_sq(Xc), _row_sq(Yc)
        xy = debiased_numerator(_sqnorm(Xc.T @ Yc), kx, ky, n)
        xx = debiased_numerator(_sqnorm(Xc.T @ Xc), kx, kx, n)
        yy = debiased_numerator(_sqnorm(Yc.T @ Yc), ky, ky, n)
    else:
        K = u_center_gram(Xc @ Xc.T)
        L = u_center_gram(Yc @ Yc.T)
        xy, xx, yy = _frob(K, L), _frob(K, K), _frob(L, L)
    return _ratio(xy, xx, yy, "cka_debiased")


def cka_rbf(X: Any, Y: Any, *, sigma: float = 1.0) -> float:
    """RBF-kernel CKA, biased HSIC, bandwidth ``sigma`` * median pairwise distance.

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64
    sigma : float
        Bandwidth as a multiple of the median distance (Kornblith's ``threshold``), > 0.

    Returns
    -------
    float in [0, 1].
    """
    K = _rbf_state(X, "X", sigma)
    L = _rbf_state(Y, "Y", sigma)
    return _ratio(_frob(K, L), _frob(K, K), _frob(L, L), "cka_rbf")


def cka_minibatch(X: Any, Y: Any, *, batch_size: int = 256) -> float:
    """Minibatch CKA of Nguyen et al. (2021).

    Rows are split in order into consecutive minibatches of ``batch_size``
    (see :func:`minibatch_slices`); the result is
    ``Σ_b HSIC₁(X_b, Y_b) / sqrt(Σ_b HSIC₁(X_b, X_b) · Σ_b HSIC₁(Y_b, Y_b))``.

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64, n >= 4
    batch_size : int
        Rows per minibatch, >= 4.
    """
    sx = _minibatch_state(X, "X", batch_size)
    sy = _minibatch_state(Y, "Y", batch_size)
    return _ratio(_frob(sx, sy), _frob(sx, sx), _frob(sy, sy), "cka_minibatch")


# ---------------------------------------------------------------- matrices


def cka_linear_matrix(layers_a: Layers, layers_b: Layers) -> np.ndarray:
    """(La, Lb) linear CKA between every pair of layers; each Gram computed once."""
    return _linear_matrix(layers_a, layers_b, debiased=False)


def cka_debiased_matrix(layers_a: Layers, layers_b: Layers) -> np.ndarray:
    """(La, Lb) debiased linear CKA; each U-centred Gram computed once."""
    return _linear_matrix(layers_a, layers_b, debiased=True)


def cka_rbf_matrix(layers_a: Layers, layers_b: Layers, *, sigma: float = 1.0) -> np.ndarray:
    """(La, Lb) RBF CKA; each centred RBF Gram computed once."""

    def state(layers: Layers, i: int, out: Any) -> None:
        out[:] = _rbf_state(layers[i], layers.name(i), sigma).reshape(-1)

    n = layers_a.n
    return _gram_matrix(layers_a, layers_b, state, n * n, "cka_rbf")


def cka_minibatch_matrix(
    layers_a: Layers, layers_b: Layers, *, batch_size: int = 256
) -> np.ndarray:
    """(La, Lb) minibatch CKA; each layer's per-batch U-centred Grams computed once."""
    slices = minibatch_slices(layers_a.n, batch_size)

    def state(layers: Layers, i: int, out: Any) -> None:
        out[:] = _minibatch_state(layers[i], layers.name(i), batch_size)

    length = sum((sl.stop - sl.start) ** 2 for sl in slices)
    return _gram_matrix(layers_a, layers_b, state, length, "cka_minibatch")


def _linear_matrix(layers_a: Layers, layers_b: Layers, *, debiased: bool) -> np.ndarray:
    name = "cka_debiased" if debiased else "cka_linear"
    n = layers_a.n
    same = layers_b is layers_a
    too_big = len(layers_a) * n * n * 8 > GRAM_ROUTE_MAX_BYTES
    if too_big or _use_features(n, layers_a.dims, layers_b.dims):
        return _feature_matrix(layers_a, layers_b, debiased=debiased, same=same)

    def state(layers: Layers, i: int, out: Any) -> None:
        # Centring converts float32 to float64 on the fly; the Gram is written in place.
        Xc = center_or_refuse(layers.raw(i), layers.name(i), name)
        G = out.reshape(n, n)
        _matmul_into(Xc, Xc.T, G)
        if debiased:
            u_center_gram_inplace(G)

    return _gram_matrix(layers_a, layers_b, state, n * n, name)


def _matmul_into(A: Any, B: Any, out: Any) -> None:
    if is_torch(A):
        import torch

        torch.matmul(A, B, out=out)
    else:
        np.matmul(A, B, out=out)


def _gram_matrix(
    layers_a: Layers, layers_b: Layers, state: Any, length: int, name: str
) -> np.ndarray:
    same = layers_b is layers_a
    cross, sq_a, sq_b = stacked_inner_products(layers_a, layers_b, state, length, same=same)
    _refuse_nonpositive(sq_a, "layers_a", name)
    _refuse_nonpositive(sq_b, "layers_b", name)
    return cross / np.sqrt(np.outer(sq_a, sq_b))


def _feature_matrix(
    layers_a: Layers, layers_b: Layers, *, debiased: bool, same: bool
) -> np.ndarray:
    """Per pair ``||Xaᵀ Xb||²``, for n large relative to d (e.g. token-level data).

    Means, row norms and self terms are computed once per layer; only two layers are held
    in float64 at a time (B is re-centred per pair, which costs n·d against the n·d²
    product), so memory stays O(n·d) whatever the number of layers.
    """
    name = "cka_debiased" if debiased else "cka_linear"
    n = layers_a.n

    def summarise(layers: Layers) -> tuple[list[Any], list[Any], np.ndarray]:
        means, norms, selfs = [], [], []
        for i in range(len(layers)):
            Xc = center_or_refuse(layers.raw(i), layers.name(i), name)
            k = _row_sq(Xc)
            means.append(mean64(layers.raw(i)))
            norms.append(k)
            selfs.append(_num(Xc, Xc, k, k, n, debiased))
        return means, norms, np.array(selfs)

    mean_a, k_a, sq_a = summarise(layers_a)
    mean_b, k_b, sq_b = (mean_a, k_a, sq_a) if same else summarise(layers_b)
    _refuse_nonpositive(sq_a, "layers_a", name)
    _refuse_nonpositive(sq_b, "layers_b", name)
    cross = np.empty((len(layers_a), len(layers_b)))
    for i in range(len(layers_a)):
        Xa = layers_a.raw(i) - mean_a[i]
        for j in range(len(layers_b)):
            if same and j < i:
                cross[i, j] = cross[j, i]
            elif same and j == i:
                cross[i, j] = sq_a[i]
            else:
                Xb = layers_b.raw(j) - mean_b[j]
                cross[i, j] = _num(Xa, Xb, k_a[i], k_b[j], n, debiased)
    return cross / np.sqrt(np.outer(sq_a, sq_b))


def _num(Xa: Any, Xb: Any, kx: Any, ky: Any, n: int, debiased: bool) -> float:
    s = _sqnorm(Xa.T @ Xb)
    return debiased_numerator(s, kx, ky, n) if debiased else s


# ---------------------------------------------------------------- states and helpers


def minibatch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive minibatches of ``batch_size`` rows covering all ``n`` rows in order.

    A trailing remainder of at least 4 rows is its own (smaller) minibatch; a remainder of
    1-3 rows, for which the unbiased HSIC is undefined, joins the previous minibatch, so no
    sample is dropped.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InputError(f"batch_size={batch_size!r}; expected an integer >= 4")
    if batch_size < 4:
        raise InputError(f"batch_size={batch_size}; the unbiased HSIC needs batches of >= 4 rows")
    if n < 4:
        raise InputError(f"cka_minibatch needs at least n = 4 samples; got n = {n}")
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 4:
        starts.pop()
    return [slice(s, starts[i + 1] if i + 1 < len(starts) else n) for i, s in enumerate(starts)]


def _minibatch_state(X: Any, label: str, batch_size: int) -> Any:
    """Concatenated, flattened ``Ũ(K_b) / sqrt(m_b (m_b - 3))`` over the minibatches of X.

    Inner products of two such states are ``Σ_b HSIC₁`` over minibatches.
    """
    slices = minibatch_slices(X.shape[0], batch_size)
    parts = []
    # Equal-sized leading batches go through one batched matmul.
    full = [s for s in slices if s.stop - s.start == batch_size]
    if full:
        m = batch_size
        stop = full[-1].stop
        Xb = X[:stop].reshape(len(full), m, X.shape[1])
        Xb = Xb - Xb.mean(axis=-2, keepdims=True)
        U = u_center_gram(Xb @ Xb.swapaxes(-1, -2))
        parts.append((U / math.sqrt(m * (m - 3))).reshape(-1))
    for s in slices[len(full) :]:
        m = s.stop - s.start
        Xc = center_features(X[s])
        parts.append((u_center_gram(Xc @ Xc.T) / math.sqrt(m * (m - 3))).reshape(-1))
    state = _concat(parts)
    if zero_variance(_frob(state, state), 0.0):
        refuse_zero_variance(label, "cka_minibatch", " (every minibatch is constant)")
    return state


def rbf_gram(X: Any, *, sigma: float = 1.0, label: str = "X") -> Any:
    """The (uncentred) RBF Gram of ``cka_rbf``: ``sigma`` checked, errors naming ``label``.

    Parameters
    ----------
    X : (n, d) float64
    sigma : float
        Bandwidth as a multiple of the median distance, > 0.
    label : str
        Name of ``X`` in error messages.

    Returns
    -------
    (n, n) float64; see :func:`repdrift.metrics.kernels.gram_rbf`.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)):
        raise InputError(f"sigma={sigma!r}; expected a positive number")
    try:
        return gram_rbf(X, float(sigma))
    except InputError as exc:
        raise InputError(f"{label}: {exc}") from exc


def _rbf_state(X: Any, label: str, sigma: float) -> Any:
    return center_gram(rbf_gram(X, sigma=sigma, label=label))


def _frob(A: Any, B: Any) -> float:
    return float(A.reshape(-1) @ B.reshape(-1))


def _ratio(xy: float, xx: float, yy: float, name: str) -> float:
    if not xx > 0:
        refuse_zero_variance("X", name)
    if not yy > 0:
        refuse_zero_variance("Y", name)
    return xy / math.sqrt(xx * yy)


def _refuse_nonpositive(sq: np.ndarray, label: str, name: str) -> None:
    bad = np.flatnonzero(~(sq > 0))
    if bad.size:
        refuse_zero_variance(f"{label}[{int(bad[0])}]", name)


def _concat(parts: list[Any]) -> Any:
    if is_torch(parts[0]):
        import torch

        return torch.cat(parts)
    return np.concatenate(parts)
