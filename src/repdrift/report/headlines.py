"""The answer in words: sentences generated from the comparison and drift tables.

Everything here is a pure function of the tables, so the wording is unit-tested and a
sentence can never say more than the numbers do.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from repdrift.errors import InputError
from repdrift.plots.figures import default_metric
from repdrift.plots.style import final_step, method_name, order_methods
from repdrift.store.results import Results

CORRECTION_NAMES = {
    "p_holm": "Holm-adjusted",
    "p_bh": "Benjamini–Hochberg-adjusted",
    "p": "unadjusted",
}
_P_STEPS = (0.001, 0.01, 0.05)


def layer_ranges(indices: Iterable[int]) -> str:
    """Layer indices as words: ``[3, 4, 5]`` → ``layers 3–5``; ``[-1, 0, 1]`` →
    ``the embeddings and layers 0–1``; ``[2]`` → ``layer 2``; ``[1, 3, 4]`` → ``layers 1 and
    3–4``."""
    idx = sorted({int(i) for i in indices})
    parts = []
    if idx and idx[0] < 0:
        parts.append("the embeddings")
        idx = [i for i in idx if i >= 0]
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    if runs:
        spans = [f"{r[0]}" if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs]
        word = "layer" if len(idx) == 1 else "layers"
        parts.append(f"{word} {_join(spans)}")
    return _join(parts)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def p_bound(p: float, alpha: float = 0.05) -> str:
    """The tightest of ``< 0.001``, ``< 0.01``, ``< 0.05`` (or ``< alpha``) that ``p`` meets."""
    for step in sorted({*(s for s in _P_STEPS if s <= alpha), alpha}):
        if p < step:
            return f"< {step:g}"
    return f"≥ {alpha:g}"


def _percent_range(values: np.ndarray) -> str:
    lo, hi = np.round(np.sort(np.abs(values))[[0, -1]] * 100).astype(int)
    return f"{lo}%" if lo == hi else f"{lo}–{hi}%"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _comparison_sentences(
    comp: pd.DataFrame, task: str, metric: str, correction: str, alpha: float
) -> list[str]:
    a, b = str(comp["method_a"].iloc[0]), str(comp["method_b"].iloc[0])
    name_a, name_b = method_name(a), method_name(b)
    lead = name_a[0].upper() + name_a[1:]
    adjusted = CORRECTION_NAMES[correction]
    tested = comp[comp[correction].notna()]
    n_layers = len(comp)
    if tested.empty:
        return [f"No test of {name_a} against {name_b} was possible for {task} ({metric})."]
    significant = tested[tested[correction] < alpha]
    sentences = []
    for sign, word in ((-1, "less"), (1, "more")):
        group = significant[np.sign(significant["drift_diff"]) == sign]
        if group.empty:
            continue
        where = (
            f"all {n_layers} layers"
            if len(group) == n_layers
            else layer_ranges(group["layer_index"])
        )
        rel = group["rel_diff"].to_numpy(dtype=float)
        by = f"{_percent_range(rel)} " if np.isfinite(rel).all() else ""
        sentences.append(
            f"{lead} drifted {by}{word} than {name_b} in {where} of {task} "
            f"({metric}, {adjusted} p {p_bound(float(group[correction].max()), alpha)})"
        )
    if not sentences:
        return [
            f"No significant difference in drift between {name_a} and {name_b} in any of the "
            f"{n_layers} layers of {task} ({metric}, {adjusted} p ≥ {alpha:g} everywhere)."
        ]
    if len(significant) < n_layers:
        sentences[-1] += "; no significant difference elsewhere"
    return [s + "." for s in sentences]


def _seed_caveat(comp: pd.DataFrame) -> str | None:
    a, b = method_name(str(comp["method_a"].iloc[0])), method_name(str(comp["method_b"].iloc[0]))
    n_a, n_b = int(comp["n_seeds_a"].min()), int(comp["n_seeds_b"].min())
    if "test" in comp and (comp["test"] == "samples").any():
        return (
            f"Only {_plural(n_a, 'seed')} of {a} and {_plural(n_b, 'seed')} of {b}: the "
            "p-values reflect sampling noise only, not the variation between training runs; "
            "train more seeds before drawing conclusions."
        )
    if min(n_a, n_b) < 3:
        return (
            f"Only {_plural(n_a, 'seed')} of {a} and {_plural(n_b, 'seed')} of {b}: too few "
            "seeds for a reliable seed-level test (little power, and variances estimated "
            "from a handful of values), so significant and non-significant layers alike are "
            "provisional."
        )
    return None


def _peak_sentence(drift: pd.DataFrame, task: str, metric: str) -> str | None:
    rows = final_step(drift)
    rows = rows[(rows["task"] == task) & (rows["metric"] == metric)]
    if rows.empty:
        return None
    peaks = []
    for method in order_methods(rows["method"]):
        mean = rows[rows["method"] == method].groupby("layer_index")["drift"].mean()
        top = int(mean.idxmax())
        peaks.append((top, f"{method_name(method)} ({mean.loc[top]:.3f})"))

    def where(top: int) -> str:
        return "the embeddings" if top < 0 else f"layer {top}"

    if len(peaks) > 1 and len({top for top, _ in peaks}) == 1:
        both = "both " if len(peaks) == 2 else "all of "
        return (
            f"Drift (1 − {metric}) is largest in {where(peaks[0][0])} for "
            f"{both}{_join([text for _, text in peaks])}."
        )
    parts = [f"in {where(top)} for {text}" for top, text in peaks]
    return f"Drift (1 − {metric}) is largest {_join(parts)}."


def headlines(
    results: Results,
    *,
    metric: str | None = None,
    correction: str = "p_holm",
    alpha: float = 0.05,
) -> dict[str, list[str]]:
    """Per task, sentences that state the answer the tables give.

    Parameters
    ----------
    results : Results
    metric : str, optional
        Default: ``cka_debiased`` when computed, else the first metric.
    correction : {"p_holm", "p_bh", "p"}
        The p-value column that decides significance.
    alpha : float
        Significance level.

    Returns
    -------
    dict
        Task → sentences: the method comparison (significant layers grouped into ranges,
        or that nothing is significant), a caveat when seeds are too few, and where drift
        is largest.
    """
    if correction not in CORRECTION_NAMES:
        raise InputError(f"correction={correction!r}; expected one of {list(CORRECTION_NAMES)}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha={alpha!r}; expected a significance level in (0, 1)")
    metric = metric or default_metric(results)
    drift, comparison = results.drift, results.comparison
    tasks = sorted(set(drift["task"]) if not drift.empty else set(results.summary.get("tasks", {})))
    out: dict[str, list[str]] = {}
    for task in tasks:
        sentences: list[str] = []
        comp = (
            comparison[(comparison["task"] == task) & (comparison["metric"] == metric)]
            if not comparison.empty
            else comparison
        )
        methods = (
            order_methods(drift.loc[drift["task"] == task, "method"]) if not drift.empty else []
        )
        if not comp.empty:
            sentences += _comparison_sentences(comp, task, metric, correction, alpha)
            caveat = _seed_caveat(comp)
            if caveat:
                sentences.append(caveat)
        elif len(methods) >= 2:
            sentences.append(
                f"Too few seeds to compare {method_name(methods[0])} with "
                f"{method_name(methods[1])} for {task}: each needs at least 2 seeds (or "
                "half-sample replicates); no comparison was made."
            )
        elif methods:
            sentences.append(
                f"Only {method_name(methods[0])} runs for {task}: there is no second method to "
                "compare with."
            )
        peak = _peak_sentence(drift, task, metric) if not drift.empty else None
        if peak:
            sentences.append(peak)
        out[task] = sentences
    return out
