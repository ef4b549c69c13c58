"""All-pairs inner products of per-layer states as one GEMM.

Several metrics reduce to Frobenius inner products between one vector per layer: centred
Grams (CKA), z-scored ranked RDMs (RSA), k-NN indicator masks (mutual k-NN). Computing the
state once per layer and then ``A @ Bᵀ`` over the stacked states turns La·Lb pair evaluations
into La + Lb state computations and a single BLAS call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from repdrift.metrics._inputs import Layers, is_torch

# layers_b are processed in blocks of at most this many bytes of state, so peak memory is
# about La·m·8 bytes for layers_a plus this budget.
BLOCK_BYTES = 64 * 2**20


def _empty(like: Any, shape: tuple[int, int]) -> Any:
    if is_torch(like):
        import torch

        return torch.empty(shape, dtype=torch.float64, device=like.device)
    return np.empty(shape, dtype=np.float64)


def _row_sq(A: Any) -> Any:
    """Squared row norms without materialising ``A * A``."""
    if is_torch(A):
        import torch

        return torch.einsum("ij,ij->i", A, A)
    return np.einsum("ij,ij->i", A, A)


def _to_numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if is_torch(a) else np.asarray(a)


def stacked_inner_products(
    layers_a: Layers,
    layers_b: Layers,
    state: Callable[[Layers, int, Any], None],
    length: int,
    *,
    same: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner products between per-layer state vectors, each state computed exactly once.

    Parameters
    ----------
    layers_a, layers_b
        Validated layers, shapes (n, d_l).
    state
        ``state(layers, i, out)`` writes layer i's state, a float64 vector of ``length``
        entries (e.g. a flattened centred Gram, n²), into the 1-D view ``out``. Writing in
        place avoids a temporary per layer.
    length
        Length m of every state vector.
    same
        True when ``layers_b`` is ``layers_a``: the states of B are those of A.

    Returns
    -------
    cross : (La, Lb) ndarray
        ``<state(a_i), state(b_j)>``.
    sq_a : (La,) ndarray
        ``<state(a_i), state(a_i)>``.
    sq_b : (Lb,) ndarray
        ``<state(b_j), state(b_j)>``.
    """
    like = layers_a.raw(0)
    A = _empty(like, (len(layers_a), length))
    for i in range(len(layers_a)):
        state(layers_a, i, A[i])
    sq_a = _row_sq(A)
    if same:
        return _to_numpy(A @ A.T), _to_numpy(sq_a), _to_numpy(sq_a)

    # One reusable buffer for blocks of B: bounded memory, and fresh pages are touched once.
    block = max(1, min(len(layers_b), BLOCK_BYTES // (8 * length)))
    buf = _empty(like, (block, length))
    cross = np.empty((len(layers_a), len(layers_b)))
    sq_b = np.empty(len(layers_b))
    for start in range(0, len(layers_b), block):
        stop = min(start + block, len(layers_b))
        B = buf[: stop - start]
        for j in range(start, stop):
            state(layers_b, j, B[j - start])
        cross[:, start:stop] = _to_numpy(A @ B.T)
        sq_b[start:stop] = _to_numpy(_row_sq(B))
    return cross, _to_numpy(sq_a), sq_b
