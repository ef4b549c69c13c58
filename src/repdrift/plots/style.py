"""Shared look of every repdrift figure: palette, fonts, sizes, layer axes, saving.

The style is applied through :func:`styled` (a local :func:`matplotlib.rc_context` around
each figure function), so importing repdrift never changes the caller's global rcParams.
Figures are built with :class:`matplotlib.figure.Figure` directly rather than pyplot, which
keeps them out of pyplot's global figure registry and renders with Agg whatever backend
the caller selected.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from repdrift.common.atomic import atomic_write_with
from repdrift.errors import InputError
from repdrift.metrics import registry

#: Single-column width of most journals and of two-column conference templates (inches).
COLUMN_WIDTH = 3.5
#: Full text width for figures that need it (inches).
DOUBLE_WIDTH = 7.0

FORMATS = ("png", "pdf", "svg")

# Okabe & Ito (2008), "Color universal design": distinguishable under the common forms of
# colour vision deficiency and in greyscale by lightness.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermilion": "#D55E00",
    "purple": "#CC79A7",
    "black": "#000000",
}
#: Fixed colour per method, the same in every figure.
METHOD_COLORS = {
    "lora": OKABE_ITO["blue"],
    "full": OKABE_ITO["vermilion"],
    "base": OKABE_ITO["black"],
}
_EXTRA_COLORS = (
    OKABE_ITO["green"],
    OKABE_ITO["purple"],
    OKABE_ITO["orange"],
    OKABE_ITO["sky_blue"],
    OKABE_ITO["yellow"],
)
METHOD_LABELS = {"lora": "LoRA", "full": "Full FT", "base": "Base"}
METHOD_NAMES = {"lora": "LoRA", "full": "full fine-tuning", "base": "the base model"}
#: Sequential map for magnitudes (perceptually uniform, colour-blind safe).
SEQUENTIAL_CMAP = "viridis"
#: Diverging map for signed differences, always centred at 0.
DIVERGING_CMAP = "RdBu_r"

RC: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "figure.titlesize": 8.5,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 3.5,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.borderaxespad": 0.3,
    "legend.columnspacing": 1.0,
    "figure.dpi": 100,
    "savefig.dpi": 300,
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text, accepted by journal checkers
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text stays text in SVG
    "svg.hashsalt": "repdrift",  # deterministic ids in SVG output
    "image.cmap": SEQUENTIAL_CMAP,
}

P = ParamSpec("P")
R = TypeVar("R")


def styled(func: Callable[P, R]) -> Callable[P, R]:
    """Run a figure function inside the repdrift rc context (global rcParams untouched)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with mpl.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def method_color(method: str, methods: Sequence[str] = ()) -> str:
    """Fixed colour of a method; methods beyond lora/full/base get the remaining colours."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    others = [m for m in methods if m not in METHOD_COLORS]
    i = others.index(method) if method in others else len(others)
    return _EXTRA_COLORS[i % len(_EXTRA_COLORS)]


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, str(method))


def method_name(method: str) -> str:
    """A method as it reads in a sentence (``full fine-tuning``)."""
    return METHOD_NAMES.get(method, str(method))


def metric_label(metric: str) -> str:
    """Short name of a metric (``MetricSpec.label`` from the metric registry)."""
    return registry.label(metric)


def order_methods(methods: Iterable[str]) -> list[str]:
    """LoRA first, then full fine-tuning, then any other label alphabetically."""
    rank = {"lora": 0, "full": 1}
    return sorted(set(methods), key=lambda m: (rank.get(m, 2), str(m)))


def new_figure(width: float, height: float) -> Figure:
    """A Figure with constrained layout (labels never overlap) on an Agg canvas, outside
    pyplot (so ``fig.canvas.draw()`` and ``buffer_rgba()`` work headless)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_and_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """The given axes' figure, or a new figure with one axes."""
    if ax is not None:
        # A subfigure's ``.figure`` is the root figure (and a Figure's is itself).
        return ax.get_figure().figure, ax  # type: ignore[union-attr]
    fig = new_figure(width, height)
    return fig, fig.add_subplot()


def layer_tick_label(index: int, compact: bool = False) -> str:
    """``-1`` (the embedding output) reads ``emb`` (``E`` when ``compact``, for heatmap
    columns); block i reads ``i``."""
    if int(index) < 0:
        return "E" if compact else "emb"
    return str(int(index))


def elide(text: str, max_chars: int) -> str:
    """``text`` shortened in the middle to at most ``max_chars`` characters (``abc…xyz``), so
    that a long task name keeps its start and end and still fits a label."""
    text = str(text)
    if len(text) <= max_chars:
        return text
    head = max_chars // 2
    tail = max_chars - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail > 0 else "")


#: Characters of a tick label naming a task (heatmap rows) before it is elided.
TASK_TICK_CHARS = 18


def task_title(fig: Figure, task: str) -> None:
    """The task as the figure's title, elided to the figure's width (about 13 characters
    per inch at the title's size) instead of running off its edge."""
    fig.suptitle(elide(task, int(fig.get_figwidth() * 13)), x=0.02, ha="left")


def thin_ticks(positions: Sequence[float], max_ticks: int = 8) -> list[float]:
    """Every k-th position so that at most ``max_ticks`` remain, always keeping the last."""
    positions = list(positions)
    if len(positions) <= max_ticks:
        return positions
    step = int(np.ceil(len(positions) / max_ticks))
    kept = positions[::step]
    if kept[-1] != positions[-1]:
        kept[-1] = positions[-1]
    return kept


def set_layer_axis(ax: Axes, indices: Iterable[int], axis: str = "x", max_ticks: int = 13) -> None:
    """Integer layer ticks on a numeric layer axis (``emb`` for the embeddings)."""
    idx = sorted({int(i) for i in indices})
    ticks = thin_ticks(idx, max_ticks)
    labels = [layer_tick_label(i) for i in ticks]
    if axis == "x":
        ax.set_xticks(ticks, labels)
        ax.set_xlim(idx[0] - 0.4, idx[-1] + 0.4)
    else:
        ax.set_yticks(ticks, labels)
        ax.set_ylim(idx[0] - 0.4, idx[-1] + 0.4)


def require_columns(df: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{table} table lacks column(s) {missing}; expected the table written by "
            f"repdrift compare (columns: {list(df.columns)})"
        )


def select(df: pd.DataFrame, table: str, **equals: Any) -> pd.DataFrame:
    """Rows where every given column equals the given value; an empty result names what
    values exist, so a typo in a task or metric name reads as such."""
    out = df
    for column, value in equals.items():
        if value is None:
            continue
        require_columns(out, [column], table)
        part = out[out[column] == value]
        if part.empty:
            known = sorted(map(str, df[column].dropna().unique()))
            raise InputError(f"{table}: no rows with {column}={value!r}; available: {known}")
        out = part
    return out


def check_format(fmt: str) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"format={fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 300) -> Path:
    """Write a figure (format from the suffix) atomically, with the repdrift rc context active.

    Metadata without dates keeps the files identical from run to run.
    """

    path = Path(path)
    fmt = check_format(path.suffix)
    metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}
    with mpl.rc_context(RC):
        atomic_write_with(
            path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata[fmt])
        )
    return path


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 200) -> bytes:
    """A figure rendered to bytes (for embedding in HTML)."""
    import io

    fmt = check_format(fmt)
    buffer = io.BytesIO()
    with mpl.rc_context(RC):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"png": {"Software": None}}.get(fmt))
    return buffer.getvalue()
