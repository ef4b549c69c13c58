"""What a results folder says, in numbers: drift per task × method, the method comparison.

The one computation behind every summary of a study: the CLI prints it after ``repdrift run``
and ``repdrift demo`` (:func:`repdrift.cli.views.show_headline`), and the report words it
(:func:`repdrift.report.headlines.headlines`). Pure functions of the result tables
(:func:`repdrift.store.results.load_results`), at each run's final step
(:func:`repdrift.store.results.final_step`) and for one metric
(:func:`repdrift.store.results.default_metric` unless asked).

Averages over layers (``mean_drift``, ``drift_a``, ``drift_b``, ``mean_diff``) are over the
transformer blocks; per-layer findings (which layers differ, where drift peaks) cover every
compared layer, the embeddings (layer index -1) included. Structural zeros (layers a method
left unchanged, :mod:`repdrift.analysis.structural`) are listed on their own and counted in no
comparison (neither "lower in" nor "interval excludes 0", nor the averages of the comparison).
Significance is only ever read from a test whose unit is the seed: with one seed of a method,
no layer is called significant. The pre-registered answer (:mod:`repdrift.analysis.answer`) is
``answers`` (per task) and ``study`` (pooled). ``layers`` sets each layer's drift beside its
seed noise floor and flags drift that lies within it.

The headline is computed once, when the analysis runs, and stored in results.json
(:mod:`repdrift.analysis.stored_headline`); the CLI and the report read it from there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from repdrift.analysis.answer import StudyAnswer, answers_table, study_answer, task_answer
from repdrift.analysis.structural import structural_zeros
from repdrift.common.display import number
from repdrift.errors import InputError
from repdrift.store.results import Results, default_metric, final_step

#: p-value columns of the comparison table that can decide significance.
CORRECTIONS = ("p_holm", "p_bh", "p")


@dataclass(frozen=True)
class Headline:
    """The numbers a study is summarised by.

    Attributes
    ----------
    metric : str
        The metric they use.
    correction, alpha : str, float
        The p-value column (one of :data:`CORRECTIONS`) and level that decide significance.
    tasks : list of str
        Every task of the results, sorted.
    mean_drift : DataFrame
        task × method: drift averaged over blocks and seeds (final step).
    top_layer_drift : DataFrame
        task × method: drift of the last block, averaged over seeds.
    peaks : DataFrame
        One row per task × method with drift rows: ``layer_index`` of the largest drift
        (mean over seeds, embeddings included) and that ``drift``.
    methods : DataFrame
        One row per task with a comparison: ``method_a``, ``method_b``; mean drift of each
        over blocks (``drift_a``, ``drift_b``) and their mean difference a − b
        (``mean_diff``); layer lists ``layers_a_less`` / ``layers_a_more`` (a drifts less /
        more than b), ``significant_less`` / ``significant_more`` (those with ``correction``
        < ``alpha``), ``layers_significant`` (both), ``layers_interval_excludes_zero``;
        ``rel_less`` / ``rel_more`` (``rel_diff`` of the significant layers, in order),
        ``p_less`` / ``p_more`` (the largest p-value among them); ``n_layers`` (layers
        compared), ``n_tested`` (layers with a p-value), ``samples_test`` (True when a
        layer was tested over samples, not seeds) and the fewest seeds per method
        (``n_seeds_a``, ``n_seeds_b``); ``structural`` (layers left out as structural zeros,
        with ``unchanged_in`` naming the methods): no other list and no average of the row
        counts them.
    answers : DataFrame
        One row per task with both methods: the pre-registered seed-level answer
        (:class:`repdrift.analysis.answer.TaskAnswer` fields).
    study : StudyAnswer or None
        The answer pooled over tasks (None when no task has 2 seeds of each method).
    zeros : DataFrame
        Structural zeros: task, method, metric, layer_index.
    accuracy : DataFrame
        task × method: validation accuracy recorded by :func:`repdrift.training.recipe.train`,
        averaged over seeds (empty when the runs carry no training record).
    layers : DataFrame
        One row per task × method × layer (final step): ``drift`` (mean over seeds),
        ``n_seeds``, ``floor`` (the seed noise floor: drift between two seeds of the method,
        NaN with one seed), ``structural_zero`` and ``within_floor`` (drift no larger than the
        floor, structural zeros aside: the layer moved no more from the base than the seeds
        differ from each other).
    """

    metric: str
    correction: str
    alpha: float
    tasks: list[str]
    mean_drift: pd.DataFrame
    top_layer_drift: pd.DataFrame
    peaks: pd.DataFrame
    methods: pd.DataFrame
    accuracy: pd.DataFrame
    answers: pd.DataFrame
    study: StudyAnswer | None
    zeros: pd.DataFrame
    layers: pd.DataFrame

    def task_methods(self, task: str) -> list[str]:
        """Methods with drift rows for ``task`` (unordered)."""
        if self.peaks.empty:
            return []
        return [str(m) for m in self.peaks.loc[self.peaks["task"] == task, "method"]]

    def comparison(self, task: str) -> pd.Series | None:
        """The ``methods`` row of ``task``, or None when it has no comparison."""
        if self.methods.empty:
            return None
        rows = self.methods[self.methods["task"] == task]
        return None if rows.empty else rows.iloc[0]

    def study_line(self) -> str:
        """The pre-registered study-level answer in one plain line (the CLI prints it first)."""
        if self.answers.empty:
            return "answer: no task has runs of both methods"
        a, b = str(self.answers["method_a"].iloc[0]), str(self.answers["method_b"].iloc[0])
        s = self.study
        if s is None:
            diffs = ", ".join(
                f"{r.task} {number(r.diff, 4, signed=True)}" for r in self.answers.itertuples()
            )
            return (
                f"answer: no seed-level test of {a} vs {b} (each method needs >= 2 seeds per "
                f"task, and a block that is not a structural zero); {a} - {b} in block-averaged "
                f"drift, describing these trainings only: {diffs}"
            )
        level = float(self.answers["level"].iloc[0])
        if s.p < self.alpha:
            verdict = f"{a} drifts {'less' if s.estimate < 0 else 'more'} than {b}"
        else:
            verdict = f"no significant difference between {a} and {b}"
        scope = f"in {s.tasks[0]} only" if s.n_tasks == 1 else f"in these {s.n_tasks} tasks"
        interval = (
            f"{level:.0%} CI [{number(s.low, 4, signed=True)}, {number(s.high, 4, signed=True)}]"
            if np.isfinite(s.low) and np.isfinite(s.high)
            else f"no {level:.0%} interval"
        )
        how = s.model if s.n_tasks > 1 else f"Welch t-test, one task; exact permutation p = {s.p_perm:.2g}"
        if np.isfinite(s.p_floor) and s.p < s.p_floor:
            how += (
                f"; below the permutation's floor {s.p_floor:.2g}, so the p-value rests on "
                "normally distributed seed drift"
            )
        general = (
            f"; tasks in general (t-test of {s.n_tasks} task differences): "
            f"{number(s.general_estimate, 4, signed=True)}, p = {s.general_p:.2g}"
            if np.isfinite(s.general_p)
            else ""
        )
        return (
            f"answer ({self.metric}, drift averaged over blocks, seeds as the unit, {scope}): "
            f"{verdict}; {a} - {b} = {number(s.estimate, 4, signed=True)} ({interval}, "
            f"p = {s.p:.2g}, {how}){general}"
        )

    def structural(self, task: str) -> dict[str, list[int]]:
        """Method → layers of ``task`` left out as structural zeros (this metric)."""
        return self._layers_where(task, "structural_zero")

    def within_floor(self, task: str) -> dict[str, list[int]]:
        """Method → layers of ``task`` whose drift lies within the method's seed noise floor."""
        return self._layers_where(task, "within_floor")

    def layer(self, task: str, method: str, index: int) -> pd.Series | None:
        """The ``layers`` row of one task × method × layer, or None."""
        t = self.layers
        if t.empty:
            return None
        rows = t[(t["task"] == task) & (t["method"] == method) & (t["layer_index"] == index)]
        return None if rows.empty else rows.iloc[0]

    def _layers_where(self, task: str, flag: str) -> dict[str, list[int]]:
        t = self.layers
        if t.empty:
            return {}
        hit = t[(t["task"] == task) & t[flag].astype(bool)]
        return {
            str(m): sorted(int(i) for i in part["layer_index"])
            for m, part in hit.groupby("method", sort=True)
        }

    def answer(self, task: str) -> pd.Series | None:
        """The ``answers`` row of ``task``, or None."""
        if self.answers.empty:
            return None
        rows = self.answers[self.answers["task"] == task]
        return None if rows.empty else rows.iloc[0]


def headline(
    results: Results,
    metric: str | None = None,
    alpha: float = 0.05,
    *,
    correction: str = "p_holm",
) -> Headline:
    """Summarise ``results`` for ``metric`` (default: :func:`default_metric`).

    Raises
    ------
    InputError
        ``correction`` is not one of :data:`CORRECTIONS` or ``alpha`` is not in (0, 1).
    """
    if correction not in CORRECTIONS:
        raise InputError(f"correction={correction!r}; expected one of {list(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha={alpha!r}; expected a significance level in (0, 1)")
    metric = metric or default_metric(results)
    drift = results.drift
    tasks = sorted(set(drift["task"]) if not drift.empty else set(results.summary.get("tasks", {})))
    final = final_step(drift)
    final = final[final["metric"] == metric] if not final.empty else final
    blocks = final[final["layer_index"] >= 0] if not final.empty else final
    mean, top_mean = _block_drift(blocks)
    comp = results.comparison
    rows = []
    if not comp.empty:
        comp = comp[comp["metric"] == metric]
        for task, part in comp.groupby("task", sort=True):
            rows.append({"task": task, **_compare(part, correction, alpha)})
    settings = results.summary.get("settings") or {}
    pair = tuple(settings.get("methods") or ("lora", "full"))
    level = float(settings.get("level") or 0.95)
    rng = np.random.default_rng(int(settings.get("seed") or 0) + 2)
    zeros = structural_zeros(final) if not final.empty else pd.DataFrame()
    floor = results.noise_floor
    floor = floor[floor["metric"] == metric] if not floor.empty else floor
    answers = [
        a for t in tasks
        if not final.empty
        and (a := task_answer(final, t, pair, level=level, rng=rng, zeros=zeros)) is not None
    ]  # fmt: skip
    return Headline(
        metric, correction, alpha, tasks, mean, top_mean, _peaks(final), pd.DataFrame(rows),
        _accuracy(results), answers_table(answers), study_answer(answers, level), zeros,
        _layer_table(final, floor, zeros),
    )  # fmt: skip


def _block_drift(blocks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """task × method: mean drift over blocks and seeds, and the last block's over seeds."""
    if blocks.empty:
        return pd.DataFrame(), pd.DataFrame()
    mean = blocks.pivot_table(index="task", columns="method", values="drift", aggfunc="mean")
    top = blocks[blocks["layer_index"] == blocks.groupby("task")["layer_index"].transform("max")]
    top_mean = top.pivot_table(index="task", columns="method", values="drift", aggfunc="mean")
    return mean, top_mean


def _peaks(final: pd.DataFrame) -> pd.DataFrame:
    """Per task × method, the layer of the largest mean drift over seeds."""
    if final.empty:
        return pd.DataFrame(columns=["task", "method", "layer_index", "drift"])
    per_layer = final.groupby(["task", "method", "layer_index"])["drift"].mean().reset_index()
    top = per_layer.loc[per_layer.groupby(["task", "method"])["drift"].idxmax()]
    return top.reset_index(drop=True)


#: Columns of :attr:`Headline.layers`.
LAYER_COLUMNS = [
    "task", "method", "layer_index", "drift", "n_seeds", "floor", "structural_zero",
    "within_floor",
]  # fmt: skip


def _layer_table(final: pd.DataFrame, floor: pd.DataFrame, zeros: pd.DataFrame) -> pd.DataFrame:
    """Per task × method × layer: mean drift over seeds beside the seed noise floor."""
    if final.empty:
        return pd.DataFrame(columns=LAYER_COLUMNS)
    keys = ["task", "method", "layer_index"]
    table = final.groupby(keys, as_index=False).agg(
        drift=("drift", "mean"), n_seeds=("run", "nunique")
    )
    if floor.empty or "layer_index" not in floor:
        table["floor"] = np.nan
    else:
        floors = floor[[*keys, "drift"]].rename(columns={"drift": "floor"})
        floors = floors.groupby(keys, as_index=False)["floor"].mean()
        table = table.merge(floors, on=keys, how="left")
    zero_keys = (
        set(zip(zeros["task"], zeros["method"], zeros["layer_index"].astype(int), strict=True))
        if not zeros.empty
        else set()
    )
    table["structural_zero"] = [
        (t, m, int(i)) in zero_keys
        for t, m, i in zip(table["task"], table["method"], table["layer_index"], strict=True)
    ]
    table["within_floor"] = (
        table["floor"].notna() & ~table["structural_zero"] & (table["drift"] <= table["floor"])
    )
    table["layer_index"] = table["layer_index"].astype(int)
    return table[LAYER_COLUMNS].sort_values(keys).reset_index(drop=True)


def _layers(values: np.ndarray) -> list[int]:
    return [int(i) for i in values]


def _compare(part: pd.DataFrame, correction: str, alpha: float) -> dict:
    """One task's comparison row (see :class:`Headline`) from its comparison-table rows."""
    part = part.sort_values("layer_index")
    layers = part["layer_index"].to_numpy()
    nan = np.full(len(part), np.nan)
    diff = part["drift_diff"].to_numpy(float)
    p = part[correction].to_numpy(float) if correction in part else nan
    rel = part["rel_diff"].to_numpy(float) if "rel_diff" in part else nan
    low = part["ci_low"].to_numpy(float) if "ci_low" in part else nan
    high = part["ci_high"].to_numpy(float) if "ci_high" in part else nan
    apart = (low > 0) | (high < 0)  # NaN compares False: no interval, not apart
    tests = part["test"].astype(str).to_numpy() if "test" in part else np.full(len(part), "welch")
    # A structural zero is known by construction: reported on its own, counted in nothing else.
    measured = tests != "structural zero"
    apart &= measured
    # Only a test whose unit is the seed can make a layer significant.
    significant = (np.nan_to_num(p, nan=1.0) < alpha) & (tests == "welch")
    less, more = significant & (diff < 0), significant & (diff > 0)
    blocks = part[(part["layer_index"] >= 0).to_numpy() & measured]
    block_diff = blocks["drift_diff"].to_numpy(float)
    return {
        "method_a": str(part["method_a"].iloc[0]),
        "method_b": str(part["method_b"].iloc[0]),
        "drift_a": float(blocks["drift_a"].mean()),
        "drift_b": float(blocks["drift_b"].mean()),
        "mean_diff": float(np.nanmean(block_diff)) if np.isfinite(block_diff).any() else np.nan,
        "layers_a_less": _layers(layers[(diff < 0) & measured]),
        "layers_a_more": _layers(layers[(diff > 0) & measured]),
        "significant_less": _layers(layers[less]),
        "significant_more": _layers(layers[more]),
        "layers_significant": _layers(layers[significant]),
        "layers_interval_excludes_zero": _layers(layers[apart]),
        "rel_less": [float(r) for r in rel[less]],
        "rel_more": [float(r) for r in rel[more]],
        "p_less": float(p[less].max()) if less.any() else np.nan,
        "p_more": float(p[more].max()) if more.any() else np.nan,
        "n_layers": len(part),
        "n_tested": int((np.isfinite(p) & (tests == "welch")).sum()),
        "samples_test": bool((tests == "samples").any()),
        "structural": _layers(layers[~measured]),
        "unchanged_in": _unchanged_in(part),
        "n_seeds_a": int(part["n_seeds_a"].min()),
        "n_seeds_b": int(part["n_seeds_b"].min()),
    }


def _unchanged_in(part: pd.DataFrame) -> list[str]:
    """Methods named in the comparison rows' ``unchanged_in`` (structural zeros)."""
    if "unchanged_in" not in part:
        return []
    texts = part["unchanged_in"].fillna("").astype(str)
    return sorted({m for text in texts for m in text.split(", ") if m})


def _accuracy(results: Results) -> pd.DataFrame:
    """Validation accuracy per task × method from the training records in the manifests."""
    rows = []
    for task, entry in (results.summary.get("tasks") or {}).items():
        for run in entry.get("runs", []):
            training = (run.get("model") or {}).get("training") or {}
            value = training.get("validation_accuracy")
            if value is not None:
                rows.append({"task": task, "method": run["method"], "accuracy": float(value)})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).pivot_table(
        index="task", columns="method", values="accuracy", aggfunc="mean"
    )


__all__ = ["CORRECTIONS", "LAYER_COLUMNS", "Headline", "headline"]
