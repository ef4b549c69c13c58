"""Which tokens moved: per-token drift by position and by token type (token-level runs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import stats

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
    task_title,
)
from repdrift.store.results import final_step

__all__ = ["MIN_POSITION_SAMPLES", "position_profile", "token_drift_profile"]

#: Order of token types on the axis (others follow alphabetically).
TYPE_ORDER = ("special", "text", "first text", "second text")
#: Positions reached by fewer samples than this are not drawn in the per-position panel: their
#: mean rests on too few samples (texts of different lengths leave the long tail to a few).
MIN_POSITION_SAMPLES = 10
#: Level of the band around the per-position mean.
POSITION_LEVEL = 0.95


def position_profile(token_profile: pd.DataFrame, *, task: str, method: str) -> pd.DataFrame:
    """Per layer and position: mean per-token drift over runs, its interval over samples, and
    how many samples reach the position.

    A run's row at a position averages the tokens there, one per sample that is that long, so
    ``n_tokens`` counts samples. The interval is mean ± t · SD / √(n − 1) (SD over samples,
    ddof 0 as stored) with the runs' half-widths averaged, which is conservative when runs
    share their samples.

    Parameters
    ----------
    token_profile : DataFrame
        The ``token_profile`` table (final checkpoints are selected here).
    task, method : str

    Returns
    -------
    DataFrame
        Columns layer_index, position, drift, ci_low, ci_high, n_samples (the fewest over
        runs) and shown (n_samples ≥ :data:`MIN_POSITION_SAMPLES`).
    """
    rows = final_step(token_profile)
    rows = rows[(rows["task"] == task) & (rows["method"] == method) & (rows["by"] == "position")]
    n = rows["n_tokens"].astype(float) if "n_tokens" in rows else pd.Series(np.nan, rows.index)
    sd = rows["drift_sd"].astype(float) if "drift_sd" in rows else pd.Series(np.nan, rows.index)
    dof = (n - 1).where(n > 1)
    half = stats.t.ppf(0.5 + POSITION_LEVEL / 2, dof) * sd / np.sqrt(dof)
    per_position = rows.assign(_half=half, _n=n).groupby(["layer_index", "position"])
    out = per_position.agg(drift=("drift", "mean"), half=("_half", "mean"), n_samples=("_n", "min"))
    out = out.reset_index()
    out["ci_low"] = out["drift"] - out["half"]
    out["ci_high"] = out["drift"] + out["half"]
    out["shown"] = out["n_samples"].fillna(MIN_POSITION_SAMPLES) >= MIN_POSITION_SAMPLES
    return out.drop(columns="half").sort_values(["layer_index", "position"], ignore_index=True)


def _positions(ax_pos: Axes, ax_count: Axes, prof: pd.DataFrame) -> None:
    """Per-position lines with their bands (top) and the samples at each position (bottom)."""
    layers = sorted(prof["layer_index"].unique())
    cmap = colormaps[SEQUENTIAL_CMAP]
    for k, layer in enumerate(layers):
        part = prof[(prof["layer_index"] == layer) & prof["shown"]]
        color = cmap(0.9 * k / max(len(layers) - 1, 1))
        ax_pos.fill_between(part["position"], part["ci_low"], part["ci_high"], color=color,
                            alpha=0.15, lw=0)  # fmt: skip
        ax_pos.plot(part["position"], part["drift"], color=color, linewidth=0.9,
                    label="E" if layer < 0 else f"L{layer}")  # fmt: skip
    ax_pos.set_ylabel("per-token drift\n(1 − cosine)")
    ax_pos.grid(axis="y")
    handles = [*ax_pos.get_legend_handles_labels()[0],
               Patch(color="0.35", alpha=0.3, lw=0, label=f"{POSITION_LEVEL:.0%} CI")]  # fmt: skip
    ax_pos.legend(handles=handles, ncols=2 if len(layers) > 12 else 1, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0), fontsize="small", title="layer")  # fmt: skip
    counts = prof.groupby("position")["n_samples"].min()
    if counts.notna().any():
        kept = counts >= MIN_POSITION_SAMPLES
        for mask, color in ((kept, "0.35"), (~kept, "0.75")):
            ax_count.fill_between(counts.index, 0, counts.where(mask).to_numpy(), step="mid",
                                  color=color, lw=0)  # fmt: skip
        ax_count.axhline(MIN_POSITION_SAMPLES, color="0.2", ls=":", lw=0.8)
        if not kept.all():
            sparse = Patch(color="0.75", lw=0, label=f"< {MIN_POSITION_SAMPLES}: not drawn")
            ax_count.legend(handles=[sparse], loc="upper left", bbox_to_anchor=(1.0, 1.0),
                            fontsize="small")  # fmt: skip
        ax_count.set_ylim(0, float(counts.max()) * 1.05)
    ax_count.set_ylabel("samples")
    ax_count.set_xlabel("token position")
    ax_count.set_xlim(-0.5, float(prof["position"].max()) + 0.5)


@styled
def token_drift_profile(
    token_profile: pd.DataFrame, *, task: str, methods: Sequence[str] | None = None
) -> Figure:
    """Per-token drift (1 − cosine) by token position (left) and by token type (right).

    Left: mean over the tokens at each position (one per sample that long) and over the runs
    of the deepest method listed first, one line per layer (dark: early, light: deep), with
    its 95 % interval over samples (band, see :func:`position_profile`); below it, how many
    samples reach each position. Positions reached by fewer than
    :data:`MIN_POSITION_SAMPLES` samples are left out of the upper panel and grey in the
    lower one. Right: mean per token type and layer, one line per type and method (solid:
    the first method, dashed: the others), runs of a method averaged with equal weight.

    Parameters
    ----------
    token_profile : DataFrame
        The ``token_profile`` table (task, method, run, step, layer_index, by, key,
        position, drift, drift_sd, n_tokens).
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
    fig = new_figure(DOUBLE_WIDTH, 3.2)
    axes = fig.subplot_mosaic(
        [["position", "type"], ["count", "type"]], width_ratios=(1.4, 1), height_ratios=(3, 1),
        gridspec_kw={"hspace": 0.0},
    )  # fmt: skip
    ax_pos, ax_count, ax_type = axes["position"], axes["count"], axes["type"]
    ax_count.sharex(ax_pos)
    ax_pos.tick_params(labelbottom=False)
    _positions(ax_pos, ax_count, position_profile(rows, task=task, method=methods[0]))
    ax_pos.set_title(f"{method_label(methods[0])}: by position", loc="left")
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
        if not ax.has_data():
            continue
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, 0.0), high if np.isfinite(high) else 1.0)
    task_title(fig, task)
    return fig
