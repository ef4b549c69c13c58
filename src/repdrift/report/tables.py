"""Report tables: result rows selected and formatted as strings for the HTML template."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repdrift.analysis.stored_headline import headline_of
from repdrift.common.display import (
    MISSING,
    STRUCTURAL_MARK,
    TYPESET_MINUS,
    WITHIN_FLOOR_MARK,
    number,
    stars,
)
from repdrift.common.naming import MEAN_UNMASKED
from repdrift.plots.style import method_label, order_methods
from repdrift.store.results import FINAL_MODEL_STEP, Results, final_step


@dataclass
class Table:
    """A formatted table: header cells, rows of cells, rows to emphasise, a caption."""

    caption: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    strong: list[bool] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)  # right-align these columns
    groups: list[tuple[str, int]] = field(default_factory=list)  # header cells spanning columns
    prose: list[bool] = field(default_factory=list)  # free text: wraps anywhere, given room

    def add(self, cells: list[str], strong: bool = False) -> None:
        self.rows.append(cells)
        self.strong.append(strong)

    def cell_class(self, column: int) -> str:
        """CSS class of a column's cells: ``num`` (right-aligned, never wrapped), ``prose``
        (long free text) or ``text`` (wraps at spaces)."""
        if self.numeric and self.numeric[column]:
            return "num"
        return "prose" if self.prose and self.prose[column] else "text"


def fmt_num(x: Any, digits: int = 3) -> str:
    """Fixed decimals, below them 0 (:func:`repdrift.common.display.number`); NaN as a dash."""
    return number(x, digits, minus=TYPESET_MINUS, missing=MISSING)


def fmt_p(p: Any) -> str:
    if p is None or pd.isna(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{float(p):.3f}"


def fmt_pct(x: Any) -> str:
    if x is None or pd.isna(x) or math.isinf(float(x)):
        return "–"
    if round(float(x) * 100) == 0:
        return "0%"
    return f"{float(x) * 100:+.0f}%".replace("-", "−")


def seed_stars(row: pd.Series, correction: str) -> str:
    """Significance markers only for a test whose unit is the seed; ``○`` for structural zeros."""
    test = str(row.get("test", "welch"))
    if test == "structural zero":
        return f" {STRUCTURAL_MARK}"
    return stars(float(row[correction])) if test == "welch" else ""


def layer_label(index: int) -> str:
    """A layer as the report's tables show it: ``embeddings`` (index -1) or the block index."""
    return "embeddings" if int(index) < 0 else str(int(index))


def _short_path(text: str, keep: int = 3) -> str:
    parts = Path(text).parts
    return text if len(text) <= 48 or len(parts) <= keep else "…/" + "/".join(parts[-keep:])


def describe_model(model: Any) -> str:
    """A run's model in a few words: name or (shortened) path, and its architecture."""
    if not model:
        return "–"
    if not isinstance(model, dict):
        return str(model)
    for key in ("name", "name_or_path", "id", "path", "source"):
        if model.get(key):
            name = _short_path(str(model[key]))
            arch = model.get("architecture")
            return f"{name} ({arch})" if arch else name
    shown = {k: v for k, v in model.items() if k != "training"}
    return json.dumps(shown, sort_keys=True, default=str)[:120] if shown else "–"


def describe_variant(runs: list[dict]) -> str:
    """What distinguishes a method's runs: LoRA rank and alpha when recorded."""
    settings = set()
    for run in runs:
        model = run.get("model") or {}
        if isinstance(model, dict) and model.get("r") is not None:
            alpha = model.get("lora_alpha")
            settings.add(f"r = {model['r']}" + (f", α = {alpha}" if alpha is not None else ""))
    return "; ".join(sorted(settings)) or "–"


def setup_table(results: Results) -> Table:
    """What was compared: per task, the base run and each method's seeds and checkpoints."""
    table = Table(
        "Runs compared (from results.json)",
        [
            "Task",
            "Base model",
            "Method",
            "Adapter",
            "Runs",
            "Seeds",
            "Checkpoint steps",
            "Samples",
            "Pooling",
        ],
        numeric=[False, False, False, False, True, False, False, True, False],
    )
    for task, entry in sorted(results.summary.get("tasks", {}).items()):
        ref = entry.get("reference", {})
        runs = entry.get("runs", [])
        for method in order_methods(r.get("method") for r in runs):
            mine = [r for r in runs if r.get("method") == method]
            seeds = sorted({r.get("seed") for r in mine if r.get("seed") is not None})
            steps = sorted({s for r in mine for s in (r.get("steps") or [])})
            step_text = ", ".join("final" if s == FINAL_MODEL_STEP else f"{s:,}" for s in steps)
            step_text = step_text or "–"
            samples = {r.get("n_samples") for r in mine} | {ref.get("n_samples")}
            pooling = {r.get("pooling") for r in mine} | {ref.get("pooling")}
            table.add(
                [
                    task,
                    describe_model(ref.get("model")),
                    method_label(method),
                    describe_variant(mine),
                    str(len(mine)),
                    ", ".join(map(str, seeds)) or "–",
                    step_text,
                    ", ".join(str(s) for s in sorted(samples, key=str) if s is not None) or "–",
                    ", ".join(str(p) for p in sorted(pooling, key=str) if p is not None) or "–",
                ]
            )
    if any(row[-1] and MEAN_UNMASKED in row[-1] for row in table.rows):
        table.caption += (
            " — mean_unmasked: the original study's unpooled layers averaged over every "
            "position, padding included, as its analysis did; for the mean over real tokens, import "
            "them again with the samples and tokenizer (repdrift import --task --tokenizer)"
        )
    return table


def run_flags(results: Results) -> list[tuple[str, list[str]]]:
    """Per flagged run (``task: name``), what results.json says the reader should know: labels
    read from a folder name, lineage not checked, inputs compared on purpose, ..."""
    return [
        (f"{task}: {run.get('name')}", list(run["flags"]))
        for task, entry in sorted(results.summary.get("tasks", {}).items())
        for run in entry.get("runs", [])
        if run.get("flags")
    ]


def comparison_tables(
    results: Results, metric: str, correction: str, alpha: float, level: float | None
) -> list[Table]:
    """Per task, the method comparison per layer for one metric."""
    comp = results.comparison
    if comp.empty:
        return []
    comp = comp[comp["metric"] == metric]
    tables = []
    for task, part in comp.groupby("task", sort=True):
        a, b = method_label(part["method_a"].iloc[0]), method_label(part["method_b"].iloc[0])
        ci = f"{level:.0%} CI" if level else "CI"
        tests = set(part["test"].astype(str))
        test_note = (
            " p-values: Welch over seeds, adjusted per metric over layers × tasks."
            if "welch" in tests
            else " One seed of a method: differences and intervals describe those two "
            "trainings (half-samples), no test of the methods, no markers."
        )
        if "structural zero" in tests:
            test_note += (
                " ○: a layer one method left unchanged in every seed (structural zero), "
                "not tested, no relative change."
            )
        table = Table(
            f"{task}: {a} vs {b}, drift = 1 − {metric} at the final checkpoint, mean over "
            f"seeds ({int(part['n_seeds_a'].min())} {a}, {int(part['n_seeds_b'].min())} {b}). "
            f"Bold: {correction} < {alpha:g} (seed-level tests only). Interval: "
            f"{'seeds, then samples' if 'welch' in tests else 'half-samples of the two runs'}."
            f"{test_note}",
            ["Layer", a, b, f"{a} − {b}", ci, f"rel. to {b}", "p", "Holm", "BH", "Hedges' g"],
            numeric=[False, *[True] * 9],
            groups=[("", 1), ("drift", 2), ("difference", 3), ("p-value", 3), ("", 1)],
        )
        for _, r in part.sort_values("layer_index").iterrows():
            table.add(
                [
                    layer_label(r["layer_index"]),
                    fmt_num(r["drift_a"]),
                    fmt_num(r["drift_b"]),
                    fmt_num(r["drift_diff"]) + seed_stars(r, correction),
                    f"[{fmt_num(r['ci_low'])}, {fmt_num(r['ci_high'])}]",
                    fmt_pct(r["rel_diff"]),
                    fmt_p(r["p"]),
                    fmt_p(r["p_holm"]),
                    fmt_p(r["p_bh"]),
                    fmt_num(r["effect_size"], 2),
                ],
                strong=bool(r[correction] < alpha) and str(r.get("test", "welch")) == "welch",
            )
        tables.append(table)
    return tables


def drift_tables(results: Results, metric: str) -> list[Table]:
    """Per task, per-layer drift of each method: mean and range over seeds, interval, floor.

    The mean, the floor and the flags (structural zero, within the floor) are the headline's
    (:attr:`repdrift.analysis.headline.Headline.layers`), as the console shows them."""
    drift = final_step(results.drift)
    if drift.empty:
        return []
    drift = drift[drift["metric"] == metric]
    h = headline_of(results, metric)
    summary = results.task_ranking
    if summary.empty or "ci_low" not in summary.columns:
        summary = pd.DataFrame(columns=["task", "method", "metric", "layer_index", "ci_low",
                                        "ci_high", "interval", "structural_zero"])  # fmt: skip
    summary = summary[summary["metric"] == metric]
    tables = []
    for task, part in drift.groupby("task", sort=True):
        methods = order_methods(part["method"])
        columns = ["Layer"]
        groups = [("", 1)]
        for m in methods:
            columns += ["drift", "seed range", "interval", "seed floor"]
            groups.append((method_label(m), 4))
        table = Table(
            f"{task}: drift = 1 − {metric} per layer at the final checkpoint. Drift: mean over "
            "seeds; seed range: min–max over seeds; interval: of the mean over seeds, with "
            "seed-to-seed and sampling variation (seeds, then samples), or, marked †, the "
            "half-sample interval of a single run (sampling noise only); ○: unchanged in every "
            "seed (structural zero); seed floor: drift between two seeds of the same method; "
            f"{WITHIN_FLOOR_MARK}: within seed noise (drift no larger than the seed floor).",
            columns,
            numeric=[False] + [True] * (len(columns) - 1),
            groups=groups,
        )
        for index in sorted(part["layer_index"].unique()):
            cells = [layer_label(index)]
            for m in methods:
                rows = part[(part["method"] == m) & (part["layer_index"] == index)]
                shown = h.layer(str(task), str(m), int(index))
                iv = summary[(summary["task"] == task) & (summary["method"] == m)
                             & (summary["layer_index"] == index)]  # fmt: skip
                low, high = (iv["ci_low"].iloc[0], iv["ci_high"].iloc[0]) if len(iv) else (
                    math.nan, math.nan)  # fmt: skip
                single = " †" if len(iv) and iv["interval"].iloc[0] == "samples" else ""
                mark = "" if shown is None else (
                    f" {STRUCTURAL_MARK}" if shown["structural_zero"]
                    else f" {WITHIN_FLOOR_MARK}" if shown["within_floor"] else ""
                )  # fmt: skip
                cells += [
                    (fmt_num(shown["drift"]) if shown is not None else "–") + mark,
                    f"{fmt_num(rows['drift'].min())}–{fmt_num(rows['drift'].max())}"
                    if len(rows) > 1
                    else "–",
                    f"[{fmt_num(low)}, {fmt_num(high)}]{single}",
                    fmt_num(shown["floor"]) if shown is not None else "–",
                ]
            table.add(cells)
        tables.append(table)
    return tables


def metrics_table(results: Results, correction: str, alpha: float) -> Table | None:
    """Difference a − b per task × layer for every metric, to see whether metrics agree."""
    comp = results.comparison
    if comp.empty or comp["metric"].nunique() < 2:
        return None
    metrics = list(dict.fromkeys(comp["metric"]))
    a, b = method_label(comp["method_a"].iloc[0]), method_label(comp["method_b"].iloc[0])
    table = Table(
        f"Drift difference {a} − {b} per metric (* < 0.05, ** < 0.01, *** < 0.001, "
        f"{correction}, seed-level tests only; ○ structural zero); bold rows: significant "
        "for every metric.",
        ["Task", "Layer", *metrics],
        numeric=[False, False] + [True] * len(metrics),
    )
    for (task, index), part in comp.groupby(["task", "layer_index"], sort=True):
        by_metric = part.set_index("metric")
        cells = [str(task), layer_label(index)]
        all_sig = True
        for m in metrics:
            if m not in by_metric.index:
                cells.append("–")
                all_sig = False
                continue
            r = by_metric.loc[m]
            cells.append(fmt_num(r["drift_diff"]) + seed_stars(r, correction))
            all_sig &= bool(r[correction] < alpha) and str(r.get("test", "welch")) == "welch"
        table.add(cells, strong=all_sig)
    return table
