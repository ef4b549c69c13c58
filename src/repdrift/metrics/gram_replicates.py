"""CKA on many resamples at once, read off full-sample Gram matrices.

The fast paths of :mod:`repdrift.metrics.resampling` for the CKA family: half-samples as
quadratic forms in each subset's indicator vector (:func:`subset_ckas`), shuffled pairings as
gathers of one centred Gram (:func:`permuted_inner`; centrings commute with permutations).
numpy arrays or float64 torch tensors on a device; equal to the estimators recomputed on
each resample up to rounding (tests/metrics/test_resampling.py, test_linear_resampling.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import is_torch
from repdrift.metrics.kernels import array_module, diagonal, frobenius, indices_for

# Bytes of permuted Grams (or cosine cross products) a torch device gathers at once.
TORCH_GATHER_BYTES = 2**28
# numpy permutation gather: rows per block, shuffles per GEMM (benchmarks/stats.py --pair).
PERMUTED_ROWS_PER_BLOCK = 32
PERMUTED_BATCH = 16


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
        R0 = R - W * diagonal(A)  # with the diagonal zeroed
        return {False: (R, inside(R)), True: (R0, inside(R0))}

    def trace(A: Any, B: Any) -> dict[bool, Any]:  # sum of A∘B over the subset
        t = inside(W @ (A * B))
        return {False: t, True: t - W @ (diagonal(A) * diagonal(B))}

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


__all__ = [
    "gram_cka_permuted",
    "gram_cka_subsets",
    "inverse_permutations",
    "permuted_inner",
    "subset_ckas",
]
