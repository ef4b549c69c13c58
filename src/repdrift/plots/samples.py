"""Distributions over samples: how evenly drift is spread across inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from repdrift.plots.style import (
    COLUMN_WIDTH,
    TASK_TICK_CHARS,
    elide,
    figure_and_axes,
    method_color,
    method_label,
    order_methods,
    require_columns,
    select,
    set_layer_axis,
    styled,
    task_title,
)
from repdrift.store.results import final_step


@styled
def sample_cosine_distributions(
    sample_cosine: pd.DataFrame,
    *,
    task: str,
    methods: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Per-layer box plots of the per-sample cosine between base and fine-tuned vectors.

    Each box pools every sample of every seed of one method at the final checkpoint: the
    box spans the quartiles, the line is the median, whiskers reach 1.5 IQR and dots are
    samples beyond them.

    Parameters
    ----------
    sample_cosine : DataFrame
        The ``sample_cosine`` table (task, method, run, step, layer_index, sample, cosine).
    task : str
    methods : sequence of str, optional
    ax : Axes, optional
    """
    require_columns(
        sample_cosine, ("task", "method", "run", "step", "layer_index", "cosine"), "sample_cosine"
    )
    rows = select(final_step(sample_cosine), "sample_cosine", task=task)
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    layers = sorted(rows["layer_index"].unique())
    own_figure = ax is None
    fig, ax = figure_and_axes(ax, COLUMN_WIDTH, 2.5)
    width = 0.8 / len(methods)
    handles = []
    for k, method in enumerate(methods):
        part = rows[rows["method"] == method]
        if part.empty:
            continue
        color = method_color(method, methods)
        data = [part.loc[part["layer_index"] == i, "cosine"].to_numpy() for i in layers]
        keep = [j for j, d in enumerate(data) if d.size]
        positions = np.asarray(layers, dtype=float)[keep] + (k - (len(methods) - 1) / 2) * width
        ax.boxplot(
            [data[j] for j in keep],
            positions=positions,
            widths=width * 0.85,
            patch_artist=True,
            manage_ticks=False,
            boxprops={"facecolor": color, "alpha": 0.55, "edgecolor": color, "linewidth": 0.6},
            medianprops={"color": "black", "linewidth": 0.9},
            whiskerprops={"color": color, "linewidth": 0.6},
            capprops={"color": color, "linewidth": 0.6},
            flierprops={
                "marker": ".", "markersize": 1.5, "markerfacecolor": color,
                "markeredgecolor": "none", "alpha": 0.6,
            },
        )  # fmt: skip
        n_seeds = part["run"].nunique()
        handles.append(
            Patch(
                facecolor=color,
                alpha=0.55,
                edgecolor=color,
                label=f"{method_label(method)} ({n_seeds} seed{'s' * (n_seeds != 1)} pooled)",
            )
        )
    set_layer_axis(ax, layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("per-sample cosine\n(base vs fine-tuned)")
    ax.grid(axis="y")
    if own_figure:
        task_title(fig, task)
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    else:
        ax.set_title(elide(task, TASK_TICK_CHARS * 2), loc="left")
        ax.legend(handles=handles, loc="lower left")
    return fig
