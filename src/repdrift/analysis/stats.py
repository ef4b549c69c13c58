"""Uncertainty for similarity measures: resampling scheme, intervals, p-values, seed-level tests.

Everything here is a pure function on float64 numpy arrays and an explicit
``numpy.random.Generator``; nothing loads runs or models. The replicates themselves (a metric
on each half-sample and under each shuffle, with the Gram shortcut of the CKA family) come
from :func:`repdrift.metrics.resample` (:mod:`repdrift.metrics.resampling`).

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

Permutation nulls shuffle the pairing of rows between the two representations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from repdrift.errors import InputError


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
