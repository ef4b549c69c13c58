"""Exact debiased linear CKA accumulated chunk by chunk: :class:`StreamingDebiasedCKA`.

For token-level data (10⁵–10⁶ rows per layer) that cannot be held at once. Memory is
O(d1² + d2² + d1·d2) whatever the number of rows; the result equals one-shot
``cka_debiased`` on the concatenated rows up to rounding (1e-10 in the tests).

Derivation
----------
The unbiased HSIC of Song et al. (2012), times ``n (n - 3)``, is, for Grams ``K = XXᵀ``,
``L = YYᵀ`` with zeroed diagonals ``K̃, L̃``,

    N(K, L) = tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n-1)(n-2)) - 2 (1ᵀK̃L̃1) / (n-2).

It is invariant to translating the rows of X or Y, so take them about their means
(``u_i = x_i - x̄``, ``v_i = y_i - ȳ``, ``Σu = Σv = 0``) and write ``a_i = ‖u_i‖²``,
``b_i = ‖v_i‖²``. Then ``tr(K̃L̃) = ‖UᵀV‖² - Σ a_i b_i``, ``1ᵀK̃1 = ‖Σu‖² - Σa = -Σa`` and
``(K̃1)_i = u_i·Σu - a_i = -a_i``, so ``1ᵀK̃L̃1 = Σ a_i b_i`` and

    N(X, Y) = ‖Sxy‖² - fxy + tr(Sxx) tr(Syy) / ((n-1)(n-2)) - 2 fxy / (n-2),

with the centred co-moments ``Sxy = UᵀV`` (and ``Sxx``, ``Syy``) and ``fxy = Σ a_i b_i``
(``fxx = Σ a_i²``, ``fyy = Σ b_i²`` for the self terms). Each chunk's statistics are exact
about its own mean; merging re-centres both sides on the pooled mean. Shifting the rows by
``δ`` (X) and ``ε`` (Y), with ``D = ‖δ‖²``, ``E = ‖ε‖²``, ``qx = tr Sxx``, ``qy = tr Syy``:

    Sxx ← Sxx + n δδᵀ                      (and Syy, Sxy: Chan et al.'s update)
    fxy ← fxy + 2 by·ε + 2 bx·δ + 4 δᵀSxy ε + E qx + D qy + n D E
    fxx ← fxx + 4 ax·δ + 4 δᵀSxx δ + 2 D qx + n D²
    ax  ← ax + 2 Sxx δ + (qx + n D) δ       with ax = Σ a_i u_i
    bx  ← bx + 2 Sxy ε + (qy + n E) δ       with bx = Σ b_i u_i
    by  ← by + 2 Sxyᵀ δ + (qx + n D) ε      with by = Σ a_i v_i

(and ``fyy``, ``ay = Σ b_i v_i`` by symmetry): the vectors ``Σ‖v‖²u``, ``Σ‖u‖²v``, ``Σ‖u‖²u``,
``Σ‖v‖²v`` are exactly what keeps the fourth-order sums exact under re-centring. Working
about running means (never with raw sums) keeps float64 accurate when activations have a
large mean.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repdrift.metrics._inputs import check_min_n, refuse_zero_variance
from repdrift.metrics.streaming import CoMoments, cross, paired_chunk, row_sq, sq_sum, trace

# The vector and scalar statistics, besides the three co-moment matrices.
_VECTORS = ("ax", "bx", "ay", "by")
_SCALARS = ("fxx", "fyy", "fxy")


class StreamingDebiasedCKA(CoMoments):
    """Exact debiased linear CKA (unbiased HSIC, Song et al. 2012) accumulated chunk by chunk.

    Same interface as :class:`~repdrift.metrics.streaming.StreamingLinearCKA`: :meth:`update`
    with paired rows, :meth:`merge` with another accumulator (shards, processes), then
    :meth:`compute`. State (see the module docstring): the co-moments of
    :class:`~repdrift.metrics.streaming.CoMoments` (row count, means, centred ``sxx``, ``syy``,
    ``sxy``, whose :meth:`linear_cka` gives the biased estimate from the same pass), four
    vectors and three scalars. Inputs are numpy arrays or torch tensors; ``device`` (None:
    float64 numpy; else float64 torch tensors on that device) as for
    :class:`~repdrift.metrics.streaming.CoMoments`.

    Examples
    --------
    >>> acc = StreamingDebiasedCKA()
    >>> for X_chunk, Y_chunk in chunks:          # doctest: +SKIP
    ...     acc.update(X_chunk, Y_chunk)
    >>> acc.compute()                             # doctest: +SKIP
    """

    def __init__(self, device: Any = None) -> None:
        super().__init__(device)
        self.ax: np.ndarray | None = None  # Σ ‖u‖² u  (d1,)
        self.bx: np.ndarray | None = None  # Σ ‖v‖² u  (d1,)
        self.ay: np.ndarray | None = None  # Σ ‖v‖² v  (d2,)
        self.by: np.ndarray | None = None  # Σ ‖u‖² v  (d2,)
        self.fxx = 0.0  # Σ ‖u‖⁴
        self.fyy = 0.0  # Σ ‖v‖⁴
        self.fxy = 0.0  # Σ ‖u‖² ‖v‖²

    def update(self, X_chunk: Any, Y_chunk: Any) -> StreamingDebiasedCKA:
        """Add paired rows X_chunk (m, d1), Y_chunk (m, d2). Returns self."""
        X, Y = paired_chunk(X_chunk, Y_chunk, self.dims, self.device)
        if X.shape[0] == 0:
            return self
        return self.merge(_chunk_statistics(X, Y, self))

    def _merge_more(self, other: CoMoments, dx: np.ndarray, dy: np.ndarray) -> None:
        """Re-centre both sides' vectors and scalars on the pooled mean, then add them (before
        the co-moments change: the shifts read the unshifted ones)."""
        assert isinstance(other, StreamingDebiasedCKA)
        n = self.n + other.n
        mine = self.shifted(-dx * (other.n / n), -dy * (other.n / n))
        theirs = other.shifted(dx * (self.n / n), dy * (self.n / n))
        for key in (*_VECTORS, *_SCALARS):
            setattr(self, key, mine[key] + theirs[key])

    def shifted(self, d: np.ndarray, e: np.ndarray) -> dict[str, Any]:
        """The vector and scalar statistics of rows shifted by ``d`` (X) and ``e`` (Y)."""
        n, qx, qy = self.n, trace(self.sxx), trace(self.syy)
        D, E = float(d @ d), float(e @ e)
        sxx_d, syy_e = self.sxx @ d, self.syy @ e
        sxy_e, syx_d = self.sxy @ e, self.sxy.T @ d
        return {
            "ax": self.ax + 2.0 * sxx_d + (qx + n * D) * d,
            "bx": self.bx + 2.0 * sxy_e + (qy + n * E) * d,
            "ay": self.ay + 2.0 * syy_e + (qy + n * E) * e,
            "by": self.by + 2.0 * syx_d + (qx + n * D) * e,
            "fxx": self.fxx + 4.0 * float(self.ax @ d) + 4.0 * float(d @ sxx_d)
            + 2.0 * D * qx + n * D * D,
            "fyy": self.fyy + 4.0 * float(self.ay @ e) + 4.0 * float(e @ syy_e)
            + 2.0 * E * qy + n * E * E,
            "fxy": self.fxy + 2.0 * float(self.by @ e) + 2.0 * float(self.bx @ d)
            + 4.0 * float(d @ sxy_e) + E * qx + D * qy + n * D * E,
        }  # fmt: skip

    def numerators(self) -> tuple[float, float, float]:
        """``n (n - 3)`` times the unbiased HSIC: (HSIC(X, Y), HSIC(X, X), HSIC(Y, Y))."""
        check_min_n(self.n, 4, "StreamingDebiasedCKA")
        n = self.n
        qx, qy = trace(self.sxx), trace(self.syy)

        def num(cross_sq: float, f: float, q1: float, q2: float) -> float:
            return cross_sq - f + q1 * q2 / ((n - 1) * (n - 2)) - 2.0 * f / (n - 2)

        return (
            num(sq_sum(self.sxy), self.fxy, qx, qy),
            num(sq_sum(self.sxx), self.fxx, qx, qx),
            num(sq_sum(self.syy), self.fyy, qy, qy),
        )

    def compute(self) -> float:
        """Debiased linear CKA of everything seen so far; in [-1, 1], ≈ 0 when unrelated."""
        check_min_n(self.n, 4, "StreamingDebiasedCKA")
        self._check_variance("cka_debiased")
        xy, xx, yy = self.numerators()
        if not xx > 0:
            refuse_zero_variance("X", "cka_debiased")
        if not yy > 0:
            refuse_zero_variance("Y", "cka_debiased")
        return xy / math.sqrt(xx * yy)


def _chunk_statistics(X: Any, Y: Any, like: StreamingDebiasedCKA) -> StreamingDebiasedCKA:
    """An accumulator (on ``like``'s device) holding the statistics of the chunk X (m, d1),
    Y (m, d2), about the chunk's own means."""
    acc = StreamingDebiasedCKA(like.device)
    acc.n = X.shape[0]
    acc.mean_x, acc.mean_y = X.mean(0), Y.mean(0)
    U, V = X - acc.mean_x, Y - acc.mean_y
    a, b = row_sq(U), row_sq(V)
    f64 = like.fast64
    acc.sxx, acc.syy, acc.sxy = cross(U, U, f64), cross(V, V, f64), cross(U, V, f64)
    acc.ax, acc.bx, acc.ay, acc.by = a @ U, b @ U, b @ V, a @ V
    acc.fxx, acc.fyy, acc.fxy = float(a @ a), float(b @ b), float(a @ b)
    return acc
