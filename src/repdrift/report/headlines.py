"""The answer in words: sentences built from :func:`repdrift.analysis.headline.headline`.

The numbers (which layers differ, by how much, where drift peaks, which layers are structural
zeros or within the seed noise floor) are computed once, by the analysis headline stored in
results.json (:func:`repdrift.analysis.stored_headline.headline_of`) that the CLI prints too;
this module only words them, so the report and the CLI never disagree and a sentence can never
say more than the numbers do. Numbers follow :func:`repdrift.common.display.number`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from repdrift.analysis.headline import Headline
from repdrift.analysis.stored_headline import headline_of
from repdrift.common.display import TYPESET_MINUS, number
from repdrift.plots.style import method_name, order_methods
from repdrift.report.tables import fmt_num
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


def fmt_p(p: float) -> str:
    """A p-value for a sentence: ``p = 0.032``, ``p = 2.1e-05``."""
    return f"p = {p:.2g}" if p < 0.001 else f"p = {p:.3f}"


def ci_text(low: float, high: float, level: float) -> str:
    return f"{level:.0%} CI {signed_text(low)} to {signed_text(high)}"


def signed_text(x: float, digits: int = 3) -> str:
    return number(x, digits, signed=True, minus=TYPESET_MINUS)


def _answer_sentence(r: pd.Series, task: str) -> str | None:
    """The task's pre-registered seed-level test, in one sentence."""
    if r["test"] != "welch":
        return None
    a, b = method_name(str(r["method_a"])), method_name(str(r["method_b"]))
    pct = f"{r['rel_diff'] * 100:+.0f}%".replace("-", "−")
    rel = f", {pct} relative to {b}" if np.isfinite(r["rel_diff"]) else ""
    maxt = r["p_maxt"] or {}
    fw = [int(i) for i, p in maxt.items() if np.isfinite(p) and p < 0.05]
    family = (
        f"; family-wise over layers (max-|t| permutation) {layer_ranges(fw)} differ"
        if fw
        else "; no single layer differs family-wise (max-|t| permutation of the labels, "
        f"smallest attainable p {r['perm_floor']:.2g})"
    )
    rests = (
        f"; a Welch p below {r['perm_floor']:.2g} rests on the drift of the seeds being "
        f"roughly normal, as the exact permutation of {r['n_seeds_a']} + {r['n_seeds_b']} seeds "
        "cannot go lower"
        if r["exact"] and r["p"] < r["perm_floor"]
        else ""
    )
    return (
        f"{task}: {a} − {b} in block-averaged drift = {signed_text(r['diff'])} ({fmt_num(r['drift_a'])} "
        f"vs {fmt_num(r['drift_b'])}{rel}; {ci_text(r['low'], r['high'], r['level'])}, Welch over "
        f"{r['n_seeds_a']} + {r['n_seeds_b']} seeds {fmt_p(r['p'])}, Hedges g "
        f"{signed_text(r['effect_size'], 1)}; permutation of method labels p = {r['p_perm']:.3g}"
        f"{rests}{family})."
    )


def _structural_sentence(row: pd.Series | None, h: Headline, task: str) -> str | None:
    if h.zeros.empty:
        return None
    mine = h.zeros[(h.zeros["task"] == task) & (h.zeros["metric"] == h.metric)]
    if mine.empty:
        return None
    parts = []
    for method, part in mine.groupby("method"):
        parts.append(f"{layer_ranges(part['layer_index'])} under {method_name(str(method))}")
    return (
        f"Unchanged in every seed (structural zeros, found in the representations): "
        f"{_join(parts)}; reported, but left out of tests, layer averages and relative changes."
    )


def _floor_sentence(h: Headline, task: str) -> str | None:
    """Layers whose drift lies within the method's seed noise floor, with both numbers."""
    within = h.within_floor(task)
    if not within:
        return None
    parts = []
    for method in order_methods(within):
        values = []
        for i in within[method]:
            r = h.layer(task, method, i)
            if r is not None:
                values.append(f"{fmt_num(r['drift'])} ≤ {fmt_num(r['floor'])}")
        parts.append(
            f"{layer_ranges(within[method])} under {method_name(method)} ({', '.join(values)})"
        )
    return (
        f"Within seed noise: drift no larger than the seed noise floor (the drift between two "
        f"seeds of the same method) in {_join(parts)}; there the change from the base is not "
        "told apart from re-training with another seed."
    )


def _description_sentences(row: pd.Series, task: str) -> list[str]:
    """One seed of a method: what the two trainings show, with no claim about the methods."""
    name_a, name_b = method_name(str(row["method_a"])), method_name(str(row["method_b"]))
    parts = []
    for word in ("less", "more"):
        layers = [i for i in row[f"layers_a_{word}"] if i not in row["structural"]]
        if layers:
            parts.append(f"{word} in {layer_ranges(layers)}")
    apart = [i for i in row["layers_interval_excludes_zero"] if i not in row["structural"]]
    text = (
        f"Description of two trainings, not a test of the methods: the {name_a} run drifted "
        f"{_join(parts) or 'as much'} than the {name_b} run on {task}"
    )
    if apart:
        text += (
            f"; the half-sample interval of the difference (sampling noise of these runs only) "
            f"excludes 0 in {layer_ranges(apart)}"
        )
    return [text + "."]


def _comparison_sentences(row: pd.Series, task: str, h: Headline) -> list[str]:
    a, b = str(row["method_a"]), str(row["method_b"])
    name_a, name_b = method_name(a), method_name(b)
    lead = name_a[0].upper() + name_a[1:]
    adjusted = CORRECTION_NAMES[h.correction]
    metric, alpha, n_layers = h.metric, h.alpha, int(row["n_tested"])
    if row["samples_test"]:
        return _description_sentences(row, task)
    if row["n_tested"] == 0:
        return [f"No test of {name_a} against {name_b} was possible for {task} ({metric})."]
    sentences = []
    for word in ("less", "more"):
        layers = row[f"significant_{word}"]
        if not layers:
            continue
        where = f"all {n_layers} layers" if len(layers) == n_layers else layer_ranges(layers)
        rel = np.asarray(row[f"rel_{word}"], dtype=float)
        by = f"{_percent_range(rel)} " if np.isfinite(rel).all() else ""
        sentences.append(
            f"{lead} drifted {by}{word} than {name_b} in {where} of {task} "
            f"({metric}, {adjusted} p {p_bound(float(row[f'p_{word}']), alpha)})"
        )
    if not sentences:
        return [
            f"No significant difference in drift between {name_a} and {name_b} in any of the "
            f"{n_layers} layers of {task} ({metric}, {adjusted} p ≥ {alpha:g} everywhere)."
        ]
    if len(row["layers_significant"]) < n_layers:
        sentences[-1] += "; no significant difference elsewhere"
    return [s + "." for s in sentences]


def _seed_caveat(row: pd.Series) -> str | None:
    a, b = method_name(str(row["method_a"])), method_name(str(row["method_b"]))
    n_a, n_b = int(row["n_seeds_a"]), int(row["n_seeds_b"])
    if row["samples_test"]:
        return (
            f"Only {_plural(n_a, 'seed')} of {a} and {_plural(n_b, 'seed')} of {b}: any "
            "interval or p-value reflects sampling noise only, not the variation between "
            "training runs, so nothing is claimed about the methods; train at least 2 (better "
            "3 or more) seeds of each."
        )
    if min(n_a, n_b) < 3:
        return (
            f"Only {_plural(n_a, 'seed')} of {a} and {_plural(n_b, 'seed')} of {b}: too few "
            "seeds for a reliable seed-level test (little power, and variances estimated "
            "from a handful of values), so significant and non-significant layers alike are "
            "provisional."
        )
    return None


def _peak_sentence(h: Headline, task: str) -> str | None:
    rows = h.peaks[h.peaks["task"] == task] if not h.peaks.empty else h.peaks
    if rows.empty:
        return None
    by_method = rows.set_index("method")
    peaks = [
        (
            int(by_method.loc[m, "layer_index"]),
            f"{method_name(m)} ({fmt_num(by_method.loc[m, 'drift'])})",
        )
        for m in order_methods(rows["method"])
    ]

    def where(top: int) -> str:
        return "the embeddings" if top < 0 else f"layer {top}"

    if len(peaks) > 1 and len({top for top, _ in peaks}) == 1:
        both = "both " if len(peaks) == 2 else "all of "
        return (
            f"Drift (1 − {h.metric}) is largest in {where(peaks[0][0])} for "
            f"{both}{_join([text for _, text in peaks])}."
        )
    parts = [f"in {where(top)} for {text}" for top, text in peaks]
    return f"Drift (1 − {h.metric}) is largest {_join(parts)}."


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
        Default: :func:`repdrift.store.results.default_metric` (``cka_debiased`` when
        computed, else the first metric).
    correction : {"p_holm", "p_bh", "p"}
        The p-value column that decides significance.
    alpha : float
        Significance level.

    Returns
    -------
    dict
        Task → sentences: the method comparison (significant layers grouped into ranges,
        or that nothing is significant), a caveat when seeds are too few, the structural
        zeros left out, the layers within the seed noise floor, and where drift is largest.
    """
    h = headline_of(results, metric, alpha, correction=correction)
    out: dict[str, list[str]] = {}
    for task in h.tasks:
        sentences: list[str] = []
        row = h.comparison(task)
        methods = order_methods(h.task_methods(task))
        answer = h.answer(task)
        if answer is not None and (text := _answer_sentence(answer, task)):
            sentences.append(text)
        if row is not None:
            sentences += _comparison_sentences(row, task, h)
            caveat = _seed_caveat(row)
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
        zero = _structural_sentence(row, h, task)
        if zero:
            sentences.append(zero)
        floor = _floor_sentence(h, task)
        if floor:
            sentences.append(floor)
        peak = _peak_sentence(h, task)
        if peak:
            sentences.append(peak)
        out[task] = sentences
    return out
