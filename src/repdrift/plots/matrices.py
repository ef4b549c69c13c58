"""Heatmap figures: task × layer drift with significance, base × fine-tuned layer similarity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from repdrift.common.display import STRUCTURAL_MARK, stars
from repdrift.errors import InputError
from repdrift.plots.style import (
    COLUMN_WIDTH,
    DIVERGING_CMAP,
    SEQUENTIAL_CMAP,
    TASK_TICK_CHARS,
    elide,
    layer_tick_label,
    method_label,
    metric_label,
    new_figure,
    order_methods,
    require_columns,
    select,
    styled,
    task_title,
    thin_ticks,
)
from repdrift.store.results import PREFERRED_METRIC, final_step

CORRECTION_LABELS = {"p_holm": "Holm", "p_bh": "Benjamini–Hochberg", "p": "unadjusted"}
#: Smallest height of one task × layer panel of the drift heatmaps (inches).
_MIN_PANEL_HEIGHT = 0.8


def _cmap(name: str):
    # Missing cells read as light grey, not as a value.
    return colormaps[name].with_extremes(bad="0.88")


def _text_color(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _heatmap(ax: Axes, grid: pd.DataFrame, cmap, norm) -> object:
    """One task × layer panel; columns of ``grid`` are layer indices."""
    im = ax.imshow(grid.to_numpy(dtype=float), cmap=cmap, norm=norm, aspect="auto")
    cols = list(grid.columns)
    shown = thin_ticks(list(range(len(cols))), 13)
    ax.set_xticks(shown, [layer_tick_label(cols[i], compact=True) for i in shown])
    ax.set_yticks(range(len(grid.index)), [elide(t, TASK_TICK_CHARS) for t in grid.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


@styled
def drift_heatmaps(
    drift: pd.DataFrame,
    comparison: pd.DataFrame | None = None,
    *,
    metric: str = PREFERRED_METRIC,
    correction: str = "p_holm",
    methods: Sequence[str] | None = None,
) -> Figure:
    """Task × layer drift per method (shared scale) and the difference between two methods.

    Method panels show the mean drift over seeds at the final checkpoint (from ``drift``).
    The last panel shows ``drift_diff`` (method a − method b) from ``comparison`` on a
    diverging scale centred at 0, with markers from the ``correction`` column: ``*`` < 0.05,
    ``**`` < 0.01, ``***`` < 0.001, only where the test's unit is the seed (``test ==
    "welch"``): with one seed of a method a cell describes two trainings and gets no marker.
    Structural zeros (a layer one method left unchanged in every seed) are marked ``○`` and
    never tested.

    Parameters
    ----------
    drift, comparison : DataFrame
        Tables of a results folder; an empty or missing ``comparison`` omits the last panel.
    metric : str
    correction : {"p_holm", "p_bh", "p"}
        Which p-value column sets the markers.
    methods : sequence of str, optional
        Method panels to draw (default: every method, LoRA first).
    """
    if correction not in CORRECTION_LABELS:
        raise InputError(f"correction={correction!r}; expected one of {list(CORRECTION_LABELS)}")
    require_columns(drift, ("task", "method", "run", "step", "layer_index", "metric"), "drift")
    rows = select(final_step(drift), "drift", metric=metric)
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    tasks = sorted(rows["task"].unique())
    layers = sorted(rows["layer_index"].unique())
    comp = None
    if comparison is not None and not comparison.empty:
        comp = comparison[comparison["metric"] == metric]
        comp = None if comp.empty else comp
    n_panels = len(methods) + (comp is not None)
    # A panel is at least _MIN_PANEL_HEIGHT tall: with one or two tasks, shorter panels leave
    # colour bars shorter than their labels, and the labels of neighbouring bars overlap.
    panel_h = max(0.45 + 0.2 * len(tasks), _MIN_PANEL_HEIGHT)
    fig = new_figure(COLUMN_WIDTH, 0.3 + panel_h * n_panels)
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]

    grids = {
        m: rows[rows["method"] == m]
        .groupby(["task", "layer_index"])["drift"]
        .mean()
        .unstack()
        .reindex(index=tasks, columns=layers)
        for m in methods
    }
    values = np.concatenate([g.to_numpy(dtype=float).ravel() for g in grids.values()])
    norm = Normalize(min(0.0, float(np.nanmin(values))), float(np.nanmax(values)))
    cmap = _cmap(SEQUENTIAL_CMAP)
    im = None
    for ax, method in zip(axes, methods, strict=False):
        im = _heatmap(ax, grids[method], cmap, norm)
        ax.set_title(method_label(method), loc="left")
    fig.colorbar(
        im, ax=list(axes[: len(methods)]), label=f"drift\n(1 − {metric_label(metric)})",
        shrink=0.9,
    )  # fmt: skip
    if comp is not None:
        ax = axes[-1]
        a, b = comp["method_a"].iloc[0], comp["method_b"].iloc[0]
        diff = comp.pivot_table(index="task", columns="layer_index", values="drift_diff")
        diff = diff.reindex(index=tasks, columns=layers)
        limit = float(np.nanmax(np.abs(diff.to_numpy(dtype=float)))) or 1.0
        dnorm = Normalize(-limit, limit)  # symmetric: white is exactly "no difference"
        dcmap = _cmap(DIVERGING_CMAP)
        dim = _heatmap(ax, diff, dcmap, dnorm)
        tests = comp["test"].astype(str) if "test" in comp else pd.Series("welch", comp.index)
        seed_level = comp.assign(_p=comp[correction].where(tests == "welch"))
        p = seed_level.pivot_table(index="task", columns="layer_index", values="_p")
        p = p.reindex(index=tasks, columns=layers)
        zero = comp.assign(_z=(tests == "structural zero").astype(float))
        zero = zero.pivot_table(index="task", columns="layer_index", values="_z")
        zero = zero.reindex(index=tasks, columns=layers).fillna(0.0)
        for i, j in np.ndindex(p.shape):
            marker = STRUCTURAL_MARK if zero.iat[i, j] else stars(float(p.iat[i, j]))
            if marker:
                color = _text_color(dcmap(dnorm(diff.iat[i, j])))
                ax.text(j, i, marker, ha="center", va="center_baseline", color=color, fontsize=7)
        tested = bool((tests == "welch").any())
        note = (
            f"* p < .05, ** p < .01, {CORRECTION_LABELS[correction]}, seeds"
            if tested
            else "no test: < 2 seeds per method"
        )
        # The note on a line of its own: on one line it runs into the colour bar's label.
        ax.set_title(f"{method_label(a)} − {method_label(b)}\n({note})", loc="left")
        fig.colorbar(dim, ax=ax, label="drift\ndifference", shrink=0.9)
    axes[-1].set_xlabel("layer (E: embeddings)" if layers and layers[0] < 0 else "layer")
    return fig


def _layer_order(cross: pd.DataFrame) -> dict[str, int]:
    """Layer name → index, from the fine-tuned side's ``layer_index`` column."""
    pairs = cross[["layer", "layer_index"]].drop_duplicates()
    return dict(zip(pairs["layer"], pairs["layer_index"].astype(int), strict=True))


@styled
def cross_layer_matrices(
    cross_layer: pd.DataFrame,
    *,
    task: str,
    metric: str | None = None,
    methods: Sequence[str] | None = None,
) -> Figure:
    """Base layer × fine-tuned layer similarity, one panel per method (mean over seeds).

    A bright diagonal means each layer still resembles its own base layer; off-diagonal
    brightness means a fine-tuned layer now resembles a different base layer.

    Parameters
    ----------
    cross_layer : DataFrame
        The ``cross_layer`` table.
    task : str
    metric : str, optional
        Default: the only metric in the table.
    """
    require_columns(
        cross_layer,
        ("task", "method", "layer", "layer_index", "base_layer", "metric"),
        "cross_layer",
    )
    rows = select(cross_layer, "cross_layer", task=task, metric=metric)
    if metric is None:
        metric = str(rows["metric"].iloc[0])
        rows = rows[rows["metric"] == metric]
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    order = _layer_order(rows)
    rows = rows.assign(base_index=rows["base_layer"].map(order))
    if rows["base_index"].isna().any():
        raise InputError(f"cross_layer: base layers {set(rows['base_layer'])} not all known")
    layers = sorted(order.values())
    grids = {
        m: rows[rows["method"] == m]
        .groupby(["base_index", "layer_index"])["similarity"]
        .mean()
        .unstack()
        .reindex(index=layers, columns=layers)
        for m in methods
    }
    low = min(0.0, min(float(np.nanmin(g.to_numpy(dtype=float))) for g in grids.values()))
    norm = Normalize(low, 1.0)
    fig = new_figure(COLUMN_WIDTH, 0.55 + COLUMN_WIDTH / (len(methods) + 0.45))
    axes = fig.subplots(1, len(methods), squeeze=False, sharey=True)[0]
    ticks = thin_ticks(list(range(len(layers))), 7)
    labels = [layer_tick_label(layers[i], compact=True) for i in ticks]
    im = None
    for ax, method in zip(axes, methods, strict=True):
        im = ax.imshow(
            grids[method].to_numpy(dtype=float), cmap=_cmap(SEQUENTIAL_CMAP), norm=norm,
            origin="lower",
        )  # fmt: skip
        n = rows.loc[rows["method"] == method, "run"].nunique()
        ax.set_title(f"{method_label(method)} ({n} seed{'s' * (n != 1)})", loc="left")
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.set_xlabel("fine-tuned layer")  # E: embeddings (see the caption)
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[0].set_ylabel("base layer")
    fig.colorbar(im, ax=list(axes), label=f"similarity ({metric_label(metric)})", shrink=0.85)
    task_title(fig, task)
    return fig
