"""Uncertainty for similarity measures: resampling, permutation nulls, seed-level tests.

Everything here is a pure function on float64 numpy arrays and an explicit
``numpy.random.Generator``; nothing loads runs or models.

Resampling scheme (documented once, used everywhere)
----------------------------------------------------
Intervals over samples use **half-sampling**: each replicate draws ``m = n // 2`` distinct
samples without replacement (the delete-n/2 jackknife of Shao & Wu 1989; McCarthy's 1969
half-samples). Two reasons:

* The ordinary bootstrap duplicates rows. A duplicated row makes an off-diagonal Gram entry
  equal to a self-similarity ``k(x, x)``, exactly the term the debiased (U-statistic) HSIC
  removes, so bootstrap replicates of ``cka_debiased`` are biased upwards, badly so when
  d >> n. Half-samples never duplicate a row, so every replicate is a valid U-statistic.
* For a statistic whose variance is ``σ²/n``, a half-sample estimate has variance ``2σ²/n``
  and covariance ``σ²/n`` with the full-sample estimate, so ``θ*_m − θ̂`` has variance
  ``σ²/n``: its spread matches the sampling spread of ``θ̂`` without any rescaling.

The interval is the *basic* (pivotal) interval ``[θ̂ − q_hi, θ̂ − q_lo]`` where ``q`` are
quantiles of ``θ* − θ̂``. It also removes first-order O(1/n) bias, such as that of biased CKA
(the half-sample carries twice the bias of the full sample).

Permutation nulls shuffle the pairing of rows between the two representations. Centred and
U-centred Grams commute with permutations, so a null replicate permutes a precomputed Gram
(``O(n²)``) instead of recomputing it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from repdrift.errors import InputError

#: Metrics whose resampling runs on precomputed Gram matrices.
GRAM_METRICS = ("cka_linear", "cka_debiased", "cka_rbf")


def half_samples(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n_resamples`` half-samples of ``range(n)``, without replacement.

    Returns
    -------
    (n_resamples, n // 2) int64, each row sorted.
    """
    if n < 8:
        raise InputError(f"half-sampling needs n >= 8 samples; got n = {n}")
    keys = rng.random((n_resamples, n))
    idx = np.argpartition(keys, n // 2, axis=1)[:, : n // 2]
    idx.sort(axis=1)
    return idx


def permutations(n: int, n_perms: int, rng: np.random.Generator) -> np.ndarray:
    """``n_perms`` random permutations of ``range(n)``: (n_perms, n) int64."""
    return rng.permuted(np.tile(np.arange(n), (n_perms, 1)), axis=1)


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
        Sample indices of each subset, without duplicates (see :func:`half_samples`).
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
    similarity: Callable[[np.ndarray, np.ndarray], float],
    X: np.ndarray,
    Y: np.ndarray,
    idx: np.ndarray,
) -> np.ndarray:
    """Any similarity on each resample of paired rows: ``similarity(X[r], Y[r])`` for r in idx.

    The generic (slower) path for measures without a Gram shortcut. Returns (B,) float64.
    """
    return np.array([similarity(X[r], Y[r]) for r in idx], dtype=np.float64)


def metric_permuted(
    similarity: Callable[[np.ndarray, np.ndarray], float],
    X: np.ndarray,
    Y: np.ndarray,
    perms: np.ndarray,
) -> np.ndarray:
    """Any similarity under shuffled pairing: ``similarity(X, Y[p])`` for p in perms. (P,)."""
    return np.array([similarity(X, Y[p]) for p in perms], dtype=np.float64)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float


def basic_interval(estimate: float, replicates: np.ndarray, level: float = 0.95) -> Interval:
    """Basic (pivotal) interval ``[θ̂ − q_hi, θ̂ − q_lo]`` from replicates ``θ*`` of ``θ̂``.

    ``q`` are the ``(1 ± level)/2`` quantiles of ``θ* − θ̂``. Non-finite replicates are
    dropped; with fewer than 10 finite replicates the interval is NaN.
    """
    if not 0 < level < 1:
        raise InputError(f"level={level!r}; expected a confidence level in (0, 1)")
    dev = np.asarray(replicates, dtype=np.float64) - estimate
    dev = dev[np.isfinite(dev)]
    if dev.size < 10:
        return Interval(float(estimate), math.nan, math.nan, level)
    q_lo, q_hi = np.quantile(dev, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(estimate), float(estimate - q_hi), float(estimate - q_lo), level)


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """One-sided p-value that the observed similarity exceeds chance pairing.

    ``(1 + #{null >= observed}) / (1 + P)`` (Phipson & Smyth 2010: never exactly 0).
    """
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.count_nonzero(null >= observed)) / (1 + null.size))


def calibrated_similarity(observed: float, null_mean: float) -> float:
    """Similarity rescaled so chance pairing scores 0 and identity 1: ``(s − μ₀)/(1 − μ₀)``.

    Biased CKA of unrelated high-dimensional data is far above 0; this puts estimators with
    different chance levels on one scale.
    """
    if null_mean >= 1:
        return math.nan
    return (observed - null_mean) / (1 - null_mean)


@dataclass(frozen=True)
class GroupComparison:
    """Difference of mean drift between two groups of seeds (``a − b``)."""

    diff: float
    low: float
    high: float
    p: float
    test: str  # "welch" (seeds are the unit) or "samples" (one seed per group)
    effect_size: float  # Hedges' g over seeds; NaN with one seed per group
    n_a: int
    n_b: int


def compare_groups(
    drift_a: Sequence[float],
    drift_b: Sequence[float],
    replicates_a: np.ndarray,
    replicates_b: np.ndarray,
    *,
    rng: np.random.Generator,
    level: float = 0.95,
) -> GroupComparison:
    """Compare the mean drift of two groups of fine-tuned runs, seeds being the unit.

    Parameters
    ----------
    drift_a, drift_b : (Sa,), (Sb,)
        Drift of each seed's run at one layer, on all samples.
    replicates_a, replicates_b : (Sa, B), (Sb, B)
        The same drifts on B half-samples; column b uses the same samples in every run so
        the sample pairing between runs is kept.
    rng
        For the seed level of the hierarchical resampling.

    Notes
    -----
    The interval is hierarchical: replicate b resamples the seeds of each group with
    replacement (when a group has at least 2), then uses half-sample b of the samples; the
    basic interval is read off ``Δ*_b − Δ̂``. The p-value treats seeds as the unit of
    replication: Welch's t-test on per-seed drifts when both groups have at least 2 seeds.
    With a single seed in a group only sample-level noise can be assessed; the p-value then
    inverts the half-sample interval (``test = "samples"``) and says nothing about seeds.
    """
    a = np.asarray(drift_a, dtype=np.float64)
    b = np.asarray(drift_b, dtype=np.float64)
    ra = np.atleast_2d(np.asarray(replicates_a, dtype=np.float64))
    rb = np.atleast_2d(np.asarray(replicates_b, dtype=np.float64))
    if ra.shape != (a.size, rb.shape[1]) or rb.shape[0] != b.size:
        raise InputError(
            f"replicates must be (seeds, resamples) per group with equal resamples; got "
            f"{ra.shape} for {a.size} seeds and {rb.shape} for {b.size} seeds"
        )
    diff = float(a.mean() - b.mean())
    n_rep = ra.shape[1]

    def seed_means(rep: np.ndarray) -> np.ndarray:
        s = rep.shape[0]
        if s < 2:
            return rep[0]
        pick = rng.integers(0, s, size=(n_rep, s))
        return np.take_along_axis(rep.T, pick, axis=1).mean(axis=1)

    boot = seed_means(ra) - seed_means(rb)
    iv = basic_interval(diff, boot, level)
    if a.size >= 2 and b.size >= 2:
        p = welch_pvalue(a, b)
        test, g = "welch", hedges_g(a, b)
    else:
        dev = boot - diff
        p = float(min(1.0, 2 * min(np.mean(dev >= diff), np.mean(dev <= diff)) + 1 / (n_rep + 1)))
        test, g = "samples", math.nan
    return GroupComparison(diff, iv.low, iv.high, p, test, g, int(a.size), int(b.size))


def welch_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; 1.0 when both groups have zero variance and equal means."""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    return float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g: the standardised mean difference with small-sample correction."""
    na, nb = a.size, b.size
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    if pooled == 0:
        return math.nan
    correction = 1 - 3 / (4 * (na + nb) - 9)
    return float((a.mean() - b.mean()) / math.sqrt(pooled) * correction)


def adjust_pvalues(p: Sequence[float], method: str) -> np.ndarray:
    """Multiple-comparison adjustment: ``"holm"`` (FWER) or ``"bh"`` (Benjamini–Hochberg FDR).

    NaN p-values are passed through and do not count as tests.
    """
    from statsmodels.stats.multitest import multipletests

    methods = {"holm": "holm", "bh": "fdr_bh"}
    if method not in methods:
        raise InputError(f"correction={method!r}; expected one of {sorted(methods)}")
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method=methods[method])[1]
    return out
