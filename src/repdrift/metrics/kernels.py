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

The last section: the estimators on many resamples at once, read off full-sample Grams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import is_torch

# Bytes of permuted Grams (or cosine cross products) a torch device gathers at once.
TORCH_GATHER_BYTES = 2**28
# numpy permutation gather: rows per block, shuffles per GEMM (benchmarks/stats.py --pair).
PERMUTED_ROWS_PER_BLOCK = 32
PERMUTED_BATCH = 16


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
    sq = _diag(G)
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


def _diag(A: Any) -> Any:
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


# ---------------------------------------------------------------- estimators on resamples


def gram_cka_subsets(K: Any, Ls: Any, idx: np.ndarray, *, debiased: bool) -> Any:
    """CKA on many subsets of the samples at once, from full-sample kernel matrices.

    Equal (up to rounding) to CKA computed from scratch on ``X[s], Y[s]`` for each subset
    ``s``, without gathering or re-centring a Gram per subset: every quantity the estimators
    need (sums of ``K∘L`` over the subset, subset row sums) is a quadratic form in the
    subset's 0/1 indicator vector, so all B subsets come out of a few (B, n) × (n, n) matrix
    products. Products that involve only ``K`` are shared by every ``L``.

    Parameters
    ----------
    K : (n, n) float64 numpy array or torch tensor
        Kernel (Gram) matrix of the reference on all n samples, centred or not (both
        estimators are invariant to the constant shifts centring removes).
    Ls : (n, n) or (R, n, n) float64, the same kind as ``K``
        Kernel matrices of one or R representations compared with ``K``.
    idx : (B, m) int
        Sample indices of each subset, no duplicates (:func:`repdrift.analysis.stats.half_samples`).
    debiased : bool
        Unbiased HSIC (``cka_debiased``) instead of the biased one (``cka_linear``, ``cka_rbf``).

    Returns
    -------
    (B,) or (R, B) float64, following ``Ls`` (a torch tensor on ``K``'s device for torch input).
    """
    return subset_ckas(K, Ls, idx, (debiased,))[0]


def subset_ckas(K: Any, Ls: Any, idx: np.ndarray, estimators: Sequence[bool]) -> list[Any]:
    """:func:`gram_cka_subsets` for several estimators (False biased, True debiased) at once.

    The unbiased estimator reads the Grams with a zeroed diagonal: its subset sums are those
    of the biased one minus the subset's diagonal terms, so both share every (B, n) × (n, n)
    product. Returns one (B,) or (R, B) array per estimator, in the order given.
    """
    n, m = K.shape[0], idx.shape[1]
    ein = array_module(K).einsum
    W = _indicator(idx, n, K)

    def inside(A: Any) -> Any:  # (B, n) -> (B,): the sum over each subset's samples
        return ein("bi,bi->b", W, A)

    def sums(A: Any) -> dict[bool, tuple[Any, Any]]:  # subset row sums and total
        R = W @ A
        R0 = R - W * _diag(A)  # with the diagonal zeroed
        return {False: (R, inside(R)), True: (R0, inside(R0))}

    def trace(A: Any, B: Any) -> dict[bool, Any]:  # sum of A∘B over the subset
        t = inside(W @ (A * B))
        return {False: t, True: t - W @ (_diag(A) * _diag(B))}

    def hsic(t: dict, a: dict, b: dict, debiased: bool) -> Any:
        (Ra, sa), (Rb, sb) = a[debiased], b[debiased]
        cross = ein("bi,bi,bi->b", W, Ra, Rb)
        if debiased:  # Song et al. (2012), up to the common factor 1 / (m (m - 3))
            return t[True] + sa * sb / ((m - 1) * (m - 2)) - 2 * cross / (m - 2)
        return t[False] - 2 * cross / m + sa * sb / m**2  # tr(K H L H), H the subset centring

    sK, tKK = sums(K), trace(K, K)
    kk = {e: hsic(tKK, sK, sK, e) for e in estimators}
    out: dict[bool, list[Any]] = {e: [] for e in estimators}
    for L in Ls.reshape(-1, n, n):
        sL, tKL, tLL = sums(L), trace(K, L), trace(L, L)
        for e in estimators:
            kl, ll = hsic(tKL, sK, sL, e), hsic(tLL, sL, sL, e)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[e].append(kl / (kk[e] * ll) ** 0.5)
    return [out[e][0] if Ls.ndim == 2 else array_module(K).stack(out[e]) for e in estimators]


def gram_cka_permuted(Kc: Any, Lcs: Any, perms: np.ndarray) -> Any:
    """CKA under shuffled pairing, from centred (or U-centred) Grams.

    Parameters
    ----------
    Kc : (n, n) float64 numpy array or torch tensor
        Centred Gram (biased CKA) or U-centred Gram (debiased CKA) of the reference.
    Lcs : (n, n) or (R, n, n) float64, the same kind as ``Kc``
        The same for one or R representations compared with ``Kc``.
    perms : (P, n) int
        Shufflings of the pairing between samples.

    Returns
    -------
    (P,) or (R, P) float64, following ``Lcs`` (torch on ``Kc``'s device for torch input).
    """
    # Centrings commute with permutations, norms are invariant: only <Kc, P Lc Pᵀ> changes.
    n = Kc.shape[0]
    L = Lcs.reshape(-1, n * n)
    norms = (frobenius(Kc, Kc) * array_module(L).einsum("ri,ri->r", L, L)) ** 0.5
    out = permuted_inner(Kc, L, perms) / norms[:, None]
    return out[0] if Lcs.ndim == 2 else out


def permuted_inner(A: Any, Bs: Any, perms: np.ndarray) -> Any:
    """(R, P) inner products ``<A, B_r[p][:, p]>`` of symmetric (n, n) ``A`` and ``Bs``.

    ``B[p][:, p]`` is the Gram of ``Y[p]`` for p = perms[k], a permutation of ``range(n)``. As
    ``<A, B[p][:, p]> = <A[q][:, q], B>`` with q the inverse of p, one gather of ``A`` per
    shuffle serves every ``B_r``. ``Bs`` is (n, n), (R, n, n) or (R, n²); the result is numpy,
    or a torch tensor on ``A``'s device for torch input.
    """
    n = A.shape[0]
    B = Bs.reshape(-1, n * n)
    inverse = inverse_permutations(perms, n)
    if not is_torch(A):
        return _permuted_inner_numpy(np.ascontiguousarray(A), B, inverse)
    step = max(1, TORCH_GATHER_BYTES // (8 * n * n))
    out = array_module(A).empty((B.shape[0], len(inverse)), dtype=A.dtype, device=A.device)
    for a in range(0, len(inverse), step):
        q = indices_for(inverse[a : a + step], A)  # (p, n)
        out[:, a : a + step] = B @ A[q[:, :, None], q[:, None, :]].reshape(len(q), -1).T
    return out


def _permuted_inner_numpy(A: np.ndarray, B: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """The numpy loop of :func:`permuted_inner`: a memory-bound gather arranged for the cache.

    By symmetry row block ``[a, c)`` needs only columns ``j >= a`` (those past the block
    count twice): half of ``A[q][:, q]``, gathered for ``PERMUTED_BATCH`` shuffles (row copies,
    then column gathers in cache) and multiplied with that block of every ``B_r`` in one GEMM.
    ``mode="wrap"`` skips the bounds check and buffering of the default mode (2x faster);
    ``inverse`` holds checked permutations, so every index is in range.
    """
    n, size, batch = A.shape[0], PERMUTED_ROWS_PER_BLOCK, PERMUTED_BATCH
    blocks = []
    for a in range(0, n, size):
        c = min(a + size, n)
        W = B.reshape(-1, n, n)[:, a:c, a:].copy()
        W[:, :, c - a :] *= 2.0
        blocks.append((a, c, W.reshape(len(B), -1)))
    rows, G = np.empty((size, n)), np.empty((batch, size * n))
    out = np.empty((len(B), len(inverse)))
    for s in range(0, len(inverse), batch):
        qs = inverse[s : s + batch]
        acc = np.zeros((len(B), len(qs)))
        for a, c, W in blocks:
            width = (c - a) * (n - a)
            for k, q in enumerate(qs):
                A.take(q[a:c], 0, rows[: c - a], "wrap")  # the method: no wrapper per call
                rows[: c - a].take(q[a:], 1, G[k, :width].reshape(c - a, n - a), "wrap")
            acc += W @ G[: len(qs), :width].T
        out[:, s : s + len(qs)] = acc
    return out


def inverse_permutations(perms: np.ndarray, n: int) -> np.ndarray:
    """(P, n) inverses of the rows of ``perms``; refuses rows not permutations of range(n)."""
    perms = np.asarray(perms)
    if perms.ndim != 2 or perms.shape[1] != n or not np.issubdtype(perms.dtype, np.integer):
        raise InputError(f"perms must be (P, n={n}) integers; got {perms.dtype} {perms.shape}")
    inverse = np.full(perms.shape, -1, dtype=np.intp)
    if perms.size and 0 <= perms.min() and perms.max() < n:
        inverse[np.arange(len(perms))[:, None], perms] = np.arange(n)
    if (inverse < 0).any():
        raise InputError(f"a row of perms is not a permutation of range({n})")
    return inverse


def _indicator(idx: np.ndarray, n: int, like: Any) -> Any:
    """(B, n) 0/1 float64 matrix with ones at each row's indices."""
    if is_torch(like):
        W = array_module(like).zeros((len(idx), n), dtype=like.dtype, device=like.device)
        return W.scatter_(1, indices_for(idx, like), 1.0)
    W = np.zeros((len(idx), n))
    np.put_along_axis(W, np.asarray(idx), 1.0, axis=1)
    return W


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
