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
    Everything known about a metric: default parameters, bounds, symmetry, minimum n, label,
    convention (the methods-section sentence) and its resampling path.
``resample(name, X, Ys, *, idx=None, perms=None, device=None, **params) -> Replicates``
    Values of ``X`` against each of ``Ys`` with replicates on subsets of the samples and
    under shuffled pairing; the CKA family reads them off one Gram per representation,
    ``cosine`` off the per-sample cosines and one cross-product matrix; ``device`` runs
    that work in torch float64 there (e.g. ``"cuda"``).
``resample_many(names, X, Ys, *, idx, perms, resampled, device, params) -> dict``
    The same for several metrics at once (the two linear CKAs computed together).
``DEFAULT_METRICS``
    The metrics the analysis uses unless told otherwise.

Metrics: ``cka_linear``, ``cka_debiased``, ``cka_rbf``, ``cka_minibatch``, ``cosine``,
``procrustes``, ``rsa``, ``mutual_knn``, ``cca``, ``svcca``, ``pwcca``. Each module's
docstring states its exact convention. All computation is float64.

Building blocks for statistics (bootstrap, permutation tests) on precomputed Grams
-------------------------------------------------------------------------------------
``gram_linear``, ``gram_rbf``, ``centered_gram``, ``u_centered_gram``, ``center_gram``,
``u_center_gram``, ``hsic_biased``, ``hsic_unbiased``, ``kernel_alignment``
(see :mod:`repdrift.metrics.kernels`), ``minibatch_slices``, and ``gram_cka_subsets``,
``gram_cka_permuted`` (see :mod:`repdrift.metrics.gram_replicates`).

Streaming
---------
``StreamingLinearCKA`` and ``StreamingDebiasedCKA`` (exact ``cka_linear`` and
``cka_debiased``, memory independent of n), ``StreamingCosine`` (mean per-row ``cosine``) and
``MinibatchCKA`` (Nguyen et al. 2021), each with ``update`` / ``merge`` / ``compute``.
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
from repdrift.metrics.registry import (
    DEFAULT_METRICS,
    MetricSpec,
    compute,
    get,
    label,
    matrix,
    names,
    resample,
    resample_many,
    resolve_params,
)
from repdrift.metrics.resampling import (
    CosineResampling,
    GramResampling,
    Replicates,
    gram_cka_permuted,
    gram_cka_subsets,
)
from repdrift.metrics.streaming import MinibatchCKA, StreamingCosine, StreamingLinearCKA
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA

__all__ = [
    "DEFAULT_METRICS",
    "CosineResampling",
    "GramResampling",
    "MetricSpec",
    "MinibatchCKA",
    "Replicates",
    "StreamingCosine",
    "StreamingDebiasedCKA",
    "StreamingLinearCKA",
    "center_gram",
    "centered_gram",
    "compute",
    "get",
    "gram_cka_permuted",
    "gram_cka_subsets",
    "gram_linear",
    "gram_rbf",
    "hsic_biased",
    "hsic_unbiased",
    "kernel_alignment",
    "label",
    "matrix",
    "minibatch_slices",
    "names",
    "resample",
    "resample_many",
    "resolve_params",
    "u_center_gram",
    "u_centered_gram",
]
