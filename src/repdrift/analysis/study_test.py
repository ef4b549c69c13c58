"""The study-level test of a method difference: seeds as the unit, tasks as blocks.

The question "does method a drift less than method b in these tasks?" is answered from one value
per training seed (its block-averaged drift). Two things make this hard at the study's design
(3 + 3 seeds per task, 2-8 tasks), both simulated in benchmarks/calibration.py:

- a per-task variance rests on ~4 degrees of freedom, so weighting tasks by their estimated
  standard errors (the random-effects meta-analysis used before) chases noise: it rejected a
  true null 6.5-10.7 % of the time at 4-8 tasks;
- the two methods' seeds need not spread alike (LoRA's often spread less): a permutation of the
  method labels, exact when they do, then rejects a true "same mean" 6.4-8.3 % of the time
  (spreads 4-10× apart), and studentising the permuted statistic does not repair that at 3 + 3.

The answer therefore rests on a Welch-type test of a fixed-weight combination:

- **Statistic.** ``D = Σ_t w_t (mean a_t − mean b_t) / Σ_t w_t`` with the task weight
  ``w_t = 1 / (s²_t (1/n_a + 1/n_b))``, where ``s²_t`` is the variance of the task's seeds
  *ignoring their method labels*, shrunk towards the other tasks' by as much as their spread is
  sampling noise (:func:`shrunk_variances`). No weight depends on which seeds are called a or
  b: a task with 10× the seed spread counts about 100× less, tasks of equal spread count equally.
- **Its variance** is ``Σ_t c_t² (s²_a,t / n_a + s²_b,t / n_b)`` (``c_t = w_t / Σ w``), each
  method's own variance in each task; the reference is Student's t with Satterthwaite's
  degrees of freedom over those 2k variance components (each n − 1 df). Simulated at 3 + 3
  seeds, 1-8 tasks, equal, 4× and 10× method spreads and 10× task spreads: false-positive
  rate 0.032-0.058 at α = 0.05.
- **Estimate and interval.** Testing "a − b = δ in every task" the same way, with the weights
  taken from ``a − δ`` and ``b`` (so that at the true δ nothing but noise decides them), the
  interval is every δ not rejected at ``1 − level`` and the estimate the δ where the weighted
  difference is zero. Weights taken at δ = 0 would shrink the estimate towards the tasks that
  moved least (their label-free variance holds less of the effect): coverage 0.84-0.95;
  inverted, 0.95-0.97.
- **Beside it, the exact permutation** of the method labels within tasks (the same weighted
  statistic, every relabeling up to :data:`MAX_EXACT_STUDY`, else :data:`N_DRAWS` Monte-Carlo
  draws with the observed labelling counted): exact when the methods spread alike, and with
  a smallest attainable p-value (:attr:`StratifiedAnswer.p_floor`: 2 / 400 = 0.005 for two tasks
  of 3 + 3 seeds, 2 / 36 = 0.056 for two tasks of 2 + 2) that says what these seeds can show
  without assuming normal drift.

Scope: *these tasks*. Whether the difference holds for tasks in general is a random-effects
question about the spread of the task differences; with k tasks it rests on k − 1 degrees of
freedom, so :func:`across_tasks` answers it (a t-test of the per-task differences) only from
:data:`MIN_TASKS_GENERAL` tasks on.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from scipy.optimize import brentq
from scipy.special import polygamma

#: Most relabelings of one task's seeds enumerated exactly; beyond it, Monte-Carlo.
MAX_EXACT = 20_000
#: Monte-Carlo relabelings of one task when the exact count is too large.
N_MONTE_CARLO = 9_999
#: Largest product of per-task relabeling counts enumerated exactly.
MAX_EXACT_STUDY = 250_000
#: Monte-Carlo draws of the null beyond it.
N_DRAWS = 19_999
#: Fewest tasks from which the answer is generalised to tasks in general (k − 1 = 4 df).
MIN_TASKS_GENERAL = 5


@dataclass(frozen=True)
class StratifiedAnswer:
    """The study-level test of ``a − b`` over tasks (see the module doc)."""

    estimate: float  # precision-weighted mean of the task differences
    low: float
    high: float
    se: float
    df: float  # Satterthwaite, over the methods' per-task variances
    p: float  # Welch-type t-test: the answer's p-value
    p_perm: float  # exact (or Monte-Carlo) permutation of the labels within tasks
    p_floor: float  # smallest p-value the permutation can give at these seed counts
    n_relabelings: int  # exact count, or Monte-Carlo draws + 1
    exact: bool
    weights: list[float]  # per task, normalised to sum 1
    level: float


def shrunk_variances(variances: np.ndarray, dfs: np.ndarray) -> np.ndarray:
    """Per-task seed variances shrunk towards their common (log) mean, by as much as their
    spread is sampling noise (empirical Bayes on the log scale, as limma does for genes).

    A variance from 6 seeds has a log that scatters by ``trigamma(df / 2)`` around the truth;
    when the tasks' log variances scatter no more than that, the tasks are weighted equally,
    and when they scatter more (one task 10× noisier), only the excess is believed. Every input
    is label-free, so the weights stay constants of the permutation test.
    """
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


def relabelings(n_a: int, n_b: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Boolean (R, n_a + n_b) masks of group a: every split (exact) or random ones."""
    n = n_a + n_b
    if math.comb(n, n_a) <= MAX_EXACT:
        masks = np.zeros((math.comb(n, n_a), n), dtype=bool)
        for i, chosen in enumerate(itertools.combinations(range(n), n_a)):
            masks[i, list(chosen)] = True
        return masks, True
    masks = np.zeros((N_MONTE_CARLO + 1, n), dtype=bool)
    masks[0, :n_a] = True  # the observed labelling counts as one draw (Phipson & Smyth)
    for i in range(1, N_MONTE_CARLO + 1):
        masks[i, rng.choice(n, n_a, replace=False)] = True
    return masks, False


def permutation_floor(n_a: int, n_b: int, exact: bool) -> float:
    """Smallest attainable two-sided p-value of a relabeling test at these seed counts."""
    if not exact:
        return 1 / (N_MONTE_CARLO + 1)
    return (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)


class _Permutation:
    """The statistic ``Σ_t w_t (mean a_t − mean b_t)`` under every relabeling within tasks.

    Per task it holds the split masks; the weights are given (the answer's at δ = 0, which no
    label decides, so the permutation is exact when the methods spread alike); beyond
    :data:`MAX_EXACT_STUDY` relabelings, fixed Monte-Carlo draws of one split per task.
    """

    def __init__(
        self,
        groups: Sequence[tuple[np.ndarray, np.ndarray]],
        weights: np.ndarray,
        rng: np.random.Generator,
    ):
        self.groups = groups
        self.weights = weights
        split = [relabelings(len(a), len(b), rng) for a, b in groups]
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

    def null(self) -> np.ndarray:
        """The statistic under every relabeling (or each draw), (R,)."""
        per_task = []
        for (a, b), masks in zip(self.groups, self.masks, strict=True):
            z = np.concatenate([a, b])
            per_task.append(masks @ z / len(a) - (~masks) @ z / len(b))
        if self.exact:
            values = np.zeros(1)
            for w, d in zip(self.weights, per_task, strict=True):
                values = (values[:, None] + w * d[None, :]).ravel()
            return values
        assert self.draws is not None
        return np.asarray(sum(
            w * d[self.draws[:, t]] for t, (w, d) in enumerate(zip(self.weights, per_task, strict=True))
        ), np.float64)  # fmt: skip

    def p_and_floor(self) -> tuple[float, float]:
        """Two-sided p-value of the observed labelling, and the smallest attainable one."""
        values = np.abs(self.null())
        observed = float(values[0])  # split 0 of every task is the observed labelling
        top = float(values.max(initial=0.0))
        tol = 1e-9 * max(1.0, top)
        return float(np.mean(values >= observed - tol)), float(np.mean(values >= top - tol))


def stratified_answer(
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    interval: bool = True,
) -> StratifiedAnswer:
    """Test ``a − b`` over tasks, blocked by task with seeds as the unit (see the module doc).

    Parameters
    ----------
    groups
        Per task, the per-seed values of method a (n_a,) and of method b (n_b,); at least 2
        seeds of each.
    level
        Confidence level of the interval; the test's level is ``1 − level``.
    rng
        Draws of the Monte-Carlo permutation null (only beyond :data:`MAX_EXACT_STUDY`).
    interval
        Invert the test for the interval (NaN bounds when False, as simulations of the error
        rate need only the p-value).
    """
    if not groups or any(len(a) < 2 or len(b) < 2 for a, b in groups):
        raise ValueError("every task needs at least 2 seeds of each method")
    groups = [(np.asarray(a, np.float64), np.asarray(b, np.float64)) for a, b in groups]
    test = _WeightedWelch(groups)
    # the weights at δ = 0 are label-free, so the permutation beside the answer is exact
    perm = _Permutation(groups, test.weights(0.0), rng or np.random.default_rng(0))
    lo, hi = float(test.diffs.min()), float(test.diffs.max())
    estimate = lo if lo == hi else float(brentq(lambda d: test.at(d)[0], lo, hi, xtol=1e-14))
    _, _, df, p0 = test.at(0.0)
    _, se_hat, _, _ = test.at(estimate)
    alpha = 1 - level
    if not interval:
        low = high = math.nan
    elif se_hat > 0:
        step = se_hat
        low = _bound(test, estimate, step, alpha, -1)
        high = _bound(test, estimate, step, alpha, +1)
    else:  # every seed of a method alike in every task: nothing to test against
        low = high = estimate
    p_perm, floor = perm.p_and_floor()
    return StratifiedAnswer(
        estimate=float(estimate), low=float(low), high=float(high), se=float(se_hat), df=df,
        p=p0, p_perm=p_perm, p_floor=floor, n_relabelings=int(perm.count), exact=perm.exact,
        weights=[float(x) for x in test.weights(estimate)], level=level,
    )  # fmt: skip


class _WeightedWelch:
    """The Welch-type test of "method a differs from b by δ in every task", for any δ.

    At δ the weights are the label-free seed variances of ``a − δ`` and ``b`` (shrunk, see
    :func:`shrunk_variances`): under that hypothesis no label decides them, so the test at the
    true δ behaves as at a true null (simulated: interval coverage 0.95-0.97).
    """

    def __init__(self, groups: Sequence[tuple[np.ndarray, np.ndarray]]):
        self.k = len(groups)
        self.diffs = np.array([a.mean() - b.mean() for a, b in groups])
        self.parts_a = np.array([np.var(a, ddof=1) / len(a) for a, _ in groups])
        self.parts_b = np.array([np.var(b, ddof=1) / len(b) for _, b in groups])
        self.df_a = np.array([len(a) - 1.0 for a, _ in groups])
        self.df_b = np.array([len(b) - 1.0 for _, b in groups])
        self.dfs = self.df_a + self.df_b + 1.0
        self.sizes = np.array([1 / len(a) + 1 / len(b) for a, b in groups])
        # var(concat(a − δ, b)) = v0 − 2 δ c + δ² u, with the indicator of a's seeds
        z = [np.concatenate([a, b]) for a, b in groups]
        ind = [np.r_[np.ones(len(a)), np.zeros(len(b))] for a, b in groups]
        self.v0 = np.array([np.var(x, ddof=1) for x in z])
        self.c = np.array([np.cov(x, i)[0, 1] for x, i in zip(z, ind, strict=True)])
        self.u = np.array([np.var(i, ddof=1) for i in ind])

    def weights(self, delta: float) -> np.ndarray:
        """Normalised task weights (k,) at shift ``delta``."""
        variances = np.maximum(self.v0 - 2 * delta * self.c + delta**2 * self.u, 0.0)
        shrunk = shrunk_variances(variances, self.dfs)
        if not (shrunk > 0).all():
            return np.full(self.k, 1 / self.k)
        w = 1.0 / (shrunk * self.sizes)
        return w / w.sum()

    def at(self, delta: float) -> tuple[float, float, float, float]:
        """The weighted difference minus ``delta``, its standard error, Satterthwaite df and
        the two-sided p-value of "the difference is delta"."""
        c = self.weights(delta)
        pa, pb = c**2 * self.parts_a, c**2 * self.parts_b
        var = float(pa.sum() + pb.sum())
        est = float(c @ (self.diffs - delta))
        if var <= 0:
            return est, 0.0, math.inf, 1.0 if est == 0 else 0.0
        df = var**2 / float((pa**2 / self.df_a).sum() + (pb**2 / self.df_b).sum())
        se = math.sqrt(var)
        return est, se, float(df), float(2 * sps.t.sf(abs(est) / se, df))


def _bound(test: _WeightedWelch, start: float, step: float, alpha: float, direction: int) -> float:
    """The δ beyond ``start`` (in ``direction``) where the test's p-value falls to ``alpha``."""
    inside, outside = start, start + direction * step
    for _ in range(60):
        if test.at(outside)[3] <= alpha:
            break
        inside, outside = outside, outside + direction * step
        step *= 2
    else:
        return direction * math.inf
    return float(brentq(lambda d: test.at(d)[3] - alpha, min(inside, outside),
                        max(inside, outside), xtol=1e-12, rtol=1e-10))  # fmt: skip


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
    "MAX_EXACT",
    "MAX_EXACT_STUDY",
    "MIN_TASKS_GENERAL",
    "N_DRAWS",
    "N_MONTE_CARLO",
    "AcrossTasks",
    "StratifiedAnswer",
    "across_tasks",
    "permutation_floor",
    "relabelings",
    "shrunk_variances",
    "stratified_answer",
]
