"""Token rows read onto the device the token-level analysis runs on.

The token-level accumulators (:mod:`repdrift.metrics.streaming`) run in numpy (``device``
None, the default on a CPU machine: :func:`repdrift.common.devices.metrics_device`) or in
torch on a device. :func:`read_rows` reads a chunk of rows from a (memory-mapped) token file
in its stored dtype, moves it to the device and converts it there to float64, so a GPU
receives half the bytes a float64 copy would take; :func:`chunk_cosines` is the per-row
cosine of a chunk on either path, returned as numpy (:func:`to_numpy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repdrift.metrics.cosine import row_cosines

__all__ = ["chunk_cosines", "read_rows", "to_numpy"]


def read_rows(A: Any, rows: np.ndarray, device: Any = None) -> Any:
    """Rows ``rows`` of A (N, d) as float64 (m, d): numpy (``device`` None) or a torch tensor
    on ``device``."""
    part = np.asarray(A[rows])
    if device is None:
        return np.asarray(part, dtype=np.float64)
    import torch

    return torch.from_numpy(np.ascontiguousarray(part)).to(device).to(torch.float64)


def chunk_cosines(X: Any, Y: Any) -> np.ndarray:
    """(m,) float64 cosine of each pair of rows of X, Y (m, d), numpy or torch; NaN for an
    all-zero row."""
    return to_numpy(row_cosines(X, Y))


def to_numpy(a: Any) -> np.ndarray:
    """A numpy array as it is, a torch tensor copied to numpy (from any device)."""
    return a if isinstance(a, np.ndarray) else a.to("cpu").numpy()
