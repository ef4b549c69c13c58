"""Intervals of the right width, inside the range of what they describe.

Two corrections to the plain half-sample intervals of :mod:`repdrift.analysis.stats`, both
measured by simulation (``benchmarks/interval_coverage.py``; table in docs/statistics.md):

**Width.** A half-sample replicate ``θ_S`` of a U-statistic deviates from the full-sample
value ``θ̂`` by ``Var(θ_S − θ̂) = Var(θ_{n/2}) − Var(θ̂_n)``. Writing the variance of a
statistic on ``k`` samples as ``a/k + b/k²`` (``b`` the degenerate, second-order part, large
for debiased CKA when the width is large or the signal weak), that is ``a/n + 3b/n²`` against
the ``a/n + b/n²`` wanted: the Shao–Wu factor ``(n − m)/m`` is 1 for halves, so no rescaling
can remove the excess, which made 95% intervals of ``cka_debiased`` cover 99-100%. Two
*disjoint* half-samples ``S, S'`` are independent, and ``Cov(θ_S, θ̂) = Var(θ̂)`` for
U-statistics, so ``−E[(θ_S − θ̂)(θ_S' − θ̂)] = Var(θ̂)`` exactly: :func:`half_samples
<repdrift.analysis.stats.half_samples>` draws its halves in disjoint pairs and
:func:`half_sample_variance` averages that product over the pairs. The deviations of the
basic interval are shrunk towards their mean by ``sqrt(paired / plain)`` (kept in
``[MIN_SHRINK, 1]``), which keeps their shape and their bias correction.

**Range.** A similarity has a range (the spec's ``bounds``; its population value may have a
narrower one, ``population_bounds``), so drift ``1 − s`` has one too. Intervals are computed
on the logit scale of the estimator's range, ``z = logit((x − lo)/(hi − lo))`` (for a
correlation-like range [−1, 1] that is Fisher's z up to a factor −2), and mapped back, then
cut to the population range (cutting never loses coverage: the population value is inside
it). A value on the edge of its range (drift exactly 0: an unchanged layer) cannot be
transformed; its interval is computed as it is and cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from repdrift.metrics import registry

#: Smallest factor the paired half-sample variance may shrink the deviations by: a variance
#: ratio of 1/4. For the U-statistic above the ratio is 1/3 at most when ``b`` dominates;
#: noisier ratios than that are not trusted.
MIN_SHRINK = 0.5
#: Fewest disjoint pairs of half-samples for the paired variance; with fewer the plain one.
MIN_PAIRS = 10


@dataclass(frozen=True)
class Range:
    """Where a quantity lives: estimates in ``[low, high]``, the population value in
    ``[target_low, target_high]`` (inside it)."""

    low: float
    high: float
    target_low: float
    target_high: float

    def inside(self, x: np.ndarray | float) -> bool:
        """Whether every value is strictly inside the estimator's range (transformable)."""
        x = np.asarray(x, dtype=np.float64)
        return bool(np.all((x > self.low) & (x < self.high)))

    def to_scale(self, x: np.ndarray | float) -> np.ndarray:
        """``logit((x − low)/(high − low))``."""
        return logit((np.asarray(x, dtype=np.float64) - self.low) / (self.high - self.low))

    def from_scale(self, z: float) -> float:
        """Inverse of :meth:`to_scale`."""
        return float(self.low + (self.high - self.low) * expit(z))

    def slope(self, x: float) -> float:
        """Derivative of :meth:`to_scale` at ``x`` (the delta method's factor)."""
        return (self.high - self.low) / ((x - self.low) * (self.high - x))

    def cut(self, low: float, high: float) -> tuple[float, float]:
        """An interval cut to the population range (NaN stays NaN)."""
        return (
            low if math.isnan(low) else min(max(low, self.target_low), self.target_high),
            high if math.isnan(high) else max(min(high, self.target_high), self.target_low),
        )


def drift_range(bounds: tuple[float, float], target: tuple[float, float]) -> Range:
    """The :class:`Range` of drift ``1 − s`` for a similarity with estimator range ``bounds``
    and population range ``target`` (:attr:`repdrift.metrics.spec.MetricSpec.target_bounds`):
    ``[1 − hi, 1 − lo]``."""
    return Range(1 - bounds[1], 1 - bounds[0], 1 - target[1], 1 - target[0])


def metric_drift_range(name: str) -> Range:
    """The :class:`Range` of drift for the registered metric ``name``."""
    spec = registry.get(name)
    return drift_range(spec.bounds, spec.target_bounds)


def difference_range(r: Range) -> Range:
    """The range of a difference of two quantities ranged ``r`` (drift of A − drift of B)."""
    w, tw = r.high - r.low, r.target_high - r.target_low
    return Range(-w, w, -tw, tw)


def half_sample_variance(replicates: np.ndarray) -> float:
    """Sampling variance of a full-sample estimate from half-sample replicates in disjoint pairs.

    Parameters
    ----------
    replicates : (B,)
        Replicates on :func:`~repdrift.analysis.stats.half_samples` (rows ``2k`` and
        ``2k + 1`` disjoint). Non-finite pairs are dropped.

    Returns
    -------
    ``−mean_k (r_2k − r̄)(r_2k+1 − r̄)``, kept in ``[MIN_SHRINK² v, v]`` with ``v`` the plain
    variance of the replicates (which it equals for a mean and undercuts for a U-statistic,
    see the module notes). The plain variance with fewer than ``MIN_PAIRS`` pairs; NaN with
    fewer than 10 finite replicates.
    """
    r = np.asarray(replicates, dtype=np.float64)
    pairs = r[: r.size // 2 * 2].reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    finite = r[np.isfinite(r)]
    if finite.size < 10:
        return math.nan
    plain = float(finite.var(ddof=1))
    if len(pairs) < MIN_PAIRS or plain == 0:
        return plain
    dev = pairs - pairs.mean()
    paired = float(-np.mean(dev[:, 0] * dev[:, 1])) * dev.size / (dev.size - 1)  # as ddof=1
    return min(max(paired, MIN_SHRINK**2 * plain), plain)


def half_sample_interval(
    estimate: float,
    replicates: np.ndarray,
    level: float = 0.95,
    within: Range | None = None,
    *,
    paired: bool = True,
) -> tuple[float, float]:
    """Basic interval from paired half-samples, its width from :func:`half_sample_variance`.

    Parameters
    ----------
    estimate
        The statistic on all samples.
    replicates : (B,)
        The statistic on the half-samples of :func:`~repdrift.analysis.stats.half_samples`.
    level
        Confidence level.
    within
        The quantity's range: the interval is computed on its logit scale when the estimate
        and every replicate are strictly inside, and cut to the population range either way.
    paired
        Whether to narrow the deviations to the paired variance. The argument holds for a
        U-statistic in the resampled units (samples); token-level CKA resamples blocks of
        samples of unequal token counts, a ratio of sums over blocks, and keeps the plain
        spread (``False``).

    Returns
    -------
    ``(low, high)``: ``θ̂ − q_hi, θ̂ − q_lo`` with ``q`` the quantiles of the deviations
    ``θ* − θ̂`` shrunk about their mean by ``sqrt(paired / plain variance)``; NaN with fewer
    than 10 finite replicates.
    """
    r = np.asarray(replicates, dtype=np.float64)
    keep = np.isfinite(r)
    if keep.sum() < 10:
        return math.nan, math.nan
    scaled = within is not None and within.inside(estimate) and within.inside(r[keep])
    if scaled:
        z_hat, z = float(within.to_scale(estimate)), np.full_like(r, np.nan)
        z[keep] = within.to_scale(r[keep])
    else:
        z_hat, z = float(estimate), r
    dev = z[np.isfinite(z)] - z_hat
    plain = float(dev.var(ddof=1)) if dev.size > 1 else 0.0
    shrink = math.sqrt(half_sample_variance(z) / plain) if paired and plain > 0 else 1.0
    dev = dev.mean() + shrink * (dev - dev.mean())
    q_lo, q_hi = np.quantile(dev, [(1 - level) / 2, (1 + level) / 2])
    low, high = z_hat - float(q_hi), z_hat - float(q_lo)
    if within is None:
        return low, high
    if scaled:
        low, high = within.from_scale(low), within.from_scale(high)
    return within.cut(low, high)


def delta_t_interval(
    estimate: float, low: float, high: float, within: Range | None
) -> tuple[float, float]:
    """A symmetric interval ``estimate ± h`` redrawn on the logit scale of ``within``.

    ``h`` becomes ``h · g'(estimate)`` on the scale ``g`` (the delta method, same t quantile
    and degrees of freedom), which is mapped back: the interval stays inside the range and
    leans away from the nearer edge. Estimates on or outside the edge of the range keep the
    interval as it is; either way it is cut to the population range.
    """
    if within is None or not (np.isfinite(low) and np.isfinite(high)):
        return low, high
    if not within.inside(estimate) or high == low:
        return within.cut(low, high)
    z, half = float(within.to_scale(estimate)), (high - low) / 2 * within.slope(estimate)
    return within.cut(within.from_scale(z - half), within.from_scale(z + half))
