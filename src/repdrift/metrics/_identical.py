"""Identical inputs give the upper bound exactly: the one home of that rule.

Every metric's contract (:class:`~repdrift.metrics.spec.MetricSpec` ``bounds``) says that
identical inputs give the upper bound, and a layer that fine-tuning did not change should show
drift 0, not 2.2e-16. The arithmetic cannot promise it: Procrustes reads a nuclear norm off an
SVD, the CCA family canonical correlations off another, RSA a Pearson correlation of ranks, and
each rounds to 1 - a few ulp for some shapes. So the registry computes every metric as usual
(so degenerate input is still refused by the metric, and its warnings still show) and then,
for a pair whose two sides hold the same float64 values bit for bit, replaces a finite result
within :data:`ROUNDING_SLACK` of the upper bound by the bound itself. A result further from the
bound is left as it is: it would be a property (or a bug) of the metric, not rounding, and
must stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repdrift.metrics._inputs import is_torch

#: How far below (or above) the upper bound a computed value on identical inputs may lie and
#: still be read as rounding. Observed deviations are a few ulp (up to ~1e-15); float64 sums
#: over a million samples err by ~1e-12 relative.
ROUNDING_SLACK = 1e-9


def same_values(a: Any, b: Any) -> bool:
    """Whether two validated (n, d) arrays (numpy, or torch) hold the same values.

    The same object is trivially identical; otherwise shapes must match and every entry
    compare equal (float32 vs float64 storage compares the float64 values the metric sees).
    The first and last rows are compared first, so unrelated layers cost O(d), not O(n d).
    """
    if a is b:
        return True
    if tuple(a.shape) != tuple(b.shape):
        return False
    if is_torch(a) or is_torch(b):
        import torch

        ta = torch.as_tensor(a).to(torch.float64)
        tb = torch.as_tensor(b).to(device=ta.device, dtype=torch.float64)
        if a.shape[0] and not (torch.equal(ta[0], tb[0]) and torch.equal(ta[-1], tb[-1])):
            return False
        return bool(torch.equal(ta, tb))
    if a.shape[0] and not (np.array_equal(a[0], b[0]) and np.array_equal(a[-1], b[-1])):
        return False
    return bool(np.array_equal(a, b))


def snapped(value: float, upper: float) -> float:
    """``upper`` when ``value`` is within rounding of it, else ``value`` unchanged.

    Call only for identical inputs; NaN and values further than :data:`ROUNDING_SLACK` from
    the bound pass through.
    """
    return upper if abs(value - upper) <= ROUNDING_SLACK else value


def snap_array(values: np.ndarray, upper: float) -> np.ndarray:
    """:func:`snapped` element-wise on a float64 array (returns a new array)."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[np.abs(out - upper) <= ROUNDING_SLACK] = upper  # NaN compares False: kept
    return out


def identical_pairs(xs: Sequence[Any], ys: Sequence[Any], same: bool) -> list[tuple[int, int]]:
    """Index pairs (i, j) with ``xs[i]`` and ``ys[j]`` identical (``same``: ys is xs)."""
    pairs = []
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            if (same and i == j) or same_values(a, b):
                pairs.append((i, j))
    return pairs
