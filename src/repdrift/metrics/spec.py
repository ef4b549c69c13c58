"""What the package knows about one similarity measure: :class:`MetricSpec`.

The specs themselves are listed in :mod:`repdrift.metrics.definitions`; the registry
(:mod:`repdrift.metrics.registry`) looks them up. Plots, the report and the analysis read
labels, conventions, default parameters and the resampling path from the spec, so a metric
is described in exactly one place.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repdrift.metrics.resampling import ResamplingPath


@dataclass(frozen=True, kw_only=True)
class MetricSpec:
    """Description of one registered similarity (built by keyword only).

    Attributes
    ----------
    name : str
    one_pair : callable
        ``(X, Y, **params) -> float`` on validated float64 arrays.
    all_pairs : callable or None
        ``(layers_a, layers_b, **params) -> (La, Lb) ndarray`` on two
        :class:`~repdrift.metrics._inputs.Layers` (float64 on access; ``.n``, ``.dims``,
        ``.raw(i)``); ``layers_b is layers_a`` marks a self-comparison. None falls back to
        ``one_pair`` per pair.
    min_n : int
        Fewest samples for which the estimator is defined.
    symmetric : bool
        Whether ``f(X, Y) == f(Y, X)``.
    bounds : (float, float)
        Range of values; identical inputs give the upper bound.
    population_bounds : (float, float) or None
        Range of the population value the estimator targets, when narrower than ``bounds``
        (debiased CKA estimates can be slightly negative, population CKA is in [0, 1]); None
        means ``bounds``. Intervals are kept inside it (:mod:`repdrift.analysis.intervals`).
    on_device : bool
        Whether the math runs in torch on a requested device (else numpy on the CPU).
    summary : str
        One line for listings.
    label : str
        Short name for axes, legends and tables (``"debiased CKA"``).
    convention : str
        How the estimator is defined, as a sentence of a methods section.
    fast_resampling : bool
        Whether a replicate costs about as little as the point value (a Gram shortcut, or an
        ``O(n d)`` metric), so the analysis resamples it by default.
    resampling : ResamplingPath or None
        The shortcut to replicates from state shared by all of them (a Gram per representation
        for the CKA family, per-sample cosines and one cross-product matrix for cosine; see
        :mod:`repdrift.metrics.resampling`); None recomputes the metric on every resample.
    params : dict
        Default parameters, read off ``one_pair``'s keyword-only arguments (e.g.
        ``{"sigma": 1.0}`` for ``cka_rbf``); the parameters users may pass.
    """

    name: str
    one_pair: Callable[..., float]
    all_pairs: Callable[..., np.ndarray] | None
    min_n: int
    symmetric: bool
    bounds: tuple[float, float]
    on_device: bool
    summary: str
    label: str
    convention: str
    fast_resampling: bool = False
    resampling: ResamplingPath | None = None
    population_bounds: tuple[float, float] | None = None
    params: dict[str, Any] = field(init=False)

    @property
    def target_bounds(self) -> tuple[float, float]:
        """Range of the population value: ``population_bounds``, else ``bounds``."""
        return self.population_bounds or self.bounds

    def __post_init__(self) -> None:
        sig = inspect.signature(self.one_pair)
        params = {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
        object.__setattr__(self, "params", params)
        if self.resampling is not None and not self.fast_resampling:
            raise ValueError(f"{self.name}: a metric with a resampling shortcut resamples fast")
