"""The report's first sentence: the study-level answer, its scope and its uncertainty.

What the sentence may say is what the test behind it holds (:mod:`repdrift.analysis.answer`):
*these tasks* from the within-task permutation test, with its smallest attainable p-value when
the seeds cannot reach the level; *tasks in general* only from
:data:`~repdrift.analysis.study_test.MIN_TASKS_GENERAL` tasks on; one task's Welch p-value with
what it rests on.
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
    if np.isfinite(s.p_floor) and s.p_floor > h.alpha and s.test != "welch":
        verdict = (
            f"whether {a} drifts less than {b} cannot be decided at {h.alpha:g} with these "
            f"seeds: the smallest p-value they can give is {s.p_floor:.3g}"
        )
    elif s.p < h.alpha:
        verdict = f"{a} drifted {'less' if s.estimate < 0 else 'more'} than {b}"
    else:
        verdict = f"no significant difference in drift between {a} and {b} was found"
    interval = (
        ci_text(s.low, s.high, level)
        if np.isfinite(s.low) and np.isfinite(s.high)
        else f"no {level:.0%} interval: no data could reject a difference at these seed counts"
    )
    if s.n_tasks == 1:
        r = h.answer(s.tasks[0])
        how = (
            f"Welch t-test with seeds as the unit, {seeds} seeds, t df {s.df:.1f}. It rests on "
            "the drift of the seeds being roughly normal: the exact permutation of the method labels, "
            f"which assumes nothing of the kind, gives p = {r['p_perm']:.3g} and cannot go below "
            f"{r['perm_floor']:.3g} with these seeds"
        )
        where = f"In {s.tasks[0]} (this task only)"
        general = ""
    else:
        how = (
            f"method labels permuted within each task, seeds as the unit (seeds per task "
            f"{seeds}; {'exact over' if s.exact else 'Monte-Carlo,'} {s.n_relabelings:,} "
            f"relabelings, smallest attainable p {s.p_floor:.2g}); the estimate weights each "
            "task by its seed-to-seed precision"
        )
        where = f"In these {s.n_tasks} tasks ({', '.join(s.tasks)})"
        general = _general_sentence(s, a, b, level)
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
