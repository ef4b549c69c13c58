"""The metric registry: names → similarity functions, with input validation in one place.

The metrics and everything known about them (label, convention, default parameters,
resampling path) are listed in :mod:`repdrift.metrics.definitions`; this module looks them
up, validates input and parameters, and computes. :data:`DEFAULT_METRICS` is the one list of
metrics the analysis uses unless told otherwise.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._identical import identical_pairs, same_values, snap_array, snapped
from repdrift.metrics._inputs import check_layers, check_pair, check_paired, resolve_device
from repdrift.metrics.definitions import DEFAULT_METRICS
from repdrift.metrics.definitions import METRICS as _METRICS
from repdrift.metrics.resampling import Replicates, by_recomputing, linear_cka_replicates
from repdrift.metrics.spec import MetricSpec

__all__ = [
    "DEFAULT_METRICS",
    "MetricSpec",
    "Replicates",
    "compute",
    "get",
    "label",
    "matrix",
    "names",
    "resample",
    "resample_many",
    "resolve_params",
]

log = logging.getLogger(__name__)


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


def label(name: str) -> str:
    """Short name of a metric for axes and tables (``"debiased CKA"``); unknown names (results
    of another version) come back as they are."""
    spec = _METRICS.get(name) if isinstance(name, str) else None
    return spec.label if spec is not None else str(name)


def resolve_params(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The parameters ``name`` is computed with: its defaults updated by ``params``.

    Unknown parameters raise :class:`~repdrift.errors.InputError` naming the accepted ones.
    """
    spec = get(name)
    params = dict(params or {})
    _check_params(spec, params)
    return {**spec.params, **params}


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
        Exactly the upper bound (1.0) when X and Y hold the same values, so an unchanged
        layer shows drift 0 (see :mod:`repdrift.metrics._identical`).
    """
    spec = get(name)
    _check_params(spec, params)
    dev = _device_for(spec, device)
    X, Y = check_pair(X, Y, min_n=spec.min_n, metric=spec.name, device=dev)
    value = float(spec.one_pair(X, Y, **params))
    return snapped(value, spec.bounds[1]) if same_values(X, Y) else value


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
        out = np.asarray(spec.all_pairs(la, lb, **params), dtype=np.float64)
    else:
        xs = [la[i] for i in range(len(la))]  # generic fallback: convert each layer once
        ys = xs if same else [lb[j] for j in range(len(lb))]
        out = np.empty((len(xs), len(ys)))
        for i, X in enumerate(xs):
            for j, Y in enumerate(ys):
                if same and spec.symmetric and j < i:
                    out[i, j] = out[j, i]
                else:
                    out[i, j] = spec.one_pair(X, Y, **params)
    raw_a = [la.raw(i) for i in range(len(la))]
    raw_b = raw_a if same else [lb.raw(j) for j in range(len(lb))]
    for i, j in identical_pairs(raw_a, raw_b, same):
        out[i, j] = snapped(float(out[i, j]), spec.bounds[1])
    return out


def resample(
    name: str,
    X: Any,
    Ys: Sequence[Any],
    *,
    idx: np.ndarray | None = None,
    perms: np.ndarray | None = None,
    device: Any = None,
    **params: Any,
) -> Replicates:
    """A metric of ``X`` against each of ``Ys``, on all samples, on subsets and under shuffles.

    Metrics with a resampling shortcut (``get(name).resampling``) compute their shared state
    once and read every replicate off it: the CKA family one kernel matrix per
    representation, ``cosine`` the per-sample cosines and one (n, n) matrix of cross products
    of unit rows. Others recompute :func:`compute` on every resample. Either way ``values[r]``
    equals ``compute(name, X, Ys[r], **params)`` and ``null[r, p]`` equals
    ``compute(name, X, Ys[r][perms[p]], **params)`` up to rounding, and ``subsets[r, b]`` is
    the metric on rows ``idx[b]`` of both sides. For ``cka_rbf`` the subsets keep the kernel of
    all samples, bandwidth included (the median distance is not re-estimated per subset).

    Parameters
    ----------
    name : str
    X : array (n, d0)
        The reference representation (e.g. the base model's layer).
    Ys : sequence of R arrays (n, d_r)
        Representations compared with ``X``, rows paired by sample.
    idx : (B, m) int, optional
        Subsets of the samples, without duplicates (half-samples); None: no subset replicates.
    perms : (P, n) int, optional
        Shufflings of the pairing of rows; None: no null replicates.
    device : str or torch.device, optional
        Run the Grams and GEMMs in torch float64 on this device (``"cuda"``, ``"cpu"``,
        ``"auto"``; metrics with ``get(name).on_device``); default numpy on the CPU. The
        replicates come back as numpy arrays and equal the numpy ones to rounding.
    **params
        Metric parameters (e.g. ``sigma`` for ``cka_rbf``); defaults from ``get(name).params``.

    Returns
    -------
    :class:`~repdrift.metrics.resampling.Replicates` with values (R,), subsets (R, B) or
    None, null (R, P) or None; float64 numpy arrays.
    """
    spec = get(name)
    full = resolve_params(name, params)
    dev = _device_for(spec, device)
    if spec.resampling is None:
        return by_recomputing(
            lambda A, B: compute(name, A, B, device=dev, **params), X, Ys, idx, perms
        )
    X, Ys = check_paired(X, Ys, min_n=spec.min_n, metric=spec.name, device=dev)
    if not Ys:
        return Replicates(
            values=np.empty(0),
            subsets=None if idx is None else np.empty((0, len(idx))),
            null=None if perms is None else np.empty((0, len(perms))),
        )
    return _snap_identical(spec, X, Ys, spec.resampling.replicates(X, Ys, idx, perms, **full))


def _snap_identical(spec: MetricSpec, X: Any, Ys: Sequence[Any], reps: Replicates) -> Replicates:
    """Values and subset replicates of each ``Ys[r]`` identical to ``X`` at the upper bound
    exactly, as :func:`compute` gives them (shuffled pairings are left as computed)."""
    same = [r for r, Y in enumerate(Ys) if same_values(X, Y)]
    if not same:
        return reps
    upper = spec.bounds[1]
    values = np.array(reps.values, dtype=np.float64, copy=True)
    values[same] = snap_array(values[same], upper)
    subsets = reps.subsets
    if subsets is not None:
        subsets = np.array(subsets, dtype=np.float64, copy=True)
        subsets[same] = snap_array(subsets[same], upper)
    return Replicates(values=values, subsets=subsets, null=reps.null)


#: Metrics whose replicates :func:`resample_many` computes together (one centred Gram per
#: representation, shared subset products, one gather per shuffle).
LINEAR_CKAS = ("cka_linear", "cka_debiased")


def resample_many(
    names: Sequence[str],
    X: Any,
    Ys: Sequence[Any],
    *,
    idx: np.ndarray | None = None,
    perms: np.ndarray | None = None,
    resampled: Sequence[str] | None = None,
    device: Any = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Replicates]:
    """:func:`resample` for several metrics of the same ``X`` and ``Ys``, sharing their work.

    Only the metrics in ``resampled`` (default: all of ``names``) get subset and null
    replicates; the others get values only (through :func:`matrix` when the metric has an
    all-pairs route, equal to :func:`compute` to rounding). ``cka_linear`` and ``cka_debiased`` resampled
    together on the CPU come from one joint computation
    (:func:`repdrift.metrics.resampling.linear_cka_replicates`), equal to their separate ones
    to rounding. ``params`` holds per metric name its parameters.
    """
    params = params or {}
    chosen = set(names if resampled is None else resampled)
    out: dict[str, Replicates] = {}
    joint = (
        all(n in names and n in chosen and not params.get(n) for n in LINEAR_CKAS)
        and _device_for(get(LINEAR_CKAS[0]), device) is None
        and len(Ys) > 0
    )
    if joint:
        A, Bs = check_paired(X, Ys, min_n=get("cka_debiased").min_n, metric="cka_debiased")
        try:
            both = linear_cka_replicates(A, Bs, idx, perms)
            out = {
                name: _snap_identical(get(name), A, Bs, both[name == "cka_debiased"])
                for name in LINEAR_CKAS
            }
        except InputError:  # e.g. a Gram one estimator cannot normalise: each on its own
            out = {}
    for name in names:
        if name in out:
            continue
        if name not in chosen and get(name).all_pairs is not None and len(Ys) > 0:
            # values only: through the all-pairs route, so X's per-layer work (e.g. the
            # Procrustes QR) is done once for every Y
            values = matrix(name, [X], list(Ys), device=device, **params.get(name, {}))[0]
            out[name] = Replicates(values=np.asarray(values, np.float64), subsets=None, null=None)
            continue
        keep = name in chosen
        out[name] = resample(
            name, X, Ys, idx=idx if keep else None, perms=perms if keep else None,
            device=device, **params.get(name, {}),
        )  # fmt: skip
    return out
