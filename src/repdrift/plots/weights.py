"""Weight-space figures from the :func:`repdrift.weights.weight_drift` table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

from repdrift.errors import InputError
from repdrift.plots.style import (
    COLUMN_WIDTH,
    SEQUENTIAL_CMAP,
    method_color,
    method_label,
    new_figure,
    order_methods,
    require_columns,
    set_layer_axis,
    styled,
    thin_ticks,
)

_COLUMNS = ("variant", "method", "layer", "module", "rel_change", "intruder_count")
#: Legend entry of the intruder count expected for random directions.
_NULL_LABEL = "random directions"


def short_module(name: str) -> str:
    """``attention.self.query`` → ``attn.query``: tick labels that fit a column figure."""
    return name.replace("attention", "attn").replace(".self.", ".").replace("self_attn", "attn")


#: Display order of module kinds: attention q, k, v, output, then the MLP in data-flow order.
#: Checkpoints list modules alphabetically, which puts the attention output before the query.
_MODULE_ORDER = (
    ("query", "q_proj", "q_lin", "c_attn", "qkv"),
    ("key", "k_proj", "k_lin"),
    ("value", "v_proj", "v_lin"),
    ("attention.output", "o_proj", "out_proj", "out_lin", "attn.c_proj", "dense"),
    ("intermediate", "gate_proj", "up_proj", "fc1", "c_fc", "lin1", "w1", "w3"),
    ("output.dense", "down_proj", "fc2", "mlp.c_proj", "lin2", "w2"),
)


def _module_rank(name: str) -> int:
    for rank, keys in enumerate(_MODULE_ORDER):
        if any(key in name for key in keys):
            return rank
    return len(_MODULE_ORDER)


def _module_order(weights: pd.DataFrame) -> list[str]:
    """Modules in data-flow order where recognised, else in the table's order."""
    seen = list(dict.fromkeys(weights["module"]))
    return sorted(seen, key=lambda m: (_module_rank(m), seen.index(m)))


def _n_variants(rows: pd.DataFrame) -> str:
    n = rows["variant"].nunique()
    return f"{n} variant{'s' * (n != 1)}"


@styled
def weight_change(weights: pd.DataFrame, *, methods: Sequence[str] | None = None) -> Figure:
    """Relative weight change ||ΔW||_F / ||W||_F per layer × module, one panel per method.

    Cells are the mean over a method's variants (e.g. seeds), on one logarithmic colour
    scale shared by all panels. Grey cells are modules a method did not change (LoRA
    adapters only touch their target modules).

    Parameters
    ----------
    weights : DataFrame
        The table returned by :func:`repdrift.weights.weight_drift`.
    methods : sequence of str, optional
    """
    require_columns(weights, _COLUMNS, "weights")
    if weights.empty:
        raise InputError("weights table is empty")
    methods = order_methods(weights["method"]) if methods is None else list(methods)
    modules = _module_order(weights)
    layers = sorted(weights["layer"].unique())
    grids = {
        m: weights[weights["method"] == m]
        .groupby(["module", "layer"])["rel_change"]
        .mean()
        .unstack()
        .reindex(index=modules, columns=layers)
        for m in methods
    }
    values = np.concatenate([g.to_numpy(dtype=float).ravel() for g in grids.values()])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        raise InputError("weights: no module has a non-zero relative change")
    norm = LogNorm(float(positive.min()), float(max(positive.max(), positive.min() * 1.01)))
    cmap = colormaps[SEQUENTIAL_CMAP].with_extremes(bad="0.88")
    panel_h = 0.45 + 0.16 * len(modules)
    fig = new_figure(COLUMN_WIDTH, 0.35 + panel_h * len(methods))
    axes = fig.subplots(len(methods), 1, sharex=True, squeeze=False)[:, 0]
    im = None
    for ax, method in zip(axes, methods, strict=True):
        grid = grids[method].to_numpy(dtype=float)
        grid = np.where(grid > 0, grid, np.nan)  # log scale: unchanged reads as "not changed"
        im = ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
        part = weights[weights["method"] == method]
        ax.set_title(f"{method_label(method)} ({_n_variants(part)})", loc="left")
        ax.set_yticks(range(len(modules)), [short_module(m) for m in modules])
        shown = thin_ticks(list(range(len(layers))), 13)
        ax.set_xticks(shown, [str(layers[i]) for i in shown])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    axes[-1].set_xlabel("layer")
    bar = fig.colorbar(im, ax=list(axes), label="‖ΔW‖$_F$ / ‖W‖$_F$", shrink=0.9)
    # Plain numbers at 1-2-5 steps: a range under a decade still gets several labels.
    decades = np.log10(norm.vmax / norm.vmin)
    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    if not (np.isfinite(values) & (values > 0)).all():
        fig.legend(handles=[Patch(color="0.88", label="not changed")], loc="outside lower left")
    return fig


@styled
def intruder_counts(
    weights: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    modules: Sequence[str] | None = None,
) -> Figure:
    """Intruder dimensions per layer, bars per method (Shuttleworth et al. 2024), with the
    count random directions would give and the share of spectral energy in intruders.

    Top panel: a bar is the mean over a method's variants of the layer's intruder count summed
    over ``modules``; dots are the individual variants; a black tick marks the count expected
    if the examined directions were uniformly random (``intruder_null``, same sum), the level
    at which the count saturates. Bottom panel (tables with ``intruder_energy``): the share of
    the top-k spectral energy of W' in intruder directions, mean over ``modules`` and variants;
    it keeps separating methods where counts saturate. ``k`` and ``epsilon`` are named on the
    axis. By default ``modules`` are those every method changed, so a LoRA adapter on two
    modules is compared with full fine-tuning on the same two.

    Parameters
    ----------
    weights : DataFrame
        The table returned by :func:`repdrift.weights.weight_drift`.
    methods, modules : sequence of str, optional
    """
    require_columns(weights, (*_COLUMNS, "k"), "weights")
    if weights.empty:
        raise InputError("weights table is empty")
    methods = order_methods(weights["method"]) if methods is None else list(methods)
    if modules is None:
        per_method = [
            set(weights.loc[(weights["method"] == m) & (weights["rel_change"] > 0), "module"])
            for m in methods
        ]
        shared = set.intersection(*per_method) if per_method else set()
        modules = [m for m in _module_order(weights) if m in shared] or _module_order(weights)
    rows = weights[weights["module"].isin(modules) & weights["method"].isin(methods)]
    if rows.empty:
        raise InputError(f"weights: no rows for modules {list(modules)} and methods {methods}")
    has_energy = "intruder_energy" in rows.columns
    sums = ["intruder_count", *(["intruder_null"] if "intruder_null" in rows.columns else [])]
    totals = rows.groupby(["method", "variant", "layer"], as_index=False)[sums].sum()
    layers = sorted(totals["layer"].unique())
    fig = new_figure(COLUMN_WIDTH, 3.9 if has_energy else 2.4)
    axes = fig.subplots(2 if has_energy else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    width = 0.8 / len(methods)
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for k, method in enumerate(methods):
        part = totals[totals["method"] == method]
        if part.empty:
            continue
        color = method_color(method, methods)
        offset = (k - (len(methods) - 1) / 2) * width
        mean = part.groupby("layer")["intruder_count"].mean().reindex(layers)
        ax.bar(
            np.asarray(layers) + offset, mean.to_numpy(), width * 0.9, color=color, alpha=0.75,
            label=f"{method_label(method)} ({_n_variants(part)})",
        )  # fmt: skip
        jitter = rng.uniform(-0.2, 0.2, len(part)) * width
        ax.plot(
            part["layer"].to_numpy() + offset + jitter, part["intruder_count"], ls="none",
            marker="o", markersize=2.2, markerfacecolor="white", markeredgecolor="black",
            markeredgewidth=0.4,
        )  # fmt: skip
        if "intruder_null" in part:
            null = part.groupby("layer")["intruder_null"].mean().reindex(layers)
            ax.hlines(
                null.to_numpy(), np.asarray(layers) + offset - width * 0.45,
                np.asarray(layers) + offset + width * 0.45, colors="black", lw=1.0,
                label=_NULL_LABEL if k == 0 else None,
            )  # fmt: skip
        if has_energy:
            share = (
                rows[rows["method"] == method].groupby("layer")["intruder_energy"].mean()
            ).reindex(layers)
            axes[1].bar(
                np.asarray(layers) + offset, share.to_numpy(), width * 0.9, color=color,
                alpha=0.75,
            )  # fmt: skip
    set_layer_axis(axes[-1], layers)
    ax.yaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel("layer")
    names = ", ".join(short_module(m) for m in modules)
    ax.set_ylabel(f"intruder dimensions\n({_threshold_text(rows)})")
    ax.set_title(f"summed over {names}", loc="left", fontsize=7)
    ax.grid(axis="y")
    if has_energy:
        axes[1].set_ylabel("share of top-k energy\nin intruders (mean)")
        axes[1].set_ylim(0, 1)
        axes[1].grid(axis="y")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == _NULL_LABEL)  # methods first
    fig.legend(
        [handles[i] for i in order], [labels[i] for i in order], loc="outside lower center",
        ncols=len(methods),  # the reference on a row of its own: a column figure stays narrow
    )  # fmt: skip
    return fig


def _threshold_text(rows: pd.DataFrame) -> str:
    """``top k = 10 per module, ε = 0.5``: the parameters the counts depend on."""
    k_top = "/".join(str(int(k)) for k in sorted(rows["k"].unique()))
    text = f"top k = {k_top} per module"
    if "epsilon" in rows.columns:
        eps = "/".join(f"{float(e):g}" for e in sorted(rows["epsilon"].dropna().unique()))
        text += f", ε = {eps}" if eps else ""
    return text
