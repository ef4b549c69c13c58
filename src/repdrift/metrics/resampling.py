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
  (:func:`~repdrift.metrics.gram_replicates.gram_cka_subsets`) and shuffles as permutations of a
  centred Gram (:func:`~repdrift.metrics.gram_replicates.gram_cka_permuted`; centred and U-centred
  Grams commute with permutations, so a null replicate costs ``O(n²)`` instead of a new Gram).
  The two linear CKAs share their centred Grams, matrix products and the gather of each
  shuffle (:func:`linear_cka_replicates`; :func:`repdrift.metrics.registry.resample_many`
  computes them together when both are asked for).
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

from repdrift.metrics import gram_replicates
from repdrift.metrics._inputs import is_torch
from repdrift.metrics.cosine import check_same_width, unit_rows
from repdrift.metrics.gram_replicates import (
    gram_cka_permuted,
    gram_cka_subsets,
    permuted_inner,
    subset_ckas,
)
from repdrift.metrics.kernels import (
    array_module,
    centered_gram,
    frobenius,
    indices_for,
    kernel_alignment,
    u_center_gram,
)

Similarity = Callable[[np.ndarray, np.ndarray], float]

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
        if self.gram is centered_gram and not is_torch(X) and X.shape[0] >= 4:
            return linear_cka_replicates(X, Ys, idx, perms, (self.debiased,))[self.debiased]
        K = self.gram(X, **params)
        Ls = array_module(K).stack([self.gram(Y, **params) for Y in Ys])
        Kc, Lcs = self.center(K), self.center(Ls)
        values = np.array([kernel_alignment(Kc, Lc) for Lc in Lcs])
        subsets = gram_cka_subsets(K, Ls, idx, debiased=self.debiased) if idx is not None else None
        null = gram_cka_permuted(Kc, Lcs, perms) if perms is not None else None
        return Replicates(values=values, subsets=_numpy(subsets), null=_numpy(null))


def linear_cka_replicates(
    X: np.ndarray,
    Ys: Sequence[np.ndarray],
    idx: np.ndarray | None,
    perms: np.ndarray | None,
    estimators: Sequence[bool] = (False, True),
) -> dict[bool, Replicates]:
    """Replicates of ``cka_linear`` (False) and ``cka_debiased`` (True) computed together.

    One centred Gram ``Kc`` per representation serves both (the debiased one U-centres it);
    the subsets of both share every matrix product (:func:`~repdrift.metrics.gram_replicates.
    subset_ckas`); and under a shuffle both cross terms come from one gather of ``Kc``:
    ``<Ũ(Kc)[q][:, q], Ũ(Lc)> = <Kc[q][:, q], Ũ(Lc)>`` because ``Ũ(Lc)`` has a zero diagonal
    and zero row sums, which annihilate everything U-centring adds to ``Kc``.

    Parameters
    ----------
    X : (n, d0) float64 numpy array, n >= 4 when ``True`` is among ``estimators``
    Ys : R arrays (n, d_r), R >= 1
    idx, perms
        As in :meth:`ResamplingPath.replicates`.
    estimators
        Which of the two to compute.
    """
    Kc = centered_gram(X)
    Lcs = np.stack([centered_gram(Y) for Y in Ys])
    grams = {False: (Kc, Lcs)}
    if True in estimators:
        grams[True] = (u_center_gram(Kc), u_center_gram(Lcs))
    subsets = {}
    if idx is not None:
        subsets = dict(zip(estimators, subset_ckas(Kc, Lcs, idx, estimators), strict=True))
    nulls = {}
    if perms is not None:
        Bs = np.stack([grams[e][1] for e in estimators])  # (E, R, n, n)
        cross = permuted_inner(Kc, Bs, perms).reshape(len(estimators), len(Ys), -1)
        for e, c in zip(estimators, cross, strict=True):
            K, Ls = grams[e]
            norms = np.sqrt(frobenius(K, K) * np.einsum("rij,rij->r", Ls, Ls))
            nulls[e] = c / norms[:, None]
    return {
        e: Replicates(
            values=np.array([kernel_alignment(grams[e][0], L) for L in grams[e][1]]),
            subsets=subsets.get(e),
            null=nulls.get(e),
        )
        for e in estimators
    }


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
                subsets.append(_numpy(per_sample[indices_for(idx, U)].mean(axis=1)))
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
        return np.array([float((U * V[indices_for(p, U)]).sum(axis=1).mean()) for p in perms])
    C = U @ V.T  # C[i, j] = cosine of sample i of X with sample j of Y
    rows = np.arange(n)
    if not is_torch(C):
        return C[rows, perms].mean(axis=1)
    out = np.empty(len(perms))
    step = max(1, gram_replicates.TORCH_GATHER_BYTES // (8 * n))
    rows_t = indices_for(rows, C)
    for a in range(0, len(perms), step):
        out[a : a + step] = _numpy(C[rows_t, indices_for(perms[a : a + step], C)].mean(axis=1))
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
