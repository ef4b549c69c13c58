"""Replicates of a similarity on resamples of the samples: the fast paths of the default metrics.

Statistics (intervals, permutation p-values, seed-level tests) live in
:mod:`repdrift.analysis.stats`; this module computes the replicates they read, for one
reference representation ``X`` against R representations ``Ys``:

- on **subsets** of the samples (half-samples, ``idx`` of shape (B, m), no duplicates), and
- under **shuffled pairing** of the rows (permutations, ``perms`` of shape (P, n)).

A metric's :class:`~repdrift.metrics.spec.MetricSpec` may carry a resampling hook (a
:class:`ResamplingPath`) that computes every replicate from state shared by all of them:

- :class:`GramResampling` (``cka_linear``, ``cka_debiased``, ``cka_rbf``) computes one Gram
  per representation and reads subsets as quadratic forms in the subset's indicator vector
  (:func:`gram_cka_subsets`) and shuffles as permutations of a centred Gram
  (:func:`gram_cka_permuted`; centred and U-centred Grams commute with permutations, so a null
  replicate costs ``O(n²)`` instead of a new Gram).
- :class:`CosineResampling` (``cosine``): a subset's value is the mean of a subset of the n
  per-sample cosines, a shuffled pairing's is a gather from the one (n, n) matrix of cross
  products of unit rows.

Any other metric is recomputed from the features for every replicate
(:func:`by_recomputing`). The hooks take numpy arrays, or float64 torch tensors on a device
(the registry converts when asked for ``device=``): the Grams and GEMMs then run there, and
the replicates come back as float64 numpy arrays either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from repdrift.metrics._inputs import is_torch
from repdrift.metrics.cosine import check_same_width, unit_rows
from repdrift.metrics.kernels import kernel_alignment

Similarity = Callable[[np.ndarray, np.ndarray], float]

# Bytes of permuted (n, n) Grams (or of the cosine cross-product matrix) a torch device
# gathers at once; numpy permutes one Gram at a time into reused buffers.
TORCH_GATHER_BYTES = 2**28
# Above this many samples the (n, n) cross products of the cosine null would not fit: each
# shuffle is then read from the rows (O(n d) per shuffle instead of one O(n² d) GEMM).
COSINE_MATRIX_MAX_N = 20_000


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


class ResamplingPath(Protocol):
    """A metric's fast path to its replicates (the ``resampling`` field of its spec)."""

    def replicates(
        self,
        X: Any,
        Ys: Sequence[Any],
        idx: np.ndarray | None,
        perms: np.ndarray | None,
        **params: object,
    ) -> Replicates:
        """Values, subset and null replicates of ``X`` against each of ``Ys``.

        Parameters
        ----------
        X : (n, d0) float64 numpy array, or float64 torch tensor on the device to compute on
        Ys : R arrays (n, d_r), the same kind as ``X``
        idx : (B, m) int or None
            Subsets of the samples, without duplicates.
        perms : (P, n) int or None
            Shufflings of the pairing of rows.
        **params
            The metric's parameters, defaults filled in (e.g. ``sigma`` of ``cka_rbf``).
        """
        ...


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

    gram: Callable[..., Any]
    center: Callable[[Any], Any]
    debiased: bool

    def replicates(
        self,
        X: Any,
        Ys: Sequence[Any],
        idx: np.ndarray | None,
        perms: np.ndarray | None,
        **params: object,
    ) -> Replicates:
        """See :meth:`ResamplingPath.replicates`."""
        K = self.gram(X, **params)
        Ls = _stack([self.gram(Y, **params) for Y in Ys])
        Kc, Lcs = self.center(K), self.center(Ls)
        values = np.array([kernel_alignment(Kc, Lc) for Lc in Lcs])
        subsets = gram_cka_subsets(K, Ls, idx, debiased=self.debiased) if idx is not None else None
        null = gram_cka_permuted(Kc, Lcs, perms) if perms is not None else None
        return Replicates(values=values, subsets=_numpy(subsets), null=_numpy(null))


@dataclass(frozen=True)
class CosineResampling:
    """The mean per-sample cosine on subsets and under shuffles, from unit rows computed once.

    With unit rows ``u_i = x_i / ||x_i||`` and ``v_i = y_i / ||y_i||`` the per-sample cosines
    are ``c_i = u_i · v_i``: a subset ``s`` has cosine ``mean_{i in s} c_i`` (a gather), and the
    shuffled pairing ``p`` (row i of X against row ``p_i`` of Y) has
    ``mean_i C[i, p_i]`` with ``C = U Vᵀ`` (n, n), one GEMM shared by every shuffle. Both are
    the metric recomputed on the resampled rows, up to the order of floating-point sums.
    """

    def replicates(
        self,
        X: Any,
        Ys: Sequence[Any],
        idx: np.ndarray | None,
        perms: np.ndarray | None,
        **params: object,
    ) -> Replicates:
        """See :meth:`ResamplingPath.replicates`."""
        U = unit_rows(X, "X")
        values, subsets, null = [], [], []
        for r, Y in enumerate(Ys):
            check_same_width(X.shape[1], Y.shape[1], "X", f"Ys[{r}]")
            V = unit_rows(Y, f"Ys[{r}]")
            per_sample = (U * V).sum(axis=1)
            values.append(float(per_sample.mean()))
            if idx is not None:
                subsets.append(_numpy(per_sample[_index(idx, U)].mean(axis=1)))
            if perms is not None:
                null.append(_permuted_cosines(U, V, perms))
        return Replicates(
            values=np.array(values, dtype=np.float64),
            subsets=np.stack(subsets) if idx is not None else None,
            null=np.stack(null) if perms is not None else None,
        )


def _permuted_cosines(U: Any, V: Any, perms: np.ndarray) -> np.ndarray:
    """(P,) mean cosine of unit rows ``U[i]`` and ``V[perms[k, i]]`` for each shuffle k."""
    n = U.shape[0]
    if n > COSINE_MATRIX_MAX_N:
        return np.array([float((U * V[_index(p, U)]).sum(axis=1).mean()) for p in perms])
    C = U @ V.T  # C[i, j] = cosine of sample i of X with sample j of Y
    rows = np.arange(n)
    if not is_torch(C):
        return C[rows, perms].mean(axis=1)
    out = np.empty(len(perms))
    step = max(1, TORCH_GATHER_BYTES // (8 * n))
    rows_t = _index(rows, C)
    for a in range(0, len(perms), step):
        out[a : a + step] = _numpy(C[rows_t, _index(perms[a : a + step], C)].mean(axis=1))
    return out


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
    K : (n, n) float64 numpy array or torch tensor
        Kernel (Gram) matrix of the reference representation on all n samples, centred or not
        (both estimators are invariant to the constant shifts centring removes).
    Ls : (n, n) or (R, n, n) float64, the same kind as ``K``
        Kernel matrices of one or R representations compared with ``K``.
    idx : (B, m) int
        Sample indices of each subset, without duplicates (see
        :func:`repdrift.analysis.stats.half_samples`).
    debiased : bool
        Unbiased HSIC (``cka_debiased``) instead of the biased estimator (``cka_linear``,
        ``cka_rbf``).

    Returns
    -------
    (B,) or (R, B) float64, following ``Ls`` (a torch tensor on ``K``'s device for torch input).
    """
    n, m = K.shape[0], idx.shape[1]
    einsum = _einsum(K)
    if is_torch(K):
        import torch

        W = torch.zeros((len(idx), n), dtype=K.dtype, device=K.device)
        W.scatter_(1, _index(idx, K), 1.0)
    else:
        W = np.zeros((len(idx), n))
        np.put_along_axis(W, idx, 1.0, axis=1)

    def in_subset(A: Any) -> Any:
        return einsum("bi,bi->b", W, A)

    def hsic(P: Any, Ra: Any, Rb: Any, sa: Any, sb: Any) -> Any:
        trace = in_subset(W @ P)  # sum over i, j in the subset of A_ij B_ij
        cross = einsum("bi,bi,bi->b", W, Ra, Rb)
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
            out.append(kl / (kk * ll) ** 0.5)
    return out[0] if Ls.ndim == 2 else _stack(out)


def gram_cka_permuted(Kc: np.ndarray, Lcs: np.ndarray, perms: np.ndarray) -> np.ndarray:
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
    (P,) or (R, P) float64, following ``Lcs`` (a torch tensor on ``Kc``'s device for torch
    input).
    """
    # Both centrings commute with permutations and the norms are permutation invariant, so
    # only the cross term <Kc, P Lc Pᵀ> = <Pᵀ Kc P, Lc> changes. Permuting the reference
    # once per shuffle serves every Lc with a single matrix-vector product.
    n = Kc.shape[0]
    L = Lcs.reshape(-1, n * n)
    kk = float(Kc.reshape(-1) @ Kc.reshape(-1))
    norms = (kk * _einsum(L)("ri,ri->r", L, L)) ** 0.5
    inverse = np.argsort(perms, axis=1)
    if is_torch(Kc):
        out = _gathered_cross(Kc, L, inverse) / norms[:, None]
        return out[0] if Lcs.ndim == 2 else out
    # Two single-axis takes into reused buffers run about twice as fast as fancy indexing
    # with np.ix_ (contiguous row copies, then in-cache column gathers).
    Kc = np.ascontiguousarray(Kc)
    rows, permuted = np.empty_like(Kc), np.empty_like(Kc)
    cross = np.empty((L.shape[0], len(inverse)))
    for i, q in enumerate(inverse):
        np.take(Kc, q, axis=0, out=rows)
        np.take(rows, q, axis=1, out=permuted)
        cross[:, i] = L @ permuted.reshape(-1)
    out = cross / norms[:, None]
    return out[0] if Lcs.ndim == 2 else out


def _gathered_cross(Kc: Any, L: Any, inverse: np.ndarray) -> Any:
    """(R, P) ``<Kc[q][:, q], Lc>`` on a torch device, many shuffles per gather and GEMM."""
    n = Kc.shape[0]
    step = max(1, TORCH_GATHER_BYTES // (8 * n * n))
    parts = []
    for a in range(0, len(inverse), step):
        q = _index(inverse[a : a + step], Kc)  # (p, n)
        permuted = Kc[q[:, :, None], q[:, None, :]]  # (p, n, n): Kc[q_i, q_j]
        parts.append(L @ permuted.reshape(len(q), n * n).T)
    return _torch_cat(parts, axis=1)


def _zero_diag(A: Any) -> Any:
    if is_torch(A):
        return A.clone().fill_diagonal_(0.0)
    A = A.copy()
    np.fill_diagonal(A, 0.0)
    return A


def _index(idx: np.ndarray, like: Any) -> Any:
    """Integer indices for indexing ``like``: as they are for numpy, a tensor on its device."""
    if not is_torch(like):
        return idx
    import torch

    return torch.as_tensor(np.asarray(idx, dtype=np.int64), device=like.device)


def _einsum(like: Any) -> Callable[..., Any]:
    if is_torch(like):
        import torch

        return torch.einsum
    return np.einsum


def _stack(parts: list[Any]) -> Any:
    if parts and is_torch(parts[0]):
        import torch

        return torch.stack(parts)
    return np.stack(parts)


def _torch_cat(parts: list[Any], axis: int) -> Any:
    import torch

    return torch.cat(parts, dim=axis)


def _numpy(a: Any) -> np.ndarray | None:
    """A result as a float64 numpy array (copied off a torch device); None stays None."""
    if a is None:
        return None
    if is_torch(a):
        return a.detach().to("cpu").numpy().astype(np.float64, copy=False)
    return np.asarray(a, dtype=np.float64)


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
