"""Accumulators for data too large to hold at once (token-level activations).

- :class:`StreamingLinearCKA`: exact linear CKA from running centred second moments. Memory
  O(d1² + d2² + d1·d2), independent of n; equal to one-shot ``cka_linear`` up to rounding.
  Chunks are combined with the pairwise update of Chan, Golub & LeVeque (1979), which keeps
  float64 sums accurate at n = 10⁶ even when activations have a large mean.
- :class:`~repdrift.metrics.streaming_debiased.StreamingDebiasedCKA` (its own module): exact
  debiased linear CKA, equal to one-shot ``cka_debiased``.
- :class:`StreamingCosine`: the mean per-row cosine (``cosine``) over all rows seen.
- :class:`MinibatchCKA`: the minibatch estimator of Nguyen et al. (2021), each ``update`` one
  minibatch; equals ``cka_minibatch`` for the same batches and is *not* equal to one-shot CKA
  by design.

All accept numpy arrays or torch tensors, support ``merge`` for sharded/parallel
accumulation, and can be pickled. The two exact CKAs also take ``device``: None (the default)
keeps their state in float64 numpy on the CPU; a device (``"cpu"``, ``"cuda"``, a
``torch.device``) keeps it as float64 torch tensors there, and each chunk's d × d products run
on it, in float64 where the device has it fast
(:func:`repdrift.common.devices.has_fast_float64`: the CPU, datacentre GPUs) and otherwise in
float32 about the chunk's own means, each chunk's product then added in float64. Both paths
agree to rounding (1e-10 in the tests, with the torch path on the CPU).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from repdrift.common.devices import has_fast_float64
from repdrift.errors import InputError
from repdrift.metrics._inputs import (
    as_float64,
    check_min_n,
    is_torch,
    refuse_zero_variance,
    resolve_device,
    zero_variance,
)
from repdrift.metrics._pairwise import _row_sq
from repdrift.metrics.cka import _use_features, debiased_numerator
from repdrift.metrics.cosine import check_same_width, unit_rows
from repdrift.metrics.kernels import center_features, u_center_gram


def paired_chunk(
    X: Any, Y: Any, dims: tuple[int, int] | None, device: Any = None
) -> tuple[Any, Any]:
    """Validate one chunk of paired rows as float64 (numpy, or torch on ``device``), widths
    checked against ``dims``."""
    X = as_float64(X, "X_chunk", device)
    Y = as_float64(Y, "Y_chunk", device)
    if X.shape[0] != Y.shape[0]:
        raise InputError(
            f"X_chunk has {X.shape[0]} rows and Y_chunk has {Y.shape[0]}; rows must be paired"
        )
    if dims is not None and (X.shape[1], Y.shape[1]) != dims:
        raise InputError(
            f"chunk widths (d1, d2) = {(X.shape[1], Y.shape[1])} differ from the first chunk's "
            f"{dims}"
        )
    return X, Y


def outer(a: Any, b: Any) -> Any:
    """(d1, d2) outer product of (d1,) and (d2,) vectors, numpy or torch."""
    return a[:, None] * b[None, :]


def trace(M: Any) -> float:
    """Trace of a square numpy array or torch tensor, as a float."""
    return float(M.diagonal().sum())


def sq_sum(M: Any) -> float:
    """Sum of squares of a numpy array or torch tensor (its squared Frobenius norm)."""
    return float((M * M).sum())


def row_sq(A: Any) -> Any:
    """(m,) squared norm of each row of A (m, d), numpy or torch (no ``A * A`` temporary)."""
    return _row_sq(A)


def cross(A: Any, B: Any, fast64: bool = True) -> Any:
    """(d1, d2) ``Aᵀ B`` of float64 A (m, d1), B (m, d2): in float64, or, where the device lacks
    fast float64, multiplied in float32 and returned in float64 (torch only)."""
    if fast64 or not is_torch(A):
        return A.T @ B
    import torch

    return (A.to(torch.float32).T @ B.to(torch.float32)).to(torch.float64)


def _moved(v: Any, device: Any) -> Any:
    """A copy of one state entry (array, tensor or scalar) on ``device`` (None: numpy)."""
    if is_torch(v):
        return v.detach().to("cpu").numpy().copy() if device is None else v.to(device).clone()
    if isinstance(v, np.ndarray):
        if device is None:
            return v.copy()
        import torch

        return torch.as_tensor(v, device=device).clone()
    return v


class CoMoments:
    """Row count, means and centred co-moments of paired rows, merged exactly.

    The bookkeeping both streaming CKAs share: ``n``, means (d1,), (d2,) and centred
    co-moment matrices ``sxx`` (d1, d1), ``syy`` (d2, d2), ``sxy`` (d1, d2), combined with the
    pairwise update of Chan, Golub & LeVeque (1979). A subclass that keeps more statistics
    about the mean adds them in :meth:`_merge_more`.

    Parameters
    ----------
    device : None, str or torch.device
        None: numpy float64 state on the CPU. Else float64 torch tensors on that device (see
        the module docstring for its float32 products on devices without fast float64).
    """

    def __init__(self, device: Any = None) -> None:
        self.device = resolve_device(device)
        self.fast64 = has_fast_float64(self.device)
        self.n = 0
        self.mean_x: np.ndarray | None = None
        self.mean_y: np.ndarray | None = None
        self.sxx: np.ndarray | None = None
        self.syy: np.ndarray | None = None
        self.sxy: np.ndarray | None = None

    @property
    def dims(self) -> tuple[int, int] | None:
        """(d1, d2) once the first chunk arrived, else None."""
        if self.mean_x is None or self.mean_y is None:
            return None
        return (self.mean_x.shape[0], self.mean_y.shape[0])

    def merge(self, other: CoMoments) -> Any:
        """Fold another accumulator (e.g. from another shard) into this one. Returns self."""
        name = type(self).__name__
        if not isinstance(other, type(self)):
            raise InputError(f"can only merge a {name}, got {type(other).__name__}")
        if other.n == 0:
            return self
        if self.n == 0 or other.device != self.device:
            state = {
                k: _moved(v, self.device)
                for k, v in vars(other).items()
                if k not in ("device", "fast64")
            }
            if self.n == 0:
                self.__dict__.update(state)
                return self
            other = copy.copy(other)
            other.__dict__.update(state, device=self.device)
        if other.dims != self.dims:
            raise InputError(f"cannot merge accumulators of widths {self.dims} and {other.dims}")
        n = self.n + other.n
        dx = other.mean_x - self.mean_x
        dy = other.mean_y - self.mean_y
        self._merge_more(other, dx, dy)
        f = self.n * other.n / n
        # Chan et al.: S = S_a + S_b + (n_a n_b / n) δ δᵀ
        self.sxx += other.sxx
        self.sxx += f * outer(dx, dx)
        self.syy += other.syy
        self.syy += f * outer(dy, dy)
        self.sxy += other.sxy
        self.sxy += f * outer(dx, dy)
        self.mean_x += dx * (other.n / n)
        self.mean_y += dy * (other.n / n)
        self.n = n
        return self

    def _merge_more(self, other: CoMoments, dx: np.ndarray, dy: np.ndarray) -> None:
        """Merge statistics beyond the co-moments (called before they change); none here."""

    def _check_variance(self, metric: str) -> None:
        for label, s, mean in (("X", self.sxx, self.mean_x), ("Y", self.syy, self.mean_y)):
            tr = trace(s)
            if zero_variance(tr, tr + self.n * float(mean @ mean)):
                refuse_zero_variance(label, metric)

    def linear_cka(self) -> float:
        """Linear CKA (biased HSIC) of everything seen so far: ``||Sxy||² / (||Sxx|| ||Syy||)``."""
        check_min_n(self.n, 2, type(self).__name__)
        self._check_variance("cka_linear")
        xy = sq_sum(self.sxy)
        return xy / math.sqrt(sq_sum(self.sxx) * sq_sum(self.syy))


class StreamingLinearCKA(CoMoments):
    """Exact linear CKA (biased HSIC) accumulated chunk by chunk.

    State (:class:`CoMoments`): row count n, means and centred co-moment matrices
    ``Sxx`` (d1, d1), ``Syy`` (d2, d2), ``Sxy`` (d1, d2). ``CKA = ||Sxy||² / (||Sxx|| ||Syy||)``.
    ``device``: see :class:`CoMoments`.

    Examples
    --------
    >>> acc = StreamingLinearCKA()
    >>> for X_chunk, Y_chunk in chunks:          # doctest: +SKIP
    ...     acc.update(X_chunk, Y_chunk)
    >>> acc.compute()                             # doctest: +SKIP
    """

    def update(self, X_chunk: Any, Y_chunk: Any) -> StreamingLinearCKA:
        """Add paired rows X_chunk (m, d1), Y_chunk (m, d2). Returns self."""
        X, Y = paired_chunk(X_chunk, Y_chunk, self.dims, self.device)
        m = X.shape[0]
        if m == 0:
            return self
        mx, my = X.mean(0), Y.mean(0)
        Xc, Yc = X - mx, Y - my
        other = StreamingLinearCKA(self.device)
        other.n, other.mean_x, other.mean_y = m, mx, my
        f64 = self.fast64
        other.sxx, other.syy = cross(Xc, Xc, f64), cross(Yc, Yc, f64)
        other.sxy = cross(Xc, Yc, f64)
        return self.merge(other)

    def compute(self) -> float:
        """Linear CKA of everything seen so far; in [0, 1]."""
        return self.linear_cka()


class StreamingCosine:
    """Mean per-row cosine (``cosine``) accumulated chunk by chunk; memory O(1).

    Keeps the row count and the sum (and sum of squares) of the per-row cosines, so
    :meth:`compute` equals one-shot ``cosine`` on the concatenated rows up to rounding and
    :attr:`std` gives their spread. X and Y must share a basis (equal widths).
    """

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0
        self.width: int | None = None

    def update(self, X_chunk: Any, Y_chunk: Any) -> StreamingCosine:
        """Add paired rows X_chunk (m, d), Y_chunk (m, d); all-zero rows are refused."""
        X, Y = paired_chunk(X_chunk, Y_chunk, None)
        check_same_width(X.shape[1], Y.shape[1], "X_chunk", "Y_chunk")
        if self.width is not None:
            check_same_width(self.width, X.shape[1], "the first chunk", "X_chunk")
        self.width = X.shape[1]
        if X.shape[0] == 0:
            return self
        c = np.einsum("ij,ij->i", unit_rows(X, "X_chunk"), unit_rows(Y, "Y_chunk"))
        self.n += c.shape[0]
        self.total += float(c.sum())
        self.total_sq += float(c @ c)
        return self

    def merge(self, other: StreamingCosine) -> StreamingCosine:
        """Fold another accumulator into this one. Returns self."""
        if not isinstance(other, StreamingCosine):
            raise InputError(f"can only merge a StreamingCosine, got {type(other).__name__}")
        if other.n and self.width is not None and other.width != self.width:
            check_same_width(self.width, int(other.width or 0), "this accumulator", "other")
        self.width = self.width if self.width is not None else other.width
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq
        return self

    def compute(self) -> float:
        """Mean per-row cosine of everything seen so far; in [-1, 1]."""
        check_min_n(self.n, 1, "StreamingCosine")
        return self.total / self.n

    @property
    def std(self) -> float:
        """Standard deviation of the per-row cosines (population, ddof = 0)."""
        check_min_n(self.n, 1, "StreamingCosine")
        mean = self.total / self.n
        return math.sqrt(max(self.total_sq / self.n - mean * mean, 0.0))


def minibatch_hsic(X: np.ndarray, Y: np.ndarray) -> tuple[float, float, float]:
    """Unbiased HSIC (Song et al. 2012) of one minibatch: (HSIC(X,Y), HSIC(X,X), HSIC(Y,Y)).

    Parameters
    ----------
    X, Y : (m, d1), (m, d2) float64, m >= 4
    """
    m = X.shape[0]
    check_min_n(m, 4, "a minibatch of cka_minibatch")
    Xc, Yc = center_features(X), center_features(Y)
    if _use_features(m, [X.shape[1]], [Y.shape[1]]):
        kx, ky = np.einsum("ij,ij->i", Xc, Xc), np.einsum("ij,ij->i", Yc, Yc)

        def sq(M: np.ndarray) -> float:
            return float(np.sum(M * M))

        xy = debiased_numerator(sq(Xc.T @ Yc), kx, ky, m)
        xx = debiased_numerator(sq(Xc.T @ Xc), kx, kx, m)
        yy = debiased_numerator(sq(Yc.T @ Yc), ky, ky, m)
    else:
        K, L = u_center_gram(Xc @ Xc.T), u_center_gram(Yc @ Yc.T)
        k, ll = K.reshape(-1), L.reshape(-1)
        xy, xx, yy = float(k @ ll), float(k @ k), float(ll @ ll)
    scale = m * (m - 3)
    return xy / scale, xx / scale, yy / scale


class MinibatchCKA:
    """Minibatch CKA of Nguyen et al. (2021): each :meth:`update` is one minibatch.

    ``CKA = Σ_b HSIC₁(X_b, Y_b) / sqrt(Σ_b HSIC₁(X_b, X_b) · Σ_b HSIC₁(Y_b, Y_b))`` with the
    unbiased HSIC₁ of Song et al. Memory O(1). Depends on how rows are grouped into batches;
    it estimates the population CKA without the d ≫ n bias of the biased estimator.
    """

    def __init__(self) -> None:
        self.n_batches = 0
        self.n = 0
        self.hsic_xy = 0.0
        self.hsic_xx = 0.0
        self.hsic_yy = 0.0

    def update(self, X_batch: Any, Y_batch: Any) -> MinibatchCKA:
        """Add one minibatch X_batch (m, d1), Y_batch (m, d2), m >= 4. Returns self."""
        X, Y = paired_chunk(X_batch, Y_batch, None)
        xy, xx, yy = minibatch_hsic(X, Y)
        self.hsic_xy += xy
        self.hsic_xx += xx
        self.hsic_yy += yy
        self.n_batches += 1
        self.n += X.shape[0]
        return self

    def merge(self, other: MinibatchCKA) -> MinibatchCKA:
        """Fold another accumulator's minibatches into this one. Returns self."""
        if not isinstance(other, MinibatchCKA):
            raise InputError(f"can only merge a MinibatchCKA, got {type(other).__name__}")
        self.hsic_xy += other.hsic_xy
        self.hsic_xx += other.hsic_xx
        self.hsic_yy += other.hsic_yy
        self.n_batches += other.n_batches
        self.n += other.n
        return self

    def compute(self) -> float:
        """Minibatch CKA over all minibatches seen so far."""
        if self.n_batches == 0:
            raise InputError("MinibatchCKA.compute() called before any update()")
        if not self.hsic_xx > 0:
            refuse_zero_variance("X", "cka_minibatch")
        if not self.hsic_yy > 0:
            refuse_zero_variance("Y", "cka_minibatch")
        return self.hsic_xy / math.sqrt(self.hsic_xx * self.hsic_yy)
