"""Similarity between paired representations: the metric registry and its building blocks.

Registry (the contract other code relies on)
--------------------------------------------
``names()``
    Registered metric names.
``compute(name, X, Y, *, device=None, **params) -> float``
    Similarity of X (n, d1) and Y (n, d2), rows paired by sample; higher = more alike.
    Drift is ``1 - similarity``.
``matrix(name, layers_a, layers_b, *, device=None, **params) -> ndarray (La, Lb)``
    Every layer against every layer, with per-layer work (Grams, bases, ranks) done once.
``get(name) -> MetricSpec``
    Parameters, bounds, symmetry and minimum n of a metric.

Metrics: ``cka_linear``, ``cka_debiased``, ``cka_rbf``, ``cka_minibatch``, ``cosine``,
``procrustes``, ``rsa``, ``mutual_knn``, ``cca``, ``svcca``, ``pwcca``. Each module's
docstring states its exact convention. All computation is float64.

Building blocks for statistics (bootstrap, permutation tests) on precomputed Grams
-------------------------------------------------------------------------------------
``gram_linear``, ``gram_rbf``, ``centered_gram``, ``u_centered_gram``, ``center_gram``,
``u_center_gram``, ``hsic_biased``, ``hsic_unbiased``, ``kernel_alignment``
(see :mod:`repdrift.metrics.kernels`), and ``minibatch_slices``.

Streaming
---------
``StreamingLinearCKA`` (exact, memory independent of n) and ``MinibatchCKA``
(Nguyen et al. 2021), each with ``update`` / ``merge`` / ``compute``.
"""

from __future__ import annotations

from repdrift.metrics.cka import minibatch_slices
from repdrift.metrics.kernels import (
    center_gram,
    centered_gram,
    gram_linear,
    gram_rbf,
    hsic_biased,
    hsic_unbiased,
    kernel_alignment,
    u_center_gram,
    u_centered_gram,
)
from repdrift.metrics.registry import MetricSpec, compute, get, matrix, names
from repdrift.metrics.streaming import MinibatchCKA, StreamingLinearCKA

__all__ = [
    "MetricSpec",
    "MinibatchCKA",
    "StreamingLinearCKA",
    "center_gram",
    "centered_gram",
    "compute",
    "get",
    "gram_linear",
    "gram_rbf",
    "hsic_biased",
    "hsic_unbiased",
    "kernel_alignment",
    "matrix",
    "minibatch_slices",
    "names",
    "u_center_gram",
    "u_centered_gram",
]
