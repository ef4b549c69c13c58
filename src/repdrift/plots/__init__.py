"""Publication figures from a results folder (tables only: plots never compute statistics).

Every figure function takes result tables (see :mod:`repdrift.store.results`) and returns a
:class:`matplotlib.figure.Figure`; single-axes figures also accept ``ax=`` to draw into an
existing figure. The style (Okabe–Ito colours with fixed colours per method, ≥ 7 pt fonts at
3.5 in single-column width) is applied in a local rc context, so importing this module never
changes global rcParams. :func:`plot_all` writes every figure a results folder has data for.
"""

from __future__ import annotations

from repdrift.common.display import stars
from repdrift.plots.curves import drift_over_steps, drift_profile
from repdrift.plots.figures import FigureSpec, catalog, plot_all, read_weights
from repdrift.plots.matrices import cross_layer_matrices, drift_heatmaps
from repdrift.plots.samples import sample_cosine_distributions
from repdrift.plots.style import FORMATS, METHOD_COLORS, RC, save_figure
from repdrift.plots.weights import intruder_counts, weight_change
from repdrift.store.results import default_metric

__all__ = [
    "FORMATS",
    "METHOD_COLORS",
    "RC",
    "FigureSpec",
    "catalog",
    "cross_layer_matrices",
    "default_metric",
    "drift_heatmaps",
    "drift_over_steps",
    "drift_profile",
    "intruder_counts",
    "plot_all",
    "read_weights",
    "sample_cosine_distributions",
    "save_figure",
    "stars",
    "weight_change",
]
