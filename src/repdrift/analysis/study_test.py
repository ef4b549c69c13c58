"""The study-level test of a method difference: method labels permuted within tasks.

The question "does method a drift less than method b in these tasks?" has seeds as its unit and
tasks as blocks. With 3 + 3 seeds per task a per-task variance rests on 4 degrees of freedom, so
any test that weights tasks by their estimated standard errors (a random-effects or
inverse-variance meta-analysis) chases noise and rejects a true null too often (simulated:
0.067 at 4 tasks, 0.08-0.10 at 8). This test does not rely on those estimates being right:

- **Statistic.** ``T = Σ_t w_t (mean a_t − mean b_t)`` with the task weight
  ``w_t = 1 / (s²_t (1/n_a + 1/n_b))``, where ``s²_t`` is the variance of the task's seeds
  *ignoring their method labels*, shrunk towards the other tasks' by as much as their spread
  is sampling noise (:func:`shrunk_variances`). Those variances are the same under every
  relabeling, so the weights are constants of the test: a task with 10× the seed spread counts
  about 100× less, tasks of equal spread count equally, and no weight depends on which seeds
  are called a or b.
- **Null and p-value.** Under "the two methods' drift has the same distribution in each task"
  every split of a task's seeds into n_a + n_b is equally likely, independently across tasks.
  The null distribution of ``T`` is the sum of the tasks' independent relabeling
  distributions: enumerated exactly while the product of the tasks' relabeling counts is at
  most :data:`MAX_EXACT_STUDY` (20⁴ = 160,000 for four tasks of 3 + 3 seeds), else
  :data:`N_DRAWS` Monte-Carlo draws with the observed labelling counted as one (Phipson &
  Smyth). Two-sided: ``p = P(|T| ≥ |T_obs|)``. The test is exact at any number of tasks and
  any spread, and its smallest attainable p-value (:attr:`StratifiedAnswer.p_floor`) is stated:
  2 / 400 = 0.005 for two tasks of 3 + 3 seeds, 2 / 36 = 0.056 for two tasks of 2 + 2.
- **Estimate and interval.** Under a common shift δ of method a's drift in every task, the test
  applied to ``a − δ`` is exact for each δ; the interval is every δ it does not reject at
  ``1 − level`` (test inversion), and the estimate the δ where ``T`` is zero (a weighted mean of
  the task differences). When no data could reject at that level (``p_floor > 1 − level``) the
  interval is unbounded and said so.

Scope: *these tasks* (blocked by task, seeds as the unit). Whether the difference holds for
tasks in general is a random-effects question about the spread of the task differences; with k
tasks it rests on k − 1 degrees of freedom, so :func:`across_tasks` answers it (a t-test of the
per-task differences) only from :data:`MIN_TASKS_GENERAL` tasks on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

#: Most splits of one task's seeds enumerated (C(14, 7) = 3432; C(20, 10) is sampled).
MAX_SPLITS = 5_000
#: Largest product of per-task relabeling counts enumerated exactly.
MAX_EXACT_STUDY = 250_000
#: Monte-Carlo draws of the null beyond it.
N_DRAWS = 19_999
#: Fewest tasks from which the answer is generalised to tasks in general (k − 1 = 4 df).
MIN_TASKS_GENERAL = 5


@dataclass(frozen=True)
class StratifiedAnswer:
    """The within-task permutation test of ``a − b`` over tasks (see the module doc)."""

    estimate: float
    low: float  # -inf / +inf when the test cannot reject at the level (see p_floor)
    high: float
    p: float
    p_floor: float  # smallest p-value these seed counts can give
    n_relabelings: int  # exact count, or Monte-Carlo draws + 1
    exact: bool
    weights: list[float]  # per task, normalised to sum 1 (at the estimate)
    level: float


def shrunk_variances(variances: np.ndarray, dfs: np.ndarray) -> np.ndarray:
    """Per-task seed variances shrunk towards their common (log) mean, by as much as their
    spread is sampling noise (empirical Bayes on the log scale, as limma does for genes).

    A variance from 6 seeds has a log that scatters by ``trigamma(df / 2)`` around the truth;
    when the tasks' log variances scatter no more than that, the tasks are weighted equally,
    and when they scatter more (one task 10× noisier), only the excess is believed. Every input
    is label-free, so the weights stay constants of the permutation test.
    """
    from scipy.special import polygamma

    variances = np.asarray(variances, np.float64)
    positive = variances > 0
    if positive.sum() < 2:
        return variances
    logs = np.log(variances[positive])
    noise = float(np.mean(polygamma(1, np.asarray(dfs, np.float64)[positive] / 2)))
    spread = float(np.var(logs, ddof=1))
    keep = 0.0 if spread <= noise else 1.0 - noise / spread  # share of the spread that is real
    out = variances.copy()
    out[positive] = np.exp(logs.mean() + keep * (logs - logs.mean()))
    return out


def splits(n_a: int, n_b: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Boolean (R, n_a + n_b) masks of method a: every split while there are at most
    :data:`MAX_SPLITS`, else the observed one (first n_a seeds) and random others."""
    n = n_a + n_b
    if math.comb(n, n_a) <= MAX_SPLITS:
        chosen = list(itertools.combinations(range(n), n_a))
        masks = np.zeros((len(chosen), n), dtype=bool)
        masks[np.repeat(np.arange(len(chosen)), n_a), np.asarray(chosen).ravel()] = True
        return masks, True
    keys = rng.random((MAX_SPLITS, n))
    masks = np.argsort(keys, axis=1) < n_a  # uniform random splits
    masks[0] = np.arange(n) < n_a
    return masks, False


class _Null:
    """The relabeling distribution of T over tasks, for any shift δ of method a.

    Per task it holds the split masks; the draws (Monte-Carlo) are fixed once, so p(δ) comes
    from one randomised test for every δ and the inverted interval is consistent.
    """

    def __init__(self, groups: Sequence[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator):
        self.groups = [(np.asarray(a, np.float64), np.asarray(b, np.float64)) for a, b in groups]
        split = [splits(len(a), len(b), rng) for a, b in self.groups]
        self.masks = [m for m, _ in split]
        sizes = [len(m) for m in self.masks]
        total = math.prod(sizes)
        self.exact = all(e for _, e in split) and total <= MAX_EXACT_STUDY
        if self.exact:
            self.draws = None
            self.count = total
        else:
            draws = np.stack([rng.integers(0, s, N_DRAWS) for s in sizes], axis=1)
            # the observed labelling (first n_a seeds as a: split 0 of every task) is a draw
            self.draws = np.vstack([np.zeros((1, len(sizes)), dtype=np.int64), draws])
            self.count = N_DRAWS + 1

    def _per_task(self, delta: float) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Per task: the relabeled differences (R_t,), then the observed differences and the
        label-free weights (k,) at shift ``delta``."""
        diffs, observed, variances, dfs, sizes = [], [], [], [], []
        for (a, b), masks in zip(self.groups, self.masks, strict=True):
            z = np.concatenate([a - delta, b])
            na, nb = len(a), len(b)
            diffs.append(masks @ z / na - (~masks) @ z / nb)
            observed.append(float(z[:na].mean() - z[na:].mean()))
            variances.append(float(np.var(z, ddof=1)))
            dfs.append(na + nb - 1.0)
            sizes.append(1 / na + 1 / nb)
        shrunk = shrunk_variances(np.array(variances), np.array(dfs))
        with np.errstate(divide="ignore"):
            weights = np.where(shrunk > 0, 1.0 / (shrunk * np.array(sizes)), 0.0)
        return diffs, np.array(observed), weights

    def statistic(self, delta: float) -> float:
        _, observed, weights = self._per_task(delta)
        return float(weights @ observed)

    def null(self, delta: float) -> tuple[np.ndarray, float]:
        """The null values of T (R,) and the observed T at shift ``delta``."""
        diffs, observed, weights = self._per_task(delta)
        if self.exact:
            values = np.zeros(1)
            for w, d in zip(weights, diffs, strict=True):
                values = (values[:, None] + w * d[None, :]).ravel()
        else:
            assert self.draws is not None
            values = sum(
                w * d[self.draws[:, t]] for t, (w, d) in enumerate(zip(weights, diffs, strict=True))
            )
        return np.asarray(values, np.float64), float(weights @ observed)

    def p(self, delta: float) -> float:
        values, observed = self.null(delta)
        tol = 1e-9 * max(1.0, float(np.abs(values).max(initial=0.0)))
        return float(np.mean(np.abs(values) >= abs(observed) - tol))

    def floor(self) -> float:
        values, _ = self.null(0.0)
        top = float(np.abs(values).max(initial=0.0))
        return float(np.mean(np.abs(values) >= top - 1e-9 * max(1.0, top)))


def _root(f, low: float, high: float, iters: int = 60) -> float:
    """A zero of a decreasing ``f`` on [low, high] (f(low) >= 0 >= f(high)) by bisection."""
    for _ in range(iters):
        mid = 0.5 * (low + high)
        if f(mid) > 0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _bound(null: _Null, start: float, step: float, alpha: float, direction: int) -> float:
    """The δ beyond ``start`` (in ``direction``) where p(δ) first falls to ``alpha`` (to a
    thousandth of ``step``, about the estimate's standard error)."""
    tol = 1e-3 * step
    inside, outside = start, start + direction * step
    for _ in range(60):
        if null.p(outside) <= alpha:
            break
        inside, outside = outside, outside + direction * step
        step *= 2
    else:
        return direction * math.inf
    for _ in range(50):
        mid = 0.5 * (inside + outside)
        if null.p(mid) <= alpha:
            outside = mid
        else:
            inside = mid
        if abs(outside - inside) <= tol:
            break
    return 0.5 * (inside + outside)


def stratified_answer(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    interval: bool = True,
) -> StratifiedAnswer:
    """Test ``a − b`` over tasks by permuting method labels within tasks (see the module doc).

    Parameters
    ----------
    groups
        Per task, the per-seed values of method a (n_a,) and of method b (n_b,); at least 2
        seeds of each.
    level
        Confidence level of the interval; the test's level is ``1 − level``.
    rng
        Draws of the Monte-Carlo null (used only beyond :data:`MAX_EXACT_STUDY` relabelings).
    interval
        Invert the test for the interval (NaN bounds when False: p-value and estimate only,
        as simulations of the error rate need).
    """
    if not groups or any(len(a) < 2 or len(b) < 2 for a, b in groups):
        raise ValueError("every task needs at least 2 seeds of each method")
    null = _Null(groups, rng if rng is not None else np.random.default_rng(0))
    diffs = [float(np.mean(a) - np.mean(b)) for a, b in null.groups]
    lo, hi = min(diffs), max(diffs)
    estimate = lo if lo == hi else _root(null.statistic, lo, hi)
    _, _, weights = null._per_task(estimate)
    alpha = 1 - level
    floor = null.floor()
    if not interval:
        low = high = math.nan
    elif floor > alpha:
        low, high = -math.inf, math.inf
    else:
        total = float(weights.sum())
        step = 1.0 / math.sqrt(total) if total > 0 else max(abs(hi - lo), 1e-12)
        low = _bound(null, estimate, step, alpha, -1)
        high = _bound(null, estimate, step, alpha, +1)
    norm = weights / weights.sum() if weights.sum() > 0 else weights
    return StratifiedAnswer(
        estimate=float(estimate), low=float(low), high=float(high), p=null.p(0.0),
        p_floor=floor, n_relabelings=int(null.count), exact=null.exact,
        weights=[float(w) for w in norm], level=level,
    )  # fmt: skip


@dataclass(frozen=True)
class AcrossTasks:
    """Tasks in general: a t-test of the per-task differences (random task effects)."""

    n_tasks: int
    estimate: float
    low: float
    high: float
    df: float
    p: float


def across_tasks(diffs: Sequence[float], level: float = 0.95) -> AcrossTasks | None:
    """One-sample t-test of the per-task differences (k − 1 df), or None below
    :data:`MIN_TASKS_GENERAL` tasks, where it could say little about tasks in general."""
    d = np.asarray([x for x in diffs if np.isfinite(x)], np.float64)
    if len(d) < MIN_TASKS_GENERAL:
        return None
    res = sps.ttest_1samp(d, 0.0)
    ci = res.confidence_interval(level)
    return AcrossTasks(len(d), float(d.mean()), float(ci.low), float(ci.high),
                       float(len(d) - 1), float(res.pvalue))  # fmt: skip


__all__ = [
    "MAX_EXACT_STUDY",
    "MAX_SPLITS",
    "MIN_TASKS_GENERAL",
    "N_DRAWS",
    "AcrossTasks",
    "StratifiedAnswer",
    "across_tasks",
    "shrunk_variances",
    "splits",
    "stratified_answer",
]
