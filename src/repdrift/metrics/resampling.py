"""Replicates of a similarity on resamples of the samples: the fast path of the CKA family.

Statistics (intervals, permutation p-values, seed-level tests) live in
:mod:`repdrift.analysis.stats`; this module computes the replicates they read, for one
reference representation ``X`` against R representations ``Ys``:

- on **subsets** of the samples (half-samples, ``idx`` of shape (B, m), no duplicates), and
- under **shuffled pairing** of the rows (permutations, ``perms`` of shape (P, n)).

A metric whose :class:`~repdrift.metrics.registry.MetricSpec` carries a :class:`GramResampling`
hook (``cka_linear``, ``cka_debiased``, ``cka_rbf``) computes one Gram per representation and
reads every replicate off it: subsets as quadratic forms in the subset's indicator vector
(:func:`gram_cka_subsets`), shuffles as permutations of a centred Gram
(:func:`gram_cka_permuted`; centred and U-centred Grams commute with permutations, so a null
replicate costs ``O(n²)`` instead of a new Gram). Any other metric is recomputed from the
features for every replicate (:func:`by_recomputing`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from repdrift.metrics.kernels import kernel_alignment

Similarity = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True, kw_only=True)
class Replicates:
    """One metric for R representations against a reference, on all samples and resampled.

    Attributes
    ----------
    values : (R,) float64
        Similarity on all samples.
    subsets : (R, B) float64 or None
        Similarity on each of the B subsets (None when none were asked for).
    null : (R, P) float64 or None
        Similarity under each of the P shuffled pairings (None when none were asked for).
    """

    values: np.ndarray
    subsets: np.ndarray | None
    null: np.ndarray | None


@dataclass(frozen=True, kw_only=True)
class GramResampling:
    """How a CKA-family metric is read off kernel matrices, so replicates reuse one Gram each.

    Attributes
    ----------
    gram : callable
        ``gram(X, **params) -> K``: (n, d) float64 → (n, n) kernel matrix on which subsets are
        read (centred or not: the subset estimators remove constant shifts themselves).
    center : callable
        ``center(K) -> Kc`` on one (n, n) or a stack (R, n, n) of kernels: the centring
        (biased CKA) or U-centring (debiased CKA) whose alignment is the metric.
    debiased : bool
        Whether subsets use the unbiased HSIC (Song et al. 2012) instead of the biased one.
    """

    gram: Callable[..., np.ndarray]
    center: Callable[[np.ndarray], np.ndarray]
    debiased: bool

    def replicates(
        self,
        X: np.ndarray,
        Ys: Sequence[np.ndarray],
        idx: np.ndarray | None,
        perms: np.ndarray | None,
        **params: object,
    ) -> Replicates:
        """Values, subset replicates and null replicates of ``X`` against each of ``Ys``.

        Parameters
        ----------
        X : (n, d0) float64
        Ys : R arrays (n, d_r) float64
        idx : (B, m) int or None
        perms : (P, n) int or None
        **params
            The metric's parameters, defaults filled in (e.g. ``sigma`` of ``cka_rbf``).
        """
        K = self.gram(X, **params)
        Ls = np.stack([self.gram(Y, **params) for Y in Ys])
        Kc, Lcs = self.center(K), self.center(Ls)
        values = np.array([kernel_alignment(Kc, Lc) for Lc in Lcs])
        subsets = gram_cka_subsets(K, Ls, idx, debiased=self.debiased) if idx is not None else None
        null = gram_cka_permuted(Kc, Lcs, perms) if perms is not None else None
        return Replicates(values=values, subsets=subsets, null=null)


def by_recomputing(
    similarity: Similarity,
    X: np.ndarray,
    Ys: Sequence[np.ndarray],
    idx: np.ndarray | None,
    perms: np.ndarray | None,
) -> Replicates:
    """The generic path: ``similarity`` recomputed on every resample (see :class:`Replicates`)."""
    values = np.array([similarity(X, Y) for Y in Ys])
    subsets = (
        np.stack([metric_resampled(similarity, X, Y, idx) for Y in Ys]) if idx is not None else None
    )
    null = (
        np.stack([metric_permuted(similarity, X, Y, perms) for Y in Ys])
        if perms is not None
        else None
    )
    return Replicates(values=values, subsets=subsets, null=null)


def gram_cka_subsets(
    K: np.ndarray, Ls: np.ndarray, idx: np.ndarray, *, debiased: bool
) -> np.ndarray:
    """CKA on many subsets of the samples at once, from full-sample kernel matrices.

    Exactly equal (up to rounding) to computing CKA from scratch on ``X[s], Y[s]`` for each
    subset ``s``, but without gathering or re-centring a Gram per subset: every quantity the
    estimators need (sums of ``K∘L`` over the subset, subset row sums) is a quadratic form in
    the subset's 0/1 indicator vector, so all B subsets come out of a few (B, n) × (n, n)
    matrix products. Products that involve only ``K`` are shared by every ``L``.

    Parameters
    ----------
    K : (n, n) float64
        Kernel (Gram) matrix of the reference representation on all n samples, centred or not
        (both estimators are invariant to the constant shifts centring removes).
    Ls : (n, n) or (R, n, n) float64
        Kernel matrices of one or R representations compared with ``K``.
    idx : (B, m) int
        Sample indices of each subset, without duplicates (see
        :func:`repdrift.analysis.stats.half_samples`).
    debiased : bool
        Unbiased HSIC (``cka_debiased``) instead of the biased estimator (``cka_linear``,
        ``cka_rbf``).

    Returns
    -------
    (B,) or (R, B) float64, following ``Ls``.
    """
    n, m = K.shape[0], idx.shape[1]
    W = np.zeros((len(idx), n))
    np.put_along_axis(W, idx, 1.0, axis=1)

    def in_subset(A: np.ndarray) -> np.ndarray:
        return np.einsum("bi,bi->b", W, A)

    def hsic(P: np.ndarray, Ra: np.ndarray, Rb: np.ndarray, sa: np.ndarray, sb: np.ndarray):
        trace = in_subset(W @ P)  # sum over i, j in the subset of A_ij B_ij
        cross = np.einsum("bi,bi,bi->b", W, Ra, Rb)
        if debiased:  # Song et al. (2012), up to the common factor 1 / (m (m - 3))
            return trace + sa * sb / ((m - 1) * (m - 2)) - 2 * cross / (m - 2)
        return trace - 2 * cross / m + sa * sb / m**2  # tr(K H L H), H the subset centring

    if debiased:
        K = _zero_diag(K)
    RK = W @ K  # row sums restricted to the subset, (B, n)
    sK = in_subset(RK)
    kk = hsic(K * K, RK, RK, sK, sK)
    out = []
    for L in Ls.reshape(-1, n, n):
        if debiased:
            L = _zero_diag(L)
        RL = W @ L
        sL = in_subset(RL)
        kl = hsic(K * L, RK, RL, sK, sL)
        ll = hsic(L * L, RL, RL, sL, sL)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append(kl / np.sqrt(kk * ll))
    return out[0] if Ls.ndim == 2 else np.stack(out)


def gram_cka_permuted(Kc: np.ndarray, Lcs: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """CKA under shuffled pairing, from centred (or U-centred) Grams.

    Parameters
    ----------
    Kc : (n, n) float64
        Centred Gram (biased CKA) or U-centred Gram (debiased CKA) of the reference.
    Lcs : (n, n) or (R, n, n) float64
        The same for one or R representations compared with ``Kc``.
    perms : (P, n) int
        Shufflings of the pairing between samples.

    Returns
    -------
    (P,) or (R, P) float64, following ``Lcs``.
    """
    # Both centrings commute with permutations and the norms are permutation invariant, so
    # only the cross term <Kc, P Lc Pᵀ> = <Pᵀ Kc P, Lc> changes. Permuting the reference
    # once per shuffle serves every Lc with a single matrix-vector product.
    n = Kc.shape[0]
    L = Lcs.reshape(-1, n * n)
    norms = np.sqrt(float(np.vdot(Kc, Kc)) * np.einsum("ri,ri->r", L, L))
    # Two single-axis takes into reused buffers run about twice as fast as fancy indexing
    # with np.ix_ (contiguous row copies, then in-cache column gathers).
    inverse = np.argsort(perms, axis=1)
    Kc = np.ascontiguousarray(Kc)
    rows, permuted = np.empty_like(Kc), np.empty_like(Kc)
    cross = np.empty((L.shape[0], len(inverse)))
    for i, q in enumerate(inverse):
        np.take(Kc, q, axis=0, out=rows)
        np.take(rows, q, axis=1, out=permuted)
        cross[:, i] = L @ permuted.reshape(-1)
    out = cross / norms[:, None]
    return out[0] if Lcs.ndim == 2 else out


def _zero_diag(A: np.ndarray) -> np.ndarray:
    A = A.copy()
    np.fill_diagonal(A, 0.0)
    return A


def metric_resampled(
    similarity: Similarity, X: np.ndarray, Y: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """Any similarity on each resample of paired rows: ``similarity(X[r], Y[r])`` for r in idx.

    The generic (slower) path for measures without a Gram shortcut. Returns (B,) float64.
    """
    return np.array([similarity(X[r], Y[r]) for r in idx], dtype=np.float64)


def metric_permuted(
    similarity: Similarity, X: np.ndarray, Y: np.ndarray, perms: np.ndarray
) -> np.ndarray:
    """Any similarity under shuffled pairing: ``similarity(X, Y[p])`` for p in perms. (P,)."""
    return np.array([similarity(X, Y[p]) for p in perms], dtype=np.float64)
