"""Line figures of representation drift: across layers, and across training steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from repdrift.errors import InputError
from repdrift.plots.style import (
    COLUMN_WIDTH,
    TASK_TICK_CHARS,
    elide,
    figure_and_axes,
    layer_tick_label,
    method_color,
    method_label,
    metric_label,
    new_figure,
    order_methods,
    require_columns,
    select,
    set_layer_axis,
    styled,
    task_title,
    thin_ticks,
)
from repdrift.store.results import PREFERRED_METRIC, final_step

_DRIFT_COLUMNS = ("task", "method", "run", "step", "layer_index", "metric", "drift")


#: Most layer lines :func:`drift_over_steps` draws by default (evenly spaced over depth).
MAX_STEP_LINES = 8


def drift_ylabel(metric: str) -> str:
    return f"drift (1 − {metric_label(metric)})"


#: Legend text of each kind of band (``interval`` column of the method summary).
BAND_LABELS = {
    "seeds+samples": "CI of mean: seeds + samples",
    "samples": "CI of one run: samples",
}


def _bands(summary: pd.DataFrame | None, task: str, metric: str) -> pd.DataFrame:
    """Method-level interval rows of ``task`` / ``metric`` from the ``task_ranking`` table."""
    if summary is None or summary.empty or "ci_low" not in summary.columns:
        return pd.DataFrame(columns=["method", "layer_index", "ci_low", "ci_high", "interval"])
    return summary[(summary["task"] == task) & (summary["metric"] == metric)]


@styled
def drift_profile(
    drift: pd.DataFrame,
    noise_floor: pd.DataFrame | None = None,
    *,
    task: str,
    metric: str = PREFERRED_METRIC,
    methods: Sequence[str] | None = None,
    level: float | None = None,
    ax: Axes | None = None,
    summary: pd.DataFrame | None = None,
) -> Figure:
    """Layer-wise drift of each method from the base model for one task (final checkpoints).

    Thick line: mean drift over seeds. Thin lines: the individual seeds (their spread is the
    seed-to-seed variability). Band: the method-level interval of the mean drift from
    ``summary`` (the ``task_ranking`` table): hierarchical, seeds then samples, when the method
    has several seeds; with a single seed, that run's half-sample interval, labelled as such.
    Without ``summary`` only a single run's half-sample interval can be drawn. Open markers:
    structural zeros (the layer is unchanged in every seed). Dashed line: the seed noise
    floor, 1 − similarity between two seeds of the same method, i.e. how different two
    fine-tuning runs are from each other.

    Parameters
    ----------
    drift : DataFrame
        The ``drift`` table of a results folder.
    noise_floor : DataFrame, optional
        The ``noise_floor`` table; omitted or empty draws no floor.
    task, metric : str
        Which rows to draw.
    methods : sequence of str, optional
        Methods to draw, in legend order (default: all, LoRA first).
    level : float, optional
        Confidence level of the intervals, for the legend.
    ax : Axes, optional
        Draw into these axes (legend inside) instead of a new single-column figure.
    summary : DataFrame, optional
        The ``task_ranking`` table (method-level intervals and structural zeros).

    Returns
    -------
    Figure
    """
    require_columns(drift, _DRIFT_COLUMNS, "drift")
    rows = select(final_step(drift), "drift", task=task, metric=metric)
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    own_figure = ax is None
    fig, ax = figure_and_axes(ax, COLUMN_WIDTH, 2.7)
    handles: list = []
    has_floor = has_zero = False
    band_kinds: set[str] = set()
    bands = _bands(summary, task, metric)
    for method in methods:
        part = rows[rows["method"] == method]
        if part.empty:
            continue
        color = method_color(method, methods)
        for _, run in part.groupby("run"):
            run = run.sort_values("layer_index")
            ax.plot(run["layer_index"], run["drift"], color=color, lw=0.5, alpha=0.45)
        mean = part.groupby("layer_index")["drift"].mean()
        n_seeds = part["run"].nunique()
        line = ax.plot(mean.index, mean.to_numpy(), color=color, marker="o", zorder=3)[0]
        line.set_label(f"{method_label(method)} (mean of {n_seeds} seed{'s' * (n_seeds != 1)})")
        handles.append(line)
        band = bands[bands["method"] == method].sort_values("layer_index")
        if band.empty and n_seeds == 1:  # one run: its own half-sample interval
            band = part.sort_values("layer_index").assign(interval="samples")
        if not band.empty and band["ci_low"].notna().any():
            band_kinds |= set(band["interval"].astype(str)) - {""}
            ax.fill_between(
                band["layer_index"], band["ci_low"], band["ci_high"], color=color, alpha=0.2,
                lw=0,
            )  # fmt: skip
        if "structural_zero" in band.columns and band["structural_zero"].astype(bool).any():
            has_zero = True
            zero = band[band["structural_zero"].astype(bool)]
            ax.plot(zero["layer_index"], mean.reindex(zero["layer_index"]).to_numpy(), ls="none",
                    marker="o", mfc="white", mec=color, zorder=4)  # fmt: skip
        if noise_floor is not None and not noise_floor.empty:
            floor = noise_floor[
                (noise_floor["task"] == task)
                & (noise_floor["metric"] == metric)
                & (noise_floor["method"] == method)
            ].sort_values("layer_index")
            if not floor.empty:
                has_floor = True
                ax.plot(floor["layer_index"], floor["drift"], color=color, ls="--", lw=0.9)
    grey = "0.35"
    handles.append(Line2D([], [], color=grey, lw=0.5, label="single seed"))
    for kind in sorted(band_kinds):
        what = f"{level:.0%} " if level else ""
        handles.append(Patch(color=grey, alpha=0.3, lw=0, label=f"{what}{BAND_LABELS[kind]}"))
    if has_zero:
        handles.append(Line2D([], [], color=grey, marker="o", mfc="white", ls="none",
                              label="unchanged in every seed"))  # fmt: skip
    if has_floor:
        handles.append(Line2D([], [], color=grey, ls="--", lw=0.9, label="seed-vs-seed drift"))
    set_layer_axis(ax, rows["layer_index"])
    ax.set_xlabel("layer (transformer block output)")
    ax.set_ylabel(drift_ylabel(metric))
    shown = [rows["drift"].to_numpy(float)]
    if not bands.empty:
        shown.append(bands["ci_low"].to_numpy(float))
    low = float(np.nanmin(np.concatenate(shown)))
    ax.set_ylim(
        bottom=min(0.0, low * 1.05)
    )  # drift starts at 0: anchoring there keeps scale honest
    ax.grid(axis="y")
    if own_figure:
        task_title(fig, task)
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
    else:
        ax.set_title(elide(task, TASK_TICK_CHARS * 2))
        ax.legend(handles=handles)
    return fig


def _step_positions(steps: Sequence[int]) -> tuple[dict[int, float], list[float], list[str]]:
    """x position and tick label of each step; step 0 (the final model) goes last."""
    middle = sorted(s for s in set(steps) if s > 0)
    pos: dict[int, float] = {s: float(s) for s in middle}
    ticks = [float(s) for s in thin_ticks(middle, 5)]
    labels = [f"{int(t):,}" for t in ticks]
    if 0 in steps:
        if middle:
            gap = float(np.median(np.diff([0, *middle])))
            pos[0] = middle[-1] + gap
        else:
            pos[0] = 0.0
        ticks.append(pos[0])
        labels.append("final")
    return pos, ticks, labels


def _pick_layers(indices: Sequence[int], layers: Sequence[int] | None, max_lines: int) -> list[int]:
    available = sorted({int(i) for i in indices})
    if layers is not None:
        chosen = [int(i) for i in layers]
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise InputError(f"layers {unknown} not in the drift table; available: {available}")
        return sorted(chosen)
    if len(available) <= max_lines:
        return available
    picks = np.unique(np.round(np.linspace(0, len(available) - 1, max_lines)).astype(int))
    return [available[i] for i in picks]


@styled
def drift_over_steps(
    drift: pd.DataFrame,
    *,
    task: str,
    metric: str = PREFERRED_METRIC,
    layers: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    max_lines: int = MAX_STEP_LINES,
) -> Figure:
    """Drift at each training checkpoint, one panel per method, one line per layer.

    Lines are the mean over seeds. Step 0 is the final model (the run folder's
    ``step_000000``) and is drawn last, joined by a dotted segment because its distance from
    the last intermediate checkpoint is not recorded.

    Parameters
    ----------
    drift : DataFrame
        The ``drift`` table; the task must have runs with at least two steps.
    task, metric : str
    layers : sequence of int, optional
        Layer indices to draw (-1 = embeddings); default: at most ``max_lines`` evenly spaced.
    methods : sequence of str, optional

    Raises
    ------
    InputError
        The task has no run with more than one checkpoint.
    """
    require_columns(drift, _DRIFT_COLUMNS, "drift")
    rows = select(drift, "drift", task=task, metric=metric)
    if rows.groupby("run")["step"].nunique().max() < 2:
        raise InputError(f"drift: no run of task {task!r} has more than one checkpoint step")
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    chosen = _pick_layers(rows["layer_index"], layers, max_lines)
    pos, ticks, labels = _step_positions(rows["step"].unique())
    cmap = _layer_colors(len(chosen))
    fig = new_figure(COLUMN_WIDTH, 1.2 + 1.25 * len(methods))
    axes = fig.subplots(len(methods), 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, method in zip(axes, methods, strict=True):
        part = rows[(rows["method"] == method) & rows["layer_index"].isin(chosen)]
        mean = part.groupby(["layer_index", "step"])["drift"].mean().reset_index()
        for color, (index, line) in zip(cmap, mean.groupby("layer_index"), strict=False):
            line = line.assign(x=line["step"].map(pos)).sort_values("x")
            middle, final = line[line["step"] > 0], line[line["step"] == 0]
            label = f"{layer_tick_label(index)}"
            ax.plot(middle["x"], middle["drift"], color=color, marker="o", label=label)
            if not final.empty:
                tail = pd.concat([middle.tail(1), final])
                ax.plot(tail["x"], tail["drift"], color=color, ls=":", lw=1.0)
                ax.plot(final["x"], final["drift"], color=color, marker="s", ls="none")
        n_seeds = part["run"].nunique()
        ax.set_title(
            f"{method_label(method)} (mean of {n_seeds} seed{'s' * (n_seeds != 1)})", loc="left"
        )
        ax.set_ylabel(drift_ylabel(metric))
        ax.grid(axis="y")
    # One explicit range for the shared axis: limits set from the first panel alone would
    # clip the others.
    shown = rows.loc[rows["layer_index"].isin(chosen), "drift"]
    low, high = min(0.0, float(shown.min())), float(shown.max())
    pad = 0.05 * (high - low or 1.0)
    axes[0].set_ylim(low - (pad if low < 0 else 0.0), high + pad)
    axes[-1].set_xticks(ticks, labels)
    axes[-1].set_xlabel("training step")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", title="layer")
    task_title(fig, task)
    return fig


def _layer_colors(n: int) -> list:
    """Ordered colours for n layers: viridis without its lightest (low-contrast) end."""
    from matplotlib import colormaps

    return [colormaps["viridis"](v) for v in np.linspace(0.0, 0.85, max(n, 1))]
