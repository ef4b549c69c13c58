"""The metric registry: names → similarity functions, with input validation in one place.

Every metric is listed explicitly in :data:`_METRICS` below (no import scanning). A metric
provides a one-pair function ``f(X, Y, **params) -> float`` and, optionally, an all-pairs
function ``g(layers_a, layers_b, **params) -> ndarray`` that precomputes per-layer state.
Both receive validated float64 input: 2-D, finite, paired rows, n >= ``min_n``. Their
keyword-only parameters (with defaults) are the parameters users may pass.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics import cca, cka, cosine, knn, procrustes, rsa
from repdrift.metrics._inputs import check_layers, check_pair, resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    """Description of one registered similarity.

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
    on_device : bool
        Whether the math runs in torch on a requested device (else numpy on the CPU).
    summary : str
        One line for listings.
    """

    name: str
    one_pair: Callable[..., float]
    all_pairs: Callable[..., np.ndarray] | None
    min_n: int
    symmetric: bool
    bounds: tuple[float, float]
    on_device: bool
    summary: str
    params: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        sig = inspect.signature(self.one_pair)
        params = {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
        object.__setattr__(self, "params", params)


_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("cka_linear", cka.cka_linear, cka.cka_linear_matrix, 2, True, (0.0, 1.0), True,
                   "linear CKA, biased HSIC (Kornblith et al. 2019)"),
        MetricSpec("cka_debiased", cka.cka_debiased, cka.cka_debiased_matrix, 4, True,
                   (-1.0, 1.0), True, "linear CKA, unbiased HSIC (Song et al. 2012)"),
        MetricSpec("cka_rbf", cka.cka_rbf, cka.cka_rbf_matrix, 2, True, (0.0, 1.0), True,
                   "RBF CKA, bandwidth sigma x median distance, biased HSIC"),
        MetricSpec("cka_minibatch", cka.cka_minibatch, cka.cka_minibatch_matrix, 4, True,
                   (-1.0, 1.0), True, "minibatch CKA, mean unbiased HSIC (Nguyen et al. 2021)"),
        MetricSpec("cosine", cosine.cosine, cosine.cosine_matrix, 1, True, (-1.0, 1.0), True,
                   "mean per-sample cosine (same feature space)"),
        MetricSpec("procrustes", procrustes.procrustes, procrustes.procrustes_matrix, 2, True,
                   (0.0, 1.0), False, "orthogonal Procrustes similarity (nuclear norm)"),
        MetricSpec("rsa", rsa.rsa, rsa.rsa_matrix, 3, True, (-1.0, 1.0), False,
                   "Spearman correlation between RDMs"),
        MetricSpec("mutual_knn", knn.mutual_knn, knn.mutual_knn_matrix, 3, True, (0.0, 1.0),
                   False, "mutual k-NN alignment (Huh et al. 2024)"),
        MetricSpec("cca", cca.cca, cca.cca_matrix, 3, True, (0.0, 1.0), False,
                   "mean canonical correlation"),
        MetricSpec("svcca", cca.svcca, cca.svcca_matrix, 3, True, (0.0, 1.0), False,
                   "SVCCA (Raghu et al. 2017)"),
        MetricSpec("pwcca", cca.pwcca, cca.pwcca_matrix, 3, False, (0.0, 1.0), False,
                   "projection-weighted CCA (Morcos et al. 2018)"),
    )
}  # fmt: skip


def names() -> list[str]:
    """Registered metric names, sorted."""
    return sorted(_METRICS)


def get(name: str) -> MetricSpec:
    """The :class:`MetricSpec` for ``name``; unknown names raise with close suggestions."""
    try:
        return _METRICS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), names(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
        raise InputError(
            f"unknown metric {name!r}{hint} Known metrics: {', '.join(names())}"
        ) from None


def _check_params(spec: MetricSpec, params: dict[str, Any]) -> None:
    for key in params:
        if key not in spec.params:
            accepted = ", ".join(f"{k}={v!r}" for k, v in spec.params.items()) or "no parameters"
            close = difflib.get_close_matches(key, list(spec.params), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"{spec.name} got unknown parameter {key!r}{hint}; it accepts: {accepted}"
            )


def _device_for(spec: MetricSpec, device: Any) -> Any:
    dev = resolve_device(device)
    if dev is not None and not spec.on_device:
        log.info("%s has no torch implementation; computing on the CPU in numpy", spec.name)
        return None
    return dev


def compute(name: str, X: Any, Y: Any, *, device: Any = None, **params: Any) -> float:
    """Similarity of two paired representations; higher means more alike.

    Parameters
    ----------
    name : str
        A name from :func:`names`.
    X, Y : array-like or torch.Tensor, shapes (n, d1) and (n, d2)
        Rows paired by sample. Converted to float64.
    device : str or torch.device, optional
        Run in torch float64 on this device (CKA family and cosine); default numpy on CPU.
    **params
        Metric parameters, e.g. ``sigma`` for ``cka_rbf``; see ``get(name).params``.

    Returns
    -------
    float
    """
    spec = get(name)
    _check_params(spec, params)
    dev = _device_for(spec, device)
    X, Y = check_pair(X, Y, min_n=spec.min_n, metric=spec.name, device=dev)
    return float(spec.one_pair(X, Y, **params))


def matrix(
    name: str,
    layers_a: Sequence[Any],
    layers_b: Sequence[Any],
    *,
    device: Any = None,
    **params: Any,
) -> np.ndarray:
    """Similarity between every layer of ``layers_a`` and every layer of ``layers_b``.

    Parameters
    ----------
    name : str
    layers_a, layers_b : sequences of arrays (n, d_l)
        One representation per layer, all with the same n samples in the same order. Pass the
        same sequence object twice for a self-comparison (computed once, symmetric).
    device : str or torch.device, optional
        As in :func:`compute`.
    **params
        Metric parameters.

    Returns
    -------
    (La, Lb) float64 ndarray; entry (i, j) equals ``compute(name, layers_a[i], layers_b[j])``.
    """
    spec = get(name)
    _check_params(spec, params)
    dev = _device_for(spec, device)
    same = layers_b is layers_a
    la = check_layers(layers_a, "layers_a", min_n=spec.min_n, metric=spec.name, device=dev)
    lb = (
        la
        if same
        else check_layers(layers_b, "layers_b", min_n=spec.min_n, metric=spec.name, device=dev)
    )
    if la.n != lb.n:
        raise InputError(
            f"layers_a hold n={la.n} samples and layers_b n={lb.n}; rows must be paired by sample"
        )
    if spec.all_pairs is not None:
        return np.asarray(spec.all_pairs(la, lb, **params), dtype=np.float64)
    xs = [la[i] for i in range(len(la))]  # generic fallback: convert each layer once
    ys = xs if same else [lb[j] for j in range(len(lb))]
    out = np.empty((len(xs), len(ys)))
    for i, X in enumerate(xs):
        for j, Y in enumerate(ys):
            if same and spec.symmetric and j < i:
                out[i, j] = out[j, i]
            else:
                out[i, j] = spec.one_pair(X, Y, **params)
    return out
