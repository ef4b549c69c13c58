"""Uncertainty for similarity measures: resampling scheme, intervals, p-values, seed-level tests.

Everything here is a pure function on float64 numpy arrays and an explicit
``numpy.random.Generator``; nothing loads runs or models. The replicates themselves (a metric
on each half-sample and under each shuffle, with the Gram shortcut of the CKA family) come
from :func:`repdrift.metrics.resample` (:mod:`repdrift.metrics.resampling`).

Resampling scheme (documented once, used everywhere)
----------------------------------------------------
Intervals over samples use **half-sampling**: each replicate draws ``m = n // 2`` distinct
samples without replacement (the delete-n/2 jackknife of Shao & Wu 1989; McCarthy's 1969
half-samples), in disjoint pairs. Two reasons:

* The ordinary bootstrap duplicates rows. A duplicated row makes an off-diagonal Gram entry
  equal to a self-similarity ``k(x, x)``, exactly the term the debiased (U-statistic) HSIC
  removes, so bootstrap replicates of ``cka_debiased`` are biased upwards, badly so when
  d >> n. Half-samples never duplicate a row, so every replicate is a valid U-statistic.
* For a statistic whose variance is ``σ²/n``, a half-sample estimate has variance ``2σ²/n``
  and covariance ``σ²/n`` with the full-sample estimate, so ``θ*_m − θ̂`` has variance
  ``σ²/n``: the Shao–Wu factor ``(n − m)/m`` is 1. For a U-statistic with a large
  second-order part (debiased CKA at large width or weak signal) the spread overstates the
  sampling spread (up to 1.7x); the disjoint pairs measure the excess and
  :mod:`repdrift.analysis.intervals` removes it.

The interval is the *basic* (pivotal) interval ``[θ̂ − q_hi, θ̂ − q_lo]`` where ``q`` are
quantiles of ``θ* − θ̂`` (:func:`basic_interval`; the analysis uses its width-corrected form
on the logit scale of the quantity's range, :func:`repdrift.analysis.intervals.
half_sample_interval`). It also removes first-order O(1/n) bias, such as that of biased CKA
(the half-sample carries twice the bias of the full sample); the bias of biased CKA at
d/n >= 0.5 is larger than that and its intervals miss the population value (docs/statistics.md).

Permutation nulls shuffle the pairing of rows between the two representations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from repdrift.analysis import intervals
from repdrift.analysis.intervals import Range
from repdrift.errors import InputError


def half_samples(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n_resamples`` half-samples of ``range(n)``, without replacement, in
    disjoint pairs.

    Rows ``2k`` and ``2k + 1`` are disjoint (complements, less one random sample when ``n`` is
    odd): each row alone is a uniform random half, and each pair gives the paired variance of
    :func:`repdrift.analysis.intervals.half_sample_variance`.

    Returns
    -------
    (n_resamples, n // 2) int64, each row sorted.
    """
    if n < 8:
        raise InputError(f"half-sampling needs n >= 8 samples; got n = {n}")
    m = n // 2
    order = np.argsort(rng.random(((n_resamples + 1) // 2, n)), axis=1)
    idx = np.stack([order[:, :m], order[:, m : 2 * m]], axis=1).reshape(-1, m)[:n_resamples]
    idx.sort(axis=1)
    return idx.astype(np.int64, copy=False)


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
class Welch:
    """Welch's unequal-variance t-test of ``mean(a) − mean(b)``, seeds being the unit."""

    diff: float
    se: float
    df: float
    t: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test computed directly (no scipy precision warnings on near-constant data).

    ``t = Δ / √(s²_a/n_a + s²_b/n_b)`` with Welch–Satterthwaite degrees of freedom; both groups
    need at least 2 values. With zero variance in both groups, ``p`` is 1 for equal means and
    0 otherwise (``t`` ±inf, ``df`` NaN).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise InputError(f"Welch's test needs 2 values per group; got {a.size} and {b.size}")
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if not se2 > 0:
        if diff == 0:
            return Welch(diff, 0.0, math.nan, 0.0, 1.0)
        return Welch(diff, 0.0, math.nan, math.copysign(math.inf, diff), 0.0)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = diff / math.sqrt(se2)
    return Welch(diff, math.sqrt(se2), float(df), float(t), float(2 * sps.t.sf(abs(t), df)))


def welch_pvalue(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; 1.0 when both groups have zero variance and equal means."""
    return welch(a, b).p


@dataclass(frozen=True)
class SeedInterval:
    """An interval of a mean over seeds (or of a difference of two such means).

    ``kind`` is ``"seeds+samples"`` (hierarchical: seed-to-seed variance plus the sampling
    variance of the mean over seeds) or ``"samples"`` (one seed: the half-sample interval of
    that single run, which says nothing about other trainings).
    """

    estimate: float
    low: float
    high: float
    level: float
    df: float
    kind: str


def t_interval(
    estimate: float, parts: Sequence[tuple[float, float]], level: float
) -> tuple[float, float, float]:
    """``estimate ± t_ν · √Σv`` for variance components ``(v, df)``; Satterthwaite ``ν``.

    Components with ``df = inf`` count as known. Returns ``(low, high, ν)``.
    """
    total = float(sum(v for v, _ in parts))
    if not np.isfinite(total):
        return math.nan, math.nan, math.nan
    if total == 0:
        return estimate, estimate, math.inf
    denom = sum(v**2 / d for v, d in parts if d < math.inf and v > 0)
    df = total**2 / denom if denom > 0 else math.inf
    tail = (1 + level) / 2
    q = float(sps.t.ppf(tail, df)) if df < math.inf else float(sps.norm.ppf(tail))
    half = q * math.sqrt(total)
    return estimate - half, estimate + half, float(df)


def hierarchical_interval(
    values: Sequence[float],
    replicates: np.ndarray | None,
    level: float = 0.95,
    within: Range | None = None,
) -> SeedInterval:
    """Interval of the mean over seeds: seeds, then samples within each seed.

    Parameters
    ----------
    values : (S,)
        Each seed's estimate on all samples.
    replicates : (S, B) or None
        The same estimates on B half-samples, column b using the same samples in every seed.
    within
        The range of the values (e.g. :func:`repdrift.analysis.intervals.drift_range`): the
        interval is drawn on its logit scale and cut to the population range.

    Notes
    -----
    With S >= 2 seeds the variance of the mean is ``s²/S`` (between-seed variance; it also
    holds each seed's own sampling noise) plus the half-sample variance of the mean over
    seeds (the sampling noise the seeds share, because every seed sees the same samples; the
paired estimate of :func:`repdrift.analysis.intervals.half_sample_variance`);
    the interval is ``mean ± t_ν`` with Welch–Satterthwaite ``ν`` (S − 1 degrees of freedom
    for the seed part, the samples' part treated as known). This counts each seed's own
    sampling noise twice, so it errs on the wide side. Without replicates only the seed part
    is used. With ``within`` the interval ``mean ± h`` is redrawn on the logit scale of the
    range (:func:`repdrift.analysis.intervals.delta_t_interval`). With one seed the interval is
    the half-sample interval of that run (``kind = "samples"``,
    :func:`repdrift.analysis.intervals.half_sample_interval`).
    """
    v = np.asarray(values, dtype=np.float64)
    est = float(v.mean())
    reps = None if replicates is None else np.atleast_2d(np.asarray(replicates, dtype=np.float64))
    if v.size < 2:
        if reps is None:
            return SeedInterval(est, math.nan, math.nan, level, math.nan, "samples")
        low, high = intervals.half_sample_interval(est, reps[0], level, within)
        return SeedInterval(est, low, high, level, math.inf, "samples")
    parts = [(float(v.var(ddof=1)) / v.size, v.size - 1.0)]
    if reps is not None:
        parts.append((intervals.half_sample_variance(reps.mean(axis=0)), math.inf))
    low, high, df = t_interval(est, parts, level)
    low, high = intervals.delta_t_interval(est, low, high, within)
    return SeedInterval(est, low, high, level, df, "seeds+samples")


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
    rng: np.random.Generator | None = None,
    level: float = 0.95,
    within: Range | None = None,
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
        Unused; kept so callers of the earlier seed-bootstrap interval keep working.
    within
        The range of one drift: the interval of the difference stays inside the range of a
        difference (:func:`repdrift.analysis.intervals.difference_range`).

    Notes
    -----
    With at least 2 seeds per group the p-value is Welch's t-test on per-seed drifts (seeds
    are the unit of replication) and the interval is hierarchical: the Welch variance of the
    difference of seed means plus the half-sample variance of that difference (the sampling
    noise all seeds share), with Satterthwaite degrees of freedom (see
    :func:`hierarchical_interval`). With a single seed in a group only sample-level noise can
    be assessed: the interval is the basic half-sample interval, the p-value inverts it
    (``test = "samples"``) and describes those two trainings, not the methods.
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
    shared = ra.mean(axis=0) - rb.mean(axis=0)  # half-sample b of the difference of means
    span = None if within is None else intervals.difference_range(within)
    if a.size >= 2 and b.size >= 2:
        w = welch(a, b)
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        shared_var = intervals.half_sample_variance(shared)
        parts = [(va, a.size - 1.0), (vb, b.size - 1.0), (shared_var, math.inf)]
        low, high, _ = t_interval(diff, parts, level)
        low, high = intervals.delta_t_interval(diff, low, high, span)
        return GroupComparison(diff, low, high, w.p, "welch", hedges_g(a, b), a.size, b.size)
    low, high = intervals.half_sample_interval(diff, shared, level, span)
    dev = shared - diff
    p = float(min(1.0, 2 * min(np.mean(dev >= diff), np.mean(dev <= diff)) + 1 / (n_rep + 1)))
    return GroupComparison(diff, low, high, p, "samples", math.nan, int(a.size), int(b.size))


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
