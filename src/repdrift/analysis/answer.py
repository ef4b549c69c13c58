"""The pre-registered answer: does method a drift less than method b, per task and overall?

One question, one test, fixed before looking at the data (the original study's t-test on the
layer-averaged drift over seeds):

- **Per task**, each fine-tuned run (one training seed) is summarised by its drift averaged
  over the transformer blocks at its final checkpoint, leaving out structural zeros (layers
  either method cannot change, :mod:`repdrift.analysis.structural`). The difference of the
  method means is tested by Welch's t-test with seeds as the unit (the primary p-value), with
  its t interval and Hedges' g. Beside it: the exact permutation test of the method labels
  across seeds (Monte-Carlo above
  :data:`repdrift.analysis.study_test.MAX_EXACT` relabelings), whose smallest attainable
  p-value is stated (2/20 = 0.1 at 3 + 3 seeds), and the family-wise max-|t| permutation
  test over layers (Westfall & Young), which says which layers differ with the family-wise
  error controlled by the same relabelings.
- **For the study**, about *these tasks*, seeds as the unit and tasks as blocks
  (:mod:`repdrift.analysis.study_test`): a Welch-type t-test of the task differences combined
  with weights that no method label decides, each method's own seed variance in each task,
  Satterthwaite df; beside it the exact permutation of the labels within tasks with its
  smallest attainable p-value. Calibrated at 1-8 tasks of 2 + 2 to 5 + 5 seeds with equal or
  unequal spreads (benchmarks/calibration.py); the random-effects pooling it replaced rejected
  a true null 6.5-10.7 % of the time at 4-8 tasks. From
  :data:`~repdrift.analysis.study_test.MIN_TASKS_GENERAL` tasks on, a t-test of the per-task
  differences beside it says whether the difference holds for tasks in general.

With fewer than 2 seeds of a method there is no seed-level test: the answer is then the
difference between those particular trainings, and says so (``test = "none"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from repdrift.analysis import stats
from repdrift.analysis.structural import structural_zeros
from repdrift.analysis.study_test import (
    across_tasks,
    permutation_floor,
    relabelings,
    stratified_answer,
)


@dataclass(frozen=True)
class TaskAnswer:
    """The seed-level answer for one task (difference ``a − b`` of layer-averaged drift)."""

    task: str
    method_a: str
    method_b: str
    n_seeds_a: int
    n_seeds_b: int
    test: str  # "welch" (seeds are the unit) or "none" (fewer than 2 seeds of a method)
    drift_a: float
    drift_b: float
    diff: float
    low: float
    high: float
    df: float
    p: float
    effect_size: float  # Hedges' g over seeds
    rel_diff: float  # diff / drift_b
    p_perm: float  # exact (or Monte-Carlo) permutation of method labels across seeds
    perm_floor: float  # the smallest p-value the relabelings can give
    n_relabelings: int
    exact: bool
    layers: list[int] = field(default_factory=list)  # blocks averaged
    excluded: list[int] = field(default_factory=list)  # structural zeros left out
    p_maxt: dict[int, float] = field(default_factory=dict)  # family-wise, per layer
    se: float = math.nan  # Welch standard error of diff
    level: float = 0.95
    values_a: list[float] = field(default_factory=list)  # per seed (sorted run names)
    values_b: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class StudyAnswer:
    """The study-level answer about *these tasks* (:mod:`repdrift.analysis.study_test`), or the
    one task's Welch test when there is one task, with the exact permutation of the method
    labels beside it; from :data:`~repdrift.analysis.study_test.MIN_TASKS_GENERAL` tasks on, a
    t-test of the per-task differences about tasks in general (``general_*``, NaN below)."""

    method_a: str
    method_b: str
    n_tasks: int
    estimate: float
    low: float
    high: float
    df: float  # of the t reference (Satterthwaite)
    p: float
    tau2: float  # NaN: no between-task variance enters the answer about these tasks
    model: str
    tasks: list[str] = field(default_factory=list)
    scope: str = "these tasks"
    test: str = "weighted welch"  # or "welch" (one task)
    p_perm: float = math.nan  # exact permutation of the method labels within tasks
    p_floor: float = math.nan  # smallest p-value that permutation can give at these seeds
    n_relabelings: int = 0
    exact: bool = True
    general_estimate: float = math.nan  # tasks in general: mean of the task differences
    general_low: float = math.nan
    general_high: float = math.nan
    general_df: float = math.nan
    general_p: float = math.nan


def seed_means(final: pd.DataFrame, layers: Sequence[int]) -> pd.Series:
    """Per run: drift averaged over ``layers`` (rows of one task, one metric, final step)."""
    part = final[final["layer_index"].isin(list(layers))]
    return part.groupby("run")["drift"].mean()


def _welch_t(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Welch t of every relabeling: values (n, L), masks (R, n) → (R, L); 0/0 counts as 0."""
    a, b = masks.astype(np.float64), (~masks).astype(np.float64)
    na, nb = a.sum(axis=1, keepdims=True), b.sum(axis=1, keepdims=True)
    mean_a, mean_b = a @ values / na, b @ values / nb
    var_a = (a @ values**2 - na * mean_a**2) / (na - 1)
    var_b = (b @ values**2 - nb * mean_b**2) / (nb - 1)
    se = np.sqrt(np.maximum(var_a, 0) / na + np.maximum(var_b, 0) / nb)
    diff = mean_a - mean_b
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, diff / se, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    return t


def _exceed(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Fraction of ``null`` (R,) at least as large as each ``observed``, ties kept by a
    relative tolerance (relabelings that give the same split give the same value)."""
    tol = 1e-9 * np.maximum(1.0, np.abs(observed))
    return (null[:, None] >= observed[None, :] - tol).mean(axis=0)


def task_answer(
    final: pd.DataFrame,
    task: str,
    methods: tuple[str, str],
    *,
    level: float = 0.95,
    rng: np.random.Generator,
    zeros: pd.DataFrame | None = None,
) -> TaskAnswer | None:
    """The answer for one task from its final-step drift rows of one metric (None when a
    method has no runs)."""
    a_name, b_name = methods
    rows = final[final["task"] == task]
    runs_a = sorted(rows.loc[rows["method"] == a_name, "run"].unique())
    runs_b = sorted(rows.loc[rows["method"] == b_name, "run"].unique())
    if not runs_a or not runs_b:
        return None
    zeros = structural_zeros(rows) if zeros is None else zeros
    bad = set(zeros.loc[(zeros["task"] == task) & zeros["method"].isin(methods), "layer_index"])
    blocks = sorted(int(i) for i in rows["layer_index"].unique() if i >= 0)
    layers = [i for i in blocks if i not in bad]
    excluded = sorted(int(i) for i in bad)
    per_run = seed_means(rows, layers)
    x, y = per_run.reindex(runs_a).to_numpy(float), per_run.reindex(runs_b).to_numpy(float)
    diff = float(x.mean() - y.mean()) if layers else math.nan
    rel = diff / float(y.mean()) if layers and y.mean() else math.nan
    common = dict(
        task=task, method_a=a_name, method_b=b_name, n_seeds_a=len(x), n_seeds_b=len(y),
        drift_a=float(x.mean()), drift_b=float(y.mean()), diff=diff, rel_diff=rel,
        layers=layers, excluded=excluded,
    )  # fmt: skip
    nan = math.nan
    if len(x) < 2 or len(y) < 2 or not layers:
        return TaskAnswer(**common, test="none", low=nan, high=nan, df=nan, p=nan,
                          effect_size=nan, p_perm=nan, perm_floor=nan, n_relabelings=0,
                          exact=True, level=level)  # fmt: skip
    w = stats.welch(x, y)
    low, high, df = stats.t_interval(diff, [(x.var(ddof=1) / len(x), len(x) - 1.0),
                                            (y.var(ddof=1) / len(y), len(y) - 1.0)], level)  # fmt: skip
    masks, exact = relabelings(len(x), len(y), rng)
    pooled = np.concatenate([x, y])
    null_diff = np.abs(masks @ pooled / len(x) - (~masks) @ pooled / len(y))
    p_perm = float(_exceed(null_diff, np.array([abs(diff)]))[0])
    # Family-wise over layers: max |t| over layers under each relabeling (Westfall & Young).
    wide = rows[rows["layer_index"].isin(layers)].pivot_table(
        index="run", columns="layer_index", values="drift"
    )
    values = wide.reindex(runs_a + runs_b).to_numpy(float)
    t_all = np.abs(_welch_t(values, masks))  # row 0 is the observed labelling
    p_maxt = _exceed(t_all.max(axis=1), t_all[0])
    return TaskAnswer(
        **common, test="welch", low=low, high=high, df=df, p=w.p,
        effect_size=stats.hedges_g(x, y), p_perm=p_perm,
        perm_floor=permutation_floor(len(x), len(y), exact), n_relabelings=len(masks),
        exact=exact, p_maxt={int(i): float(p) for i, p in zip(wide.columns, p_maxt, strict=True)},
        se=w.se, level=level, values_a=[float(v) for v in x], values_b=[float(v) for v in y],
    )  # fmt: skip


def study_answer(
    answers: Sequence[TaskAnswer], level: float = 0.95, rng: np.random.Generator | None = None
) -> StudyAnswer | None:
    """The study-level answer over the tasks with a seed-level test; None without one.

    Two or more tasks: :func:`repdrift.analysis.study_test.stratified_answer` (a Welch-type
    test of the precision-weighted task differences, the exact permutation within tasks
    beside it). From :data:`~repdrift.analysis.study_test.MIN_TASKS_GENERAL` tasks on, a t-test
    of the task differences (k − 1 df) says whether the difference holds for tasks in general.
    One task: its Welch t-test, with its exact permutation and that permutation's floor.
    """
    tested = [a for a in answers if a.test == "welch" and np.isfinite(a.diff)]
    if not tested:
        return None
    a0 = tested[0]
    names = [a.task for a in tested]
    if len(tested) == 1:
        return StudyAnswer(
            a0.method_a, a0.method_b, 1, a0.diff, a0.low, a0.high, a0.df, a0.p, math.nan,
            "Welch t-test on seeds (one task)", names, test="welch", p_perm=a0.p_perm,
            p_floor=a0.perm_floor, n_relabelings=a0.n_relabelings, exact=a0.exact,
        )  # fmt: skip
    groups = [(np.asarray(a.values_a), np.asarray(a.values_b)) for a in tested]
    res = stratified_answer(groups, level=level, rng=rng or np.random.default_rng(0))
    general = across_tasks([a.diff for a in tested], level)
    how = "exact" if res.exact else "Monte-Carlo"
    model = (
        f"Welch-type t-test of the task differences over {len(tested)} tasks, weighted by each "
        f"task's seed precision (Satterthwaite df {res.df:.1f}); permutation of the method labels "
        f"within tasks ({how}, {res.n_relabelings:,} relabelings) p = {res.p_perm:.2g}"
    )
    extra = {}
    if general is not None:
        extra = dict(
            general_estimate=general.estimate, general_low=general.low,
            general_high=general.high, general_df=general.df, general_p=general.p,
        )  # fmt: skip
    return StudyAnswer(
        a0.method_a, a0.method_b, len(tested), res.estimate, res.low, res.high, res.df, res.p,
        math.nan, model, names, p_perm=res.p_perm, p_floor=res.p_floor,
        n_relabelings=res.n_relabelings, exact=res.exact, **extra,
    )  # fmt: skip


def answers_table(answers: Sequence[TaskAnswer]) -> pd.DataFrame:
    """One row per task (the :class:`TaskAnswer` fields)."""
    return pd.DataFrame([asdict(a) for a in answers])


__all__ = [
    "StudyAnswer",
    "TaskAnswer",
    "answers_table",
    "seed_means",
    "study_answer",
    "task_answer",
]
