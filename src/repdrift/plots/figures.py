"""Which figures a results folder supports, their captions, and writing them all.

:func:`catalog` is shared by :func:`plot_all` (files) and :mod:`repdrift.report` (the HTML
report), so both show the same figures with the same captions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from repdrift.errors import InputError, IntegrityError
from repdrift.plots.curves import MAX_STEP_LINES, drift_over_steps, drift_profile
from repdrift.plots.matrices import CORRECTION_LABELS, cross_layer_matrices, drift_heatmaps
from repdrift.plots.samples import sample_cosine_distributions
from repdrift.plots.style import (
    TASK_TICK_CHARS,
    check_format,
    elide,
    method_label,
    metric_label,
    order_methods,
    save_figure,
)
from repdrift.plots.tokens import (
    MIN_POSITION_SAMPLES,
    POSITION_LEVEL,
    TYPE_ORDER,
    position_profile,
    token_drift_profile,
)
from repdrift.plots.weights import intruder_counts, weight_change
from repdrift.store.results import WEIGHTS_FILES, Results, default_metric, load_results

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FigureSpec:
    """One figure a results folder supports.

    Attributes
    ----------
    name : str
        File stem, e.g. ``drift_profile_sst2``.
    kind : str
        The figure function's name, e.g. ``drift_profile``.
    task : str or None
        The task the figure is about (None for figures over all tasks).
    caption : str
        What the figure shows, in sentences suitable for a report.
    draw : callable
        Builds the :class:`~matplotlib.figure.Figure`.
    """

    name: str
    kind: str
    task: str | None
    caption: str
    draw: Callable[[], Figure]


def read_weights(path: str | Path) -> pd.DataFrame | None:
    """The weight-drift table saved in a results folder (``weights.parquet`` or
    ``weights.csv``), or None when the folder has neither."""
    path = Path(path)
    for name in WEIGHTS_FILES:
        file = path / name
        if not file.is_file():
            continue
        try:
            return pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
        except Exception as exc:  # pyarrow / pandas raise several unrelated types
            raise IntegrityError(f"{file}: unreadable weights table ({exc})") from None
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "task"


def _seeds(df: pd.DataFrame) -> str:
    counts = df.groupby("method")["run"].nunique()
    return ", ".join(f"{method_label(m)} {counts[m]}" for m in order_methods(counts.index))


def catalog(
    results: Results,
    weights: pd.DataFrame | None = None,
    *,
    metric: str | None = None,
    correction: str = "p_holm",
) -> list[FigureSpec]:
    """Every figure the tables have data for, in report order; skipped ones are logged.

    Parameters
    ----------
    results : Results
    weights : DataFrame, optional
        The weight-drift table (see :func:`read_weights`).
    metric : str, optional
        Metric of the drift figures (default:
        :func:`repdrift.store.results.default_metric`).
    correction : {"p_holm", "p_bh", "p"}
        p-value column for the significance markers.
    """
    known = set(results.drift["metric"]) if not results.drift.empty else set()
    if metric is not None and metric not in known:
        raise InputError(f"metric={metric!r} is not in the drift table; available: {sorted(known)}")
    metric = metric or default_metric(results)
    mlabel = metric_label(metric)
    settings = results.summary.get("settings", {})
    level = settings.get("level")
    drift = results.drift
    specs: list[FigureSpec] = []

    def skip(name: str, why: str) -> None:
        logger.info("skipping figure %s: %s", name, why)

    rows = drift[drift["metric"] == metric] if not drift.empty else drift
    tasks = sorted(rows["task"].unique()) if not rows.empty else []
    if not tasks:
        skip("drift_profile", f"no drift rows for metric {metric!r}")
    summary = results.task_ranking
    for task in tasks:
        part = rows[rows["task"] == task]
        band = _band_caption(summary, part, task, metric, level)
        floor = results.noise_floor
        drawn = not floor.empty and ((floor["task"] == task) & (floor["metric"] == metric)).any()
        dashed = " Dashed: drift between two seeds of the same method (seed noise floor)."
        dashed = dashed if drawn else ""
        specs.append(
            FigureSpec(
                f"drift_profile_{_slug(task)}",
                "drift_profile",
                task,
                f"Drift from the base model per layer for {task} (1 − {mlabel}, final "
                f"checkpoints; seeds: {_seeds(part)}). Thick lines: mean over seeds; thin "
                f"lines: single seeds.{band}{dashed}",
                lambda t=task: drift_profile(
                    drift, results.noise_floor, task=t, metric=metric, level=level,
                    summary=summary,
                ),
            )
        )
    comp = results.comparison
    if tasks:
        has_comp = not comp.empty and (comp["metric"] == metric).any()
        diff = _difference_caption(comp[comp["metric"] == metric], correction) if has_comp else ""
        long = [t for t in tasks if elide(t, TASK_TICK_CHARS) != t]
        if long:
            diff += " Rows: " + "; ".join(f"{elide(t, TASK_TICK_CHARS)} = {t}" for t in long) + "."
        specs.append(
            FigureSpec(
                "drift_heatmaps",
                "drift_heatmaps",
                None,
                f"Drift (1 − {mlabel}) per task and layer, mean over seeds at the final "
                f"checkpoint, one shared colour scale for the methods.{diff}",
                lambda: drift_heatmaps(drift, comp, metric=metric, correction=correction),
            )
        )
    cross = results.cross_layer
    for task in sorted(cross["task"].unique()) if not cross.empty else []:
        cmetric = str(cross.loc[cross["task"] == task, "metric"].iloc[0])
        has_emb = bool((cross.loc[cross["task"] == task, "layer_index"] < 0).any())
        specs.append(
            FigureSpec(
                f"cross_layer_{_slug(task)}",
                "cross_layer_matrices",
                task,
                f"Similarity ({metric_label(cmetric)}) of every base layer with every "
                f"fine-tuned layer for {task}, mean over seeds at the final checkpoint"
                f"{' (E: embeddings)' if has_emb else ''}. A bright diagonal means layers kept "
                "their role.",
                lambda t=task, m=cmetric: cross_layer_matrices(cross, task=t, metric=m),
            )
        )
    if cross.empty:
        skip("cross_layer", "the cross_layer table is empty")
    cos = results.sample_cosine
    for task in sorted(cos["task"].unique()) if not cos.empty else []:
        specs.append(
            FigureSpec(
                f"sample_cosine_{_slug(task)}",
                "sample_cosine_distributions",
                task,
                f"Cosine between each sample's base and fine-tuned vector per layer for {task} "
                "(final checkpoints, samples of all seeds pooled). Boxes: quartiles and "
                "median; whiskers: 1.5 IQR.",
                lambda t=task: sample_cosine_distributions(cos, task=t),
            )
        )
    if cos.empty:
        skip("sample_cosine", "no per-sample cosines (fine-tuned and base widths differ?)")
    tokens = results.token_profile
    for task in sorted(tokens["task"].unique()) if not tokens.empty else []:
        specs.append(
            FigureSpec(
                f"token_drift_{_slug(task)}",
                "token_drift_profile",
                task,
                _token_caption(tokens, task),
                lambda t=task: token_drift_profile(tokens, task=t),
            )
        )
    for task in tasks:
        part = rows[rows["task"] == task]
        if part.groupby("run")["step"].nunique().max() < 2:
            skip(f"drift_steps_{_slug(task)}", f"runs of {task} hold a single checkpoint")
            continue
        steps = set(part["step"])
        n_layers = part["layer_index"].nunique()
        lines = f" ({MAX_STEP_LINES} of {n_layers}, evenly spaced)"
        lines = lines if n_layers > MAX_STEP_LINES else ""
        final = " 'final' is the saved final model; the dotted segment marks an unrecorded gap."
        final = final if 0 in steps and len(steps) > 1 else ""
        specs.append(
            FigureSpec(
                f"drift_steps_{_slug(task)}",
                "drift_over_steps",
                task,
                f"Drift (1 − {mlabel}) over training for {task}, mean over seeds, one line "
                f"per layer{lines}.{final}",
                lambda t=task: drift_over_steps(drift, task=t, metric=metric),
            )
        )
    if weights is None or weights.empty:
        skip(
            "weight_change, intruder_counts",
            "no weights table in the results folder (`repdrift weights BASE VARIANT... "
            "--out RESULTS` writes one there)",
        )
    else:
        specs.append(
            FigureSpec(
                "weight_change",
                "weight_change",
                None,
                "Relative weight change ‖ΔW‖_F / ‖W‖_F per layer and module (log scale), "
                "mean over each method's variants. Grey: module not changed.",
                lambda: weight_change(weights),
            )
        )
        specs.append(
            FigureSpec(
                "intruder_counts",
                "intruder_counts",
                None,
                "Intruder dimensions per layer (singular vectors of the fine-tuned weight "
                "among its top k with no close match in the base weight; Shuttleworth et al. "
                "2024), summed over the modules every method changed. Bars: mean over "
                "variants; dots: single variants; black ticks: the count expected for random "
                "directions (where a count saturates). Lower panel: share of the top-k "
                "spectral energy in intruder directions, mean over modules and variants.",
                lambda: intruder_counts(weights),
            )
        )
    return specs


def _token_caption(tokens: pd.DataFrame, task: str) -> str:
    """What the per-token figure of ``task`` draws: its method, band, sample counts, the
    positions left out for too few samples, and the token types present."""
    rows = tokens[tokens["task"] == task]
    method = order_methods(rows["method"])[0]
    prof = position_profile(tokens, task=task, method=method)
    text = (
        f"Which tokens moved in {task} (token-level runs, final checkpoints): drift (1 − cosine) "
        "of each token's base and fine-tuned vectors. Left: mean over the tokens at each "
        f"position (one per sample that long) per layer, {method_label(method)} runs"
    )
    if prof["ci_low"].notna().any():
        text += f"; band: {POSITION_LEVEL:.0%} interval of the mean over samples"
    if prof["n_samples"].notna().any():
        text += "; below: how many samples reach each position"
        hidden = prof.loc[~prof["shown"], "position"]
        if not hidden.empty:
            text += (
                f"; positions reached by fewer than {MIN_POSITION_SAMPLES} samples (from "
                f"position {int(hidden.min())} on) are not drawn"
            )
    kinds = set(rows.loc[rows["by"] == "type", "key"].astype(str))
    named = [k for k in TYPE_ORDER if k in kinds] + sorted(kinds - set(TYPE_ORDER))
    text += ". Right: mean by token type per layer"
    text += f" ({', '.join(named)})" if named else ""
    methods = order_methods(rows["method"])
    if len(methods) > 1:
        others = ", ".join(method_label(m) for m in methods[1:])
        text += f"; solid: {method_label(method)}, dashed: {others}"
    return text + "."


def _band_caption(
    summary: pd.DataFrame, part: pd.DataFrame, task: str, metric: str, level: float | None
) -> str:
    """What the drift profile's bands are, from the method summary's ``interval`` kinds."""
    what = f"{level:.0%} " if level else ""
    kinds = set()
    if summary is not None and not summary.empty and "interval" in summary.columns:
        mine = summary[(summary["task"] == task) & (summary["metric"] == metric)]
        kinds = set(mine.loc[mine["ci_low"].notna(), "interval"].astype(str)) - {""}
    text = ""
    if "seeds+samples" in kinds:
        text += (
            f" Bands: {what}interval of the mean over seeds, with seed-to-seed variation "
            "and the sampling variation of the mean (seeds, then samples)."
        )
    if "samples" in kinds or (not kinds and part["ci_low"].notna().any()
                              and part["run"].nunique() == 1):  # fmt: skip
        text += (
            f" {'Bands' if not text else 'For a method with one seed the band is'}: {what}"
            "half-sample interval of that single run (sampling noise only, not the variation "
            "between trainings)."
        )
    if "structural_zero" in getattr(summary, "columns", []):
        zero = summary[(summary["task"] == task) & (summary["metric"] == metric)]
        if zero["structural_zero"].astype(bool).any():
            text += " Open markers: layers unchanged in every seed (structural zeros)."
    return text


def _difference_caption(comp: pd.DataFrame, correction: str) -> str:
    a, b = method_label(comp["method_a"].iloc[0]), method_label(comp["method_b"].iloc[0])
    tests = set(comp["test"].astype(str)) if "test" in comp else {"welch"}
    text = f" Bottom: difference {a} − {b}; "
    if "welch" in tests:
        text += (
            f"markers give the {CORRECTION_LABELS[correction]}-adjusted seed-level p "
            "(Welch over seeds; * < 0.05, ** < 0.01, *** < 0.001)."
        )
    else:
        text += (
            "no markers: with fewer than 2 seeds per method there is no seed-level test, and "
            "each cell describes two particular trainings."
        )
    if "structural zero" in tests:
        text += " ○: a layer one method left unchanged in every seed (not tested)."
    return text


def plot_all(
    results_path: str | Path | Results,
    out_dir: str | Path,
    *,
    format: str = "png",
    dpi: int = 300,
    metric: str | None = None,
    correction: str = "p_holm",
) -> list[Path]:
    """Write every figure the results folder has data for; skip (and log) the others.

    Parameters
    ----------
    results_path : str, Path or Results
        A results folder written by :func:`repdrift.analysis.compare_runs.compare` (its optional
        ``weights.parquet`` / ``weights.csv`` adds the weight-space figures), or loaded
        results.
    out_dir : str or Path
        Created if needed; files are named ``{figure}[_{task}].{format}``.
    format : {"png", "pdf", "svg"}
    dpi : int
        Resolution of PNG output (and of raster parts of PDF/SVG).
    metric : str, optional
        Metric of the drift figures (default ``cka_debiased`` when computed).
    correction : {"p_holm", "p_bh", "p"}
        p-value column for the significance markers.

    Returns
    -------
    list of Path
        The files written, in catalog order.
    """
    fmt = check_format(format)
    if isinstance(results_path, Results):
        results = results_path
        weights = read_weights(results.path) if results.path is not None else None
    else:
        results = load_results(results_path)
        weights = read_weights(results_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in catalog(results, weights, metric=metric, correction=correction):
        fig = spec.draw()
        written.append(save_figure(fig, out / f"{spec.name}.{fmt}", dpi=dpi))
        logger.info("wrote %s", written[-1])
    return written
