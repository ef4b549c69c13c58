"""Which tokens moved: per-token drift by position and by token type (token-level runs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from repdrift.plots.style import (
    DOUBLE_WIDTH,
    SEQUENTIAL_CMAP,
    method_color,
    method_label,
    new_figure,
    order_methods,
    require_columns,
    select,
    set_layer_axis,
    styled,
)
from repdrift.store.results import final_step

__all__ = ["token_drift_profile"]

#: Order of token types on the axis (others follow alphabetically).
TYPE_ORDER = ("special", "text", "first text", "second text")


@styled
def token_drift_profile(
    token_profile: pd.DataFrame, *, task: str, methods: Sequence[str] | None = None
) -> Figure:
    """Per-token drift (1 − cosine) by token position (left) and by token type (right).

    Left: mean over the tokens at each position and over the runs of the deepest method
    listed first, one line per layer (dark: early, light: deep). Right: mean per token type
    and layer, one line per type and method (solid: the first method, dashed: the others),
    runs of a method averaged with equal weight.

    Parameters
    ----------
    token_profile : DataFrame
        The ``token_profile`` table (task, method, run, step, layer_index, by, key,
        position, drift, n_tokens).
    task : str
    methods : sequence of str, optional
    """
    require_columns(
        token_profile,
        ("task", "method", "run", "step", "layer_index", "by", "key", "position", "drift"),
        "token_profile",
    )
    rows = select(final_step(token_profile), "token_profile", task=task)
    methods = order_methods(rows["method"]) if methods is None else list(methods)
    fig = new_figure(DOUBLE_WIDTH, 2.6)
    ax_pos, ax_type = fig.subplots(1, 2, width_ratios=(1.4, 1))
    pos = rows[(rows["by"] == "position") & (rows["method"] == methods[0])]
    layers = sorted(pos["layer_index"].unique())
    cmap = colormaps[SEQUENTIAL_CMAP]
    for k, layer in enumerate(layers):
        part = pos[pos["layer_index"] == layer].groupby("position")["drift"].mean()
        color = cmap(0.9 * k / max(len(layers) - 1, 1))
        ax_pos.plot(part.index, part.to_numpy(), color=color, linewidth=0.9,
                    label="E" if layer < 0 else f"L{layer}")  # fmt: skip
    ax_pos.set_xlabel("token position")
    ax_pos.set_ylabel("per-token drift\n(1 − cosine)")
    ax_pos.set_title(f"{method_label(methods[0])}: by position", loc="left")
    ax_pos.grid(axis="y")
    ax_pos.legend(ncols=2 if len(layers) > 12 else 1, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  fontsize="small", title="layer")  # fmt: skip
    types = rows[rows["by"] == "type"]
    present = list(types["key"].unique())
    ordered = [t for t in TYPE_ORDER if t in present] + sorted(set(present) - set(TYPE_ORDER))
    markers = ("o", "s", "^", "D", "v")
    for m, method in enumerate(methods):
        part = types[types["method"] == method]
        for t, kind in enumerate(ordered):
            per_run = part[part["key"] == kind].groupby(["layer_index", "run"])["drift"].mean()
            means = per_run.groupby(level="layer_index").mean()
            ax_type.plot(
                means.index, means.to_numpy(), marker=markers[t % len(markers)], markersize=3,
                linewidth=0.9, linestyle="-" if m == 0 else "--",
                color=method_color(method, methods) if len(ordered) == 1 else f"C{t}",
                label=f"{kind} ({method_label(method)})" if len(methods) > 1 else kind,
            )  # fmt: skip
    set_layer_axis(ax_type, sorted(types["layer_index"].unique()) or [0])
    ax_type.set_xlabel("layer")
    ax_type.set_title("by token type", loc="left")
    ax_type.grid(axis="y")
    ax_type.legend(loc="upper left", fontsize="small")
    for ax in (ax_pos, ax_type):
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, 0.0), high if np.isfinite(high) else 1.0)
    fig.suptitle(task, x=0.02, ha="left")
    return fig
