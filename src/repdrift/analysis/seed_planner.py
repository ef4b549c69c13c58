"""How many seeds would answer the question? Power of the study-level answer, simulated.

From the seeds at hand, each task's seed-to-seed spread is fitted (the within-method variance
of its per-seed drift, pooled over the two methods). A study of the same tasks is then
simulated many times with ``n + n`` seeds per task and a difference ``effect`` between the
methods in every task, and each simulated study gets the study-level test
(:mod:`repdrift.analysis.study_test`: the Welch-type test of the task differences weighted by
label-free seed precision). The share of studies it rejects at ``alpha`` is the power; the
fewest seeds per method reaching ``target`` power is what the plan recommends.

The spreads are estimated from few seeds, so the power is uncertain: it is also simulated with
every task's spread scaled to the ends of an 80 % confidence interval of their common scale
(chi-square with the pooled within-method degrees of freedom), which gives the range shown
beside it. Tasks' baselines do not enter (the test is blocked by task); the effect is taken as
the same in every task.

The simulation vectorises the test over studies (the same weights, variances and
Satterthwaite df as :func:`~repdrift.analysis.study_test.stratified_answer`); a test checks
the power against a direct simulation through :func:`repdrift.analysis.answer.study_answer`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as sps

from repdrift.analysis.stored_headline import headline_of
from repdrift.analysis.study_test import shrunk_variances
from repdrift.errors import InputError
from repdrift.store.results import Results, load_results

#: Simulated studies per design.
N_STUDIES = 2000
#: Most seeds per method the plan considers.
MAX_SEEDS = 30


@dataclass(frozen=True)
class SeedPlan:
    """The power of the study-level answer now and the seeds that would reach ``target``."""

    effect: float  # difference a − b simulated in every task (its absolute value)
    effect_source: str  # "observed" or "given"
    alpha: float
    target: float
    n_tasks: int
    seeds_now: tuple[int, int]  # fewest seeds of each method over the tasks
    power_now: float
    power_now_range: tuple[float, float]  # with the spreads at their 80 % confidence ends
    seeds_needed: int | None  # per method; None: not within MAX_SEEDS
    seeds_needed_range: tuple[int | None, int | None]
    seed_sd: list[float]  # fitted seed-to-seed sd per task


def seed_sd(values_a: Sequence[float], values_b: Sequence[float]) -> tuple[float, float]:
    """A task's seed-to-seed sd (within-method, pooled over the two methods) and its df."""
    a, b = np.asarray(values_a, np.float64), np.asarray(values_b, np.float64)
    df = len(a) + len(b) - 2
    ss = float(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum())
    return math.sqrt(ss / df) if df > 0 else math.nan, float(df)


def simulated_power(
    sds: Sequence[float],
    n_a: int,
    n_b: int,
    effect: float,
    *,
    alpha: float = 0.05,
    n_studies: int = N_STUDIES,
    rng: np.random.Generator,
) -> float:
    """Share of simulated studies (normal seeds, sd ``sds[t]`` in task t, method a shifted by
    ``effect``) in which the study-level test rejects at ``alpha`` (one task: Welch's test)."""
    k = len(sds)
    dfs = np.full(k, n_a + n_b - 1.0)
    diffs, pooled, var_a, var_b = (np.empty((n_studies, k)) for _ in range(4))
    for t, sd in enumerate(sds):
        a = rng.normal(effect, sd, size=(n_studies, n_a))
        b = rng.normal(0.0, sd, size=(n_studies, n_b))
        diffs[:, t] = a.mean(axis=1) - b.mean(axis=1)
        pooled[:, t] = np.concatenate([a, b], axis=1).var(axis=1, ddof=1)
        var_a[:, t], var_b[:, t] = a.var(axis=1, ddof=1), b.var(axis=1, ddof=1)
    weights = 1.0 / np.array([shrunk_variances(v, dfs) for v in pooled])
    c = weights / weights.sum(axis=1, keepdims=True)
    parts_a, parts_b = c**2 * var_a / n_a, c**2 * var_b / n_b
    var = parts_a.sum(axis=1) + parts_b.sum(axis=1)
    df = var**2 / ((parts_a**2).sum(axis=1) / (n_a - 1) + (parts_b**2).sum(axis=1) / (n_b - 1))
    t_stat = np.abs((c * diffs).sum(axis=1)) / np.sqrt(var)
    return float(np.mean(2 * sps.t.sf(t_stat, df) <= alpha))


def _needed(sds: Sequence[float], effect: float, alpha: float, target: float, start: int,
            rng: np.random.Generator) -> int | None:  # fmt: skip
    """Fewest seeds per method (from ``start``) whose simulated power reaches ``target``."""
    n = start
    while n <= MAX_SEEDS:
        if simulated_power(sds, n, n, effect, alpha=alpha, rng=rng) >= target:
            return n
        n = n + 1 if n < 8 else n + 2
    return None


def plan_from_seeds(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    effect: float,
    effect_source: str = "given",
    alpha: float = 0.05,
    target: float = 0.8,
    seed: int = 0,
) -> SeedPlan:
    """Power of the study-level answer for ``effect`` at the seeds at hand, and the seeds per
    method that would reach ``target`` power (see the module doc).

    Parameters
    ----------
    groups
        Per task, the per-seed drift of method a and of method b (at least 2 seeds each).
    effect
        The difference a − b to detect (its size is used).
    """
    if not groups or any(len(a) < 2 or len(b) < 2 for a, b in groups):
        raise ValueError("planning needs at least 2 seeds of each method in every task")
    fitted = [seed_sd(a, b) for a, b in groups]
    sds = [sd for sd, _ in fitted]
    df = sum(d for _, d in fitted)
    # the spreads' common scale at the ends of its 80 % confidence interval
    scales = (math.sqrt(df / sps.chi2.ppf(0.9, df)), math.sqrt(df / sps.chi2.ppf(0.1, df)))
    n_a = min(len(a) for a, _ in groups)
    n_b = min(len(b) for _, b in groups)
    size = abs(float(effect))

    def power(scale: float) -> float:
        rng = np.random.default_rng(seed)
        return simulated_power([s * scale for s in sds], n_a, n_b, size, alpha=alpha, rng=rng)

    def needed(scale: float) -> int | None:
        rng = np.random.default_rng(seed)
        return _needed([s * scale for s in sds], size, alpha, target, 2, rng)

    return SeedPlan(
        effect=size, effect_source=effect_source, alpha=alpha, target=target,
        n_tasks=len(groups), seeds_now=(n_a, n_b), power_now=power(1.0),
        power_now_range=(power(scales[1]), power(scales[0])),
        seeds_needed=needed(1.0), seeds_needed_range=(needed(scales[0]), needed(scales[1])),
        seed_sd=sds,
    )  # fmt: skip


def plan_seeds(
    results: str | Path | Results,
    *,
    effect: float | None = None,
    alpha: float = 0.05,
    target: float = 0.8,
    metric: str | None = None,
    seed: int = 0,
) -> SeedPlan:
    """How many seeds would answer "does method a drift less than method b?" in this study.

    Parameters
    ----------
    results
        A results folder written by :func:`repdrift.compare` (or loaded results).
    effect
        The difference in block-averaged drift to detect; default: the one the study-level
        answer observed.
    alpha, target
        Level of the study-level test and the power to reach.
    metric
        Metric of the answer (default: the results' default metric).
    seed
        Seed of the simulation.

    Raises
    ------
    InputError
        No task has at least 2 seeds of each method, or the results predate per-seed values
        (re-run compare).
    """
    res = results if isinstance(results, Results) else load_results(results)
    h = headline_of(res, metric)
    rows = h.answers[h.answers["test"] == "welch"] if not h.answers.empty else h.answers
    if rows.empty or h.study is None:
        raise InputError(
            "no seed-level answer to plan from: it needs at least 2 training seeds of each "
            "method in a task"
        )
    if "values_a" not in rows:
        raise InputError(
            "these results do not hold the per-seed drift the plan needs (written by an older "
            "repdrift); run repdrift compare again"
        )
    groups = [(list(r.values_a), list(r.values_b)) for r in rows.itertuples()]
    source = "given" if effect is not None else "observed"
    size = h.study.estimate if effect is None else effect
    if not np.isfinite(size) or size == 0:
        raise InputError(f"effect must be a non-zero difference in drift, got {size!r}")
    return plan_from_seeds(groups, effect=size, effect_source=source, alpha=alpha,
                           target=target, seed=seed)  # fmt: skip


def plan_sentence(plan: SeedPlan) -> str:
    """The plan in one sentence, as the report and the CLI say it."""
    n_a, n_b = plan.seeds_now
    low, high = plan.power_now_range
    what = "the one observed" if plan.effect_source == "observed" else "the one given"
    now = (
        f"With {n_a} + {n_b} seeds per task, this design detects a difference of "
        f"{plan.effect:.3g} ({what}) at α = {plan.alpha:g} with power {plan.power_now:.2f} "
        f"({low:.2f}–{high:.2f} over the uncertainty of the seed-to-seed spread)"
    )
    lo, hi = plan.seeds_needed_range

    def seeds(n: int | None) -> str:
        return f"{n}" if n is not None else f"more than {MAX_SEEDS}"

    if plan.seeds_needed is None:
        need = f"not even {MAX_SEEDS} + {MAX_SEEDS} seeds would reach power {plan.target:g}"
    else:
        need = (
            f"{plan.seeds_needed} + {plan.seeds_needed} seeds would reach power "
            f"{plan.target:g} ({seeds(lo)} to {seeds(hi)} per method)"
        )
    return f"{now}; {need}."


__all__ = [
    "MAX_SEEDS",
    "N_STUDIES",
    "SeedPlan",
    "plan_from_seeds",
    "plan_seeds",
    "plan_sentence",
    "seed_sd",
    "simulated_power",
]
