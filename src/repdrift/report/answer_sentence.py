"""The report's first sentence: the study-level answer, its scope and its uncertainty.

What the sentence may say is what the test behind it holds (:mod:`repdrift.analysis.answer`):
*these tasks* from the seed-level test blocked by task; a p-value below what permuting the
method labels can give is said to rest on normally distributed seed drift, with that
permutation's p-value and floor; *tasks in general* only from
:data:`~repdrift.analysis.study_test.MIN_TASKS_GENERAL` tasks on.
"""

from __future__ import annotations

import numpy as np

from repdrift.analysis.answer import StudyAnswer
from repdrift.analysis.headline import Headline
from repdrift.analysis.stored_headline import headline_of
from repdrift.analysis.study_test import MIN_TASKS_GENERAL
from repdrift.plots.style import method_name
from repdrift.report.headlines import ci_text, fmt_p, signed_text
from repdrift.store.results import Results

__all__ = ["study_answer", "study_sentence"]


def study_answer(
    results: Results,
    *,
    metric: str | None = None,
    correction: str = "p_holm",
    alpha: float = 0.05,
) -> str:
    """The report's first sentence for ``results`` (see :func:`study_sentence`)."""
    return study_sentence(headline_of(results, metric, alpha, correction=correction))


def study_sentence(h: Headline) -> str:
    """The report's first sentence: the pre-registered study-level answer with its uncertainty
    (or why there is none)."""
    pair = h.answers[["method_a", "method_b"]].iloc[0] if not h.answers.empty else None
    if pair is None:
        return "No study-level answer: no task has runs of both methods."
    a, b = method_name(str(pair["method_a"])), method_name(str(pair["method_b"]))
    what = f"drift (1 − {h.metric}) averaged over the transformer blocks"
    s = h.study
    if s is None and all(
        r.n_seeds_a >= 2 and r.n_seeds_b >= 2 for r in h.answers.itertuples()
    ):
        return (
            f"No seed-level answer to whether {a} drifts less than {b}: every transformer block "
            "is unchanged in every seed of a method (structural zeros), so there is nothing "
            "to test."
        )
    if s is None:
        seeds = ", ".join(
            f"{r.task}: {r.n_seeds_a} + {r.n_seeds_b}" for r in h.answers.itertuples()
        )
        diffs = ", ".join(f"{r.task} {signed_text(r.diff)}" for r in h.answers.itertuples())
        return (
            f"No seed-level answer to whether {a} drifts less than {b}: a test needs at least 2 "
            f"training seeds of each method per task (seeds {seeds}). The difference in {what} "
            f"({a} − {b}: {diffs}) describes those particular trainings, not the methods."
        )
    level = float(h.answers["level"].iloc[0])
    seeds = ", ".join(
        f"{r.n_seeds_a} + {r.n_seeds_b}" for r in h.answers.itertuples() if r.test == "welch"
    )
    if s.p < h.alpha:
        verdict = f"{a} drifted {'less' if s.estimate < 0 else 'more'} than {b}"
    else:
        verdict = f"no significant difference in drift between {a} and {b} was found"
    interval = (
        ci_text(s.low, s.high, level)
        if np.isfinite(s.low) and np.isfinite(s.high)
        else f"no {level:.0%} interval"
    )
    exact = "exact" if s.exact else "Monte-Carlo"
    if s.n_tasks == 1:
        how = f"Welch t-test with seeds as the unit, {seeds} seeds, t df {s.df:.1f}"
        permuted = "the exact permutation of the method labels"
        where = f"In {s.tasks[0]} (this task only)"
        general = ""
    else:
        how = (
            f"Welch-type t-test with seeds as the unit over {s.n_tasks} tasks (seeds per task "
            f"{seeds}), each task weighted by its seed-to-seed precision, Satterthwaite df "
            f"{s.df:.1f}"
        )
        permuted = f"permuting the method labels within tasks ({exact})"
        where = f"In these {s.n_tasks} tasks ({', '.join(s.tasks)})"
        general = _general_sentence(s, a, b, level)
    if np.isfinite(s.p_floor) and s.p < s.p_floor:
        beside = (
            f". That p-value rests on the drift of the seeds being roughly normal: {permuted}, "
            f"which assumes nothing of the kind, gives p = {s.p_perm:.3g} and cannot go below "
            f"{s.p_floor:.3g} with these seeds"
        )
    else:
        beside = f"; {permuted} gives p = {s.p_perm:.3g}"
    how += beside
    return (
        f"{where}, {verdict}: {a} − {b} in {what} = {signed_text(s.estimate)} "
        f"({interval}, {fmt_p(s.p)}; {how}).{general}"
    )


def _general_sentence(s: StudyAnswer, a: str, b: str, level: float) -> str:
    """Whether the difference holds for tasks in general, or why that is not said."""
    if not np.isfinite(s.general_p):
        return (
            f" Whether it holds for tasks in general is not tested: that rests on the spread of "
            f"the task differences and needs at least {MIN_TASKS_GENERAL} tasks (here "
            f"{s.n_tasks})."
        )
    return (
        f" For tasks in general (t-test of the {s.n_tasks} task differences, {s.general_df:.0f} "
        f"df): {a} − {b} = {signed_text(s.general_estimate)} "
        f"({ci_text(s.general_low, s.general_high, level)}, {fmt_p(s.general_p)})."
    )
