"""Turn user arrays into validated float64 arrays (numpy, or torch on a requested device).

Every metric receives arrays that passed these checks, so the math modules can assume
2-D, finite input with paired rows: float64 arrays for one pair, a :class:`Layers` sequence
(float64 on access) for cross-layer matrices. torch is imported lazily: importing
``repdrift.metrics`` must stay cheap for code that never touches torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repdrift.common import devices
from repdrift.errors import InputError

# Relative threshold below which the spread of a representation is indistinguishable from
# rounding noise of its mean (pairwise float64 sums err by ~1e-15 relative even at n = 1e6).
ZERO_VARIANCE_RTOL = 1e-12


def is_torch(a: Any) -> bool:
    """True for a ``torch.Tensor``, decided without importing torch."""
    return type(a).__module__.split(".")[0] == "torch"


def resolve_device(device: Any) -> Any:
    """None (numpy on the CPU) for None, else :func:`repdrift.common.devices.resolve_device`.

    Accepts what the rest of the package accepts (``"auto"``, ``"cpu"``, ``"cuda:0"``, a
    ``torch.device``); torch is imported only when a device is requested.
    """
    return None if device is None else devices.resolve_device(device)


def as_float64(a: Any, label: str, device: Any = None) -> Any:
    """Convert ``a`` to float64: numpy (``device is None``) or a torch tensor on ``device``.

    Parameters
    ----------
    a
        numpy array, torch tensor or anything ``np.asarray`` accepts, shape (n, d).
    label
        Name used in error messages, e.g. ``"X"`` or ``"layers_a[3]"``.
    device
        None for numpy on the CPU, else a ``torch.device``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float64, shape (n, d), validated: 2-D, d >= 1, every value finite.
    """
    if is_torch(a):
        import torch

        t = a.detach()
        if t.is_complex():
            raise InputError(f"{label} is a complex tensor; expected real activations")
        out = t.to("cpu", torch.float64).numpy() if device is None else t.to(device, torch.float64)
    else:
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"{label} could not be converted to a float64 array ({exc}); expected a "
                "numpy array or torch tensor of shape (n, d)"
            ) from exc
        if device is None:
            out = arr
        else:
            import torch

            out = torch.as_tensor(arr, device=device)
    _check_shape(out, label)
    _check_finite(out, label)
    return out


def _check_shape(a: Any, label: str) -> None:
    shape = tuple(a.shape)
    if len(shape) != 2:
        hint = " (for a single feature use X[:, None])" if len(shape) == 1 else ""
        raise InputError(f"{label} has shape {shape}; expected 2-D (n_samples, n_features){hint}")
    if shape[1] < 1:
        raise InputError(f"{label} has shape {shape}; expected at least one feature column")


def _check_finite(a: Any, label: str) -> None:
    if is_torch(a):
        import torch

        n_nan = int(torch.isnan(a).sum())
        n_inf = int(torch.isinf(a).sum())
    else:
        if np.isfinite(a).all():  # fast path: one pass, no counting
            return
        n_nan = int(np.isnan(a).sum())
        n_inf = int(np.isinf(a).sum())
    if n_nan or n_inf:
        raise InputError(
            f"{label} (shape {tuple(a.shape)}) contains {n_nan} NaN and {n_inf} Inf values; "
            "expected finite activations"
        )


def check_pair(X: Any, Y: Any, *, min_n: int, metric: str, device: Any = None) -> tuple[Any, Any]:
    """Validate two paired representations and convert both to float64.

    Parameters
    ----------
    X, Y
        Arrays of shape (n, d1) and (n, d2), rows paired by sample.
    min_n
        Smallest number of samples for which ``metric`` is defined.
    metric
        Metric name, for error messages.
    device
        None (numpy) or ``torch.device``.

    Returns
    -------
    tuple
        ``(X, Y)`` as float64 arrays of shapes (n, d1), (n, d2).
    """
    X = as_float64(X, "X", device)
    Y = as_float64(Y, "Y", device)
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X has {X.shape[0]} rows and Y has {Y.shape[0]}; rows must be paired by sample "
            "(same n)"
        )
    check_min_n(X.shape[0], min_n, metric)
    return X, Y


def check_paired(
    X: Any, Ys: Sequence[Any], *, min_n: int, metric: str, device: Any = None
) -> tuple[Any, list[Any]]:
    """Validate a reference ``X`` (n, d0) and R representations ``Ys`` paired with it.

    Like :func:`check_pair` for each ``Y``, with ``X`` converted (and moved to ``device``) once.

    Returns
    -------
    tuple
        ``(X, [Y_0, ..., Y_{R-1}])`` as float64 arrays (numpy, or torch on ``device``).
    """
    X = as_float64(X, "X", device)
    out = []
    for r, Y in enumerate(Ys):
        label = f"Ys[{r}]"
        Y = as_float64(Y, label, device)
        if Y.shape[0] != X.shape[0]:
            raise InputError(
                f"X has {X.shape[0]} rows and {label} has {Y.shape[0]}; rows must be paired by "
                "sample (same n)"
            )
        out.append(Y)
    check_min_n(X.shape[0], min_n, metric)
    return X, out


class Layers(Sequence[Any]):
    """Validated per-layer representations, converted to float64 on access.

    Holding float64 copies of every layer up front would double the memory of float32
    activations and, on machines where first-touching memory is slow, cost more than the
    maths. Indexing returns a fresh float64 array (numpy, or torch on ``device``); metrics
    compute their per-layer state from it once. :meth:`raw` gives the validated array in its
    own floating dtype (float32 or float64) for code that converts while it computes.

    Attributes
    ----------
    label : str
        ``"layers_a"`` or ``"layers_b"``, for messages.
    n : int
        Samples per layer.
    dims : list[int]
        Feature width of each layer.
    device
        None (numpy) or ``torch.device``.
    """

    def __init__(self, items: list[Any], label: str, device: Any) -> None:
        self._items = items
        self.label = label
        self.device = device
        self.n = int(items[0].shape[0])
        self.dims = [int(a.shape[1]) for a in items]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            raise TypeError("Layers does not support slicing")
        a = self._items[i]
        if is_torch(a):
            import torch

            return a.to(torch.float64)
        return np.asarray(a, dtype=np.float64)

    def raw(self, i: int) -> Any:
        """Layer i as validated, float32 or float64 (numpy, or torch on ``device``)."""
        return self._items[i]

    def name(self, i: int) -> str:
        """``"layers_a[3]"``-style name of layer i."""
        return f"{self.label}[{i}]"


def _validated_raw(a: Any, label: str, device: Any) -> Any:
    """Validate without converting float32/float64 storage; move torch to ``device``."""
    if is_torch(a):
        import torch

        t = a.detach()
        if device is None:
            keep = t.dtype in (torch.float32, torch.float64)
            out = t.cpu().numpy() if keep else as_float64(t, label)
        else:
            out = (
                t.to(device)
                if t.dtype in (torch.float32, torch.float64)
                else t.to(device, torch.float64)
            )
    elif isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
        out = a if device is None else _to_torch(a, device)
    else:
        out = as_float64(a, label, device)
    _check_shape(out, label)
    _check_finite(out, label)
    return out


def _to_torch(a: np.ndarray, device: Any) -> Any:
    import torch

    return torch.as_tensor(a, device=device)


def check_layers(
    layers: Sequence[Any], label: str, *, min_n: int, metric: str, device: Any = None
) -> Layers:
    """Validate a sequence of (n, d_l) layer representations.

    Returns
    -------
    Layers
        Indexing yields float64 arrays of shape (n, d_l).
    """
    if is_torch(layers) or isinstance(layers, (np.ndarray, str, bytes)):
        raise InputError(
            f"{label} must be a sequence (list/tuple) of (n, d_l) arrays, one per layer; got "
            f"a single {type(layers).__name__}"
        )
    try:
        items = list(layers)
    except TypeError as exc:
        raise InputError(f"{label} must be a sequence of (n, d_l) arrays, one per layer") from exc
    if not items:
        raise InputError(f"{label} is empty; expected at least one layer")
    out = [_validated_raw(a, f"{label}[{i}]", device) for i, a in enumerate(items)]
    n = out[0].shape[0]
    for i, a in enumerate(out):
        if a.shape[0] != n:
            raise InputError(
                f"{label}[{i}] has {a.shape[0]} rows but {label}[0] has {n}; every layer must "
                "hold the same samples in the same order"
            )
    check_min_n(n, min_n, metric)
    return Layers(out, label, device)


def check_min_n(n: int, min_n: int, metric: str) -> None:
    """Refuse ``n`` below the estimator's minimum sample count."""
    if n < min_n:
        raise InputError(f"{metric} needs at least n = {min_n} samples; got n = {n}")


def zero_variance(centered_sq: float, raw_sq: float) -> bool:
    """True when a centred sum of squares is rounding noise relative to the raw one."""
    return centered_sq <= (ZERO_VARIANCE_RTOL**2) * raw_sq or centered_sq <= 0.0


def center_or_refuse(X: Any, label: str, metric: str) -> Any:
    """Column-centre ``X`` (n, d) → float64 (n, d); refuse a representation with zero variance.

    Works on numpy arrays and torch tensors, float32 or float64; the mean is accumulated and
    the result produced in float64, so float32 input needs no separate float64 copy.
    Three passes over X: mean, subtract, one dot.
    """
    mu = mean64(X)
    Xc = X - mu
    flat = Xc.reshape(-1)
    ss_c = float(flat @ flat)
    # ||X||² = ||Xc||² + n ||mu||², so the raw scale costs no extra pass over X.
    if zero_variance(ss_c, ss_c + X.shape[0] * float(mu @ mu)):
        refuse_zero_variance(label, metric)
    return Xc


def mean64(X: Any) -> Any:
    """Column means in float64, (n, d) → (d,), for float32 or float64 numpy/torch input."""
    if is_torch(X):
        import torch

        return X.mean(dim=0, dtype=torch.float64)
    return X.mean(axis=0, dtype=np.float64)


def refuse_zero_variance(label: str, metric: str, why: str = "") -> None:
    """Raise the standard error for a representation whose rows are all identical."""
    raise InputError(
        f"{label} has zero variance (all rows identical up to rounding); {metric} is undefined "
        f"for it{why}"
    )
