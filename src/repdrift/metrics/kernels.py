"""Gram matrices, centring and HSIC estimators: the building blocks of the CKA family.

Every function accepts float64 numpy arrays or float64 torch tensors and returns the same
kind (scalars come back as Python floats). They are pure and do no input validation beyond
shapes; the registry (:func:`repdrift.metrics.compute`) validates user input.

Conventions (n samples):

- ``K = X Xᵀ`` (linear) or the RBF kernel, shape (n, n).
- ``H = I - 11ᵀ/n``; :func:`center_gram` returns ``H K H``.
- :func:`u_center_gram` is the U-centring of Székely & Rizzo (2014): zero diagonal and
  ``<Ũ(K), Ũ(L)> / (n (n - 3))`` is the unbiased HSIC estimator of Song et al. (2012).
- Both centrings commute with permutations: ``center(P K Pᵀ) = P center(K) Pᵀ``, so a
  permutation test can permute a precomputed centred Gram instead of recomputing it.
  A bootstrap resample ``K[idx][:, idx]`` must be re-centred.

The estimators on many resamples at once, read off full-sample Grams, are in
:mod:`repdrift.metrics.gram_replicates`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import is_torch


def center_features(X: Any) -> Any:
    """Subtract the column means. ``X`` (n, d) → (n, d)."""
    return X - X.mean(axis=0, keepdims=True)


def gram_linear(X: Any) -> Any:
    """Linear Gram matrix ``X Xᵀ``. ``X`` (n, d) → (n, n)."""
    return X @ X.T


def centered_gram(X: Any) -> Any:
    """Centred linear Gram ``H X Xᵀ H``, computed as ``Xc Xcᵀ`` (exact, cheaper, more accurate).

    Parameters
    ----------
    X : (n, d) float64

    Returns
    -------
    (n, n) float64
    """
    Xc = center_features(X)
    return Xc @ Xc.T


def u_centered_gram(X: Any) -> Any:
    """U-centred linear Gram of ``X`` (n, d) → (n, n); see :func:`u_center_gram`.

    The features are mean-centred first: U-centring is invariant to adding row/column
    constants to ``K``, so this changes nothing but the rounding error.
    """
    return u_center_gram(centered_gram(X))


def gram_rbf(X: Any, sigma: float = 1.0) -> Any:
    """Gaussian RBF Gram with Kornblith et al.'s median-heuristic bandwidth.

    ``K_ij = exp(-||x_i - x_j||² / (2 sigma² m))`` where ``m`` is the median of the squared
    distances over all n² entries (the zero diagonal included), exactly as ``gram_rbf`` in
    Kornblith et al.'s reference code (their ``threshold`` is our ``sigma``). The kernel
    width is therefore ``sigma * sqrt(m)``, i.e. ``sigma`` times the median distance.

    Parameters
    ----------
    X : (n, d) float64
    sigma : float
        Bandwidth as a multiple of the median distance, > 0.

    Returns
    -------
    (n, n) float64
    """
    if not sigma > 0:
        raise InputError(f"sigma={sigma!r}; expected a bandwidth multiple > 0")
    sq = squared_distances(X)
    med = _median(sq)
    if not med > 0:
        raise InputError(
            "the median squared pairwise distance is 0 (at least half of all row pairs are "
            "identical), so the RBF bandwidth sigma * median distance is undefined"
        )
    return (
        (sq * (-1.0 / (2.0 * sigma * sigma * med))).exp()
        if is_torch(X)
        else np.exp(sq * (-1.0 / (2.0 * sigma * sigma * med)))
    )


def squared_distances(X: Any) -> Any:
    """Squared Euclidean distances between rows, (n, d) → (n, n), exact zero diagonal."""
    Xc = center_features(X)  # distances are translation invariant; centring limits cancellation
    G = Xc @ Xc.T
    sq = diagonal(G)
    D = sq[:, None] + sq[None, :] - 2.0 * G
    D = D.clamp(min=0.0) if is_torch(D) else np.maximum(D, 0.0, out=D)
    return _with_zero_diag(D, copy=False)


def center_gram(K: Any) -> Any:
    """Double-centre a symmetric Gram: ``H K H``. (..., n, n) → (..., n, n)."""
    col = K.mean(axis=-2)
    row = K.mean(axis=-1)
    return K - col[..., None, :] - row[..., :, None] + col.mean(axis=-1)[..., None, None]


def u_center_gram(K: Any) -> Any:
    """U-centre a symmetric Gram (Székely & Rizzo 2014). (..., n, n) → (..., n, n), n >= 3.

    ``Ũ_ij = K_ij - r_i/(n-2) - r_j/(n-2) + s/((n-1)(n-2))`` for i != j and 0 on the diagonal,
    where ``r`` are the row sums and ``s`` the total of ``K`` with its diagonal zeroed.
    Leading dimensions are batch dimensions (one Gram per minibatch).
    """
    return u_center_gram_inplace(K.clone() if is_torch(K) else K.copy())


def u_center_gram_inplace(K: Any) -> Any:
    """:func:`u_center_gram` overwriting ``K`` (no n x n temporaries); returns ``K``."""
    n = K.shape[-1]
    if n < 3:
        raise InputError(f"U-centring needs n >= 3 samples; got n = {n}")
    K = _with_zero_diag(K, copy=False)
    means = K.sum(axis=-2) / (n - 2)
    means = means - means.sum(axis=-1, keepdims=True) / (2 * (n - 1))
    K -= means[..., :, None]
    K -= means[..., None, :]
    return _with_zero_diag(K, copy=False)


def frobenius(A: Any, B: Any) -> float:
    """Frobenius inner product ``<A, B> = sum_ij A_ij B_ij`` as one BLAS dot."""
    return float(A.reshape(-1) @ B.reshape(-1))


def hsic_biased(K: Any, L: Any) -> float:
    """Biased HSIC of Gretton et al. (2005): ``tr(K H L H) / (n - 1)²``.

    Parameters
    ----------
    K, L : (n, n) float64
        Uncentred (or already centred: ``H`` is idempotent) symmetric Gram matrices.
    """
    n = _check_grams(K, L, min_n=2)
    return frobenius(center_gram(K), L) / (n - 1) ** 2


def hsic_unbiased(K: Any, L: Any) -> float:
    """Unbiased HSIC of Song et al. (2012), via U-centring.

    ``[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n-1)(n-2)) - 2/(n-2)·1ᵀK̃L̃1] / (n (n-3))`` with ``K̃, L̃`` the
    Grams with zeroed diagonals; equal to ``<Ũ(K), Ũ(L)> / (n (n-3))``.

    Parameters
    ----------
    K, L : (n, n) float64
        Symmetric Gram matrices (diagonals are ignored), n >= 4.
    """
    n = _check_grams(K, L, min_n=4)
    return frobenius(u_center_gram(K), u_center_gram(L)) / (n * (n - 3))


def kernel_alignment(Kc: Any, Lc: Any) -> float:
    """``<Kc, Lc> / (||Kc||_F ||Lc||_F)``: CKA from centred (biased) or U-centred (debiased) Grams.

    Parameters
    ----------
    Kc, Lc : (n, n) float64
        Outputs of :func:`center_gram`/:func:`centered_gram` (biased CKA) or of
        :func:`u_center_gram`/:func:`u_centered_gram` (debiased CKA).
    """
    kk = frobenius(Kc, Kc)
    ll = frobenius(Lc, Lc)
    if not (kk > 0 and ll > 0):
        raise InputError(
            "a centred Gram matrix has zero norm (a representation with zero variance); "
            "CKA is undefined"
        )
    return frobenius(Kc, Lc) / math.sqrt(kk * ll)


def _check_grams(K: Any, L: Any, *, min_n: int) -> int:
    if K.ndim != 2 or K.shape[0] != K.shape[1] or tuple(K.shape) != tuple(L.shape):
        raise InputError(
            f"Gram matrices must be square and of equal shape (n, n); got {tuple(K.shape)} "
            f"and {tuple(L.shape)}"
        )
    n = int(K.shape[0])
    if n < min_n:
        raise InputError(f"this HSIC estimator needs n >= {min_n} samples; got n = {n}")
    return n


def diagonal(A: Any) -> Any:
    """A copy of the diagonal of (n, n) ``A`` (numpy or torch)."""
    return A.diagonal().clone() if is_torch(A) else np.diagonal(A).copy()


def _with_zero_diag(A: Any, *, copy: bool) -> Any:
    """Zero the diagonal of each trailing (n, n) matrix."""
    if copy:
        A = A.clone() if is_torch(A) else A.copy()
    idx = np.arange(A.shape[-1])
    A[..., idx, idx] = 0.0
    return A


def _median(A: Any) -> float:
    """numpy-style median of all entries (mean of the two middle values for even counts)."""
    if not is_torch(A):
        return float(np.median(A))
    flat = A.reshape(-1)
    m = flat.numel()
    if m % 2:
        return float(flat.kthvalue((m + 1) // 2).values)
    lo = flat.kthvalue(m // 2).values
    hi = flat.kthvalue(m // 2 + 1).values
    return float((lo + hi) / 2)


def indices_for(idx: np.ndarray, like: Any) -> Any:
    """Integer indices for indexing ``like``: as they are for numpy, a tensor on its device."""
    if not is_torch(like):
        return idx
    return array_module(like).as_tensor(np.asarray(idx, dtype=np.int64), device=like.device)


def array_module(like: Any) -> Any:
    """The array library of ``like``: numpy, or torch (imported only for torch input)."""
    if is_torch(like):
        import torch

        return torch
    return np
