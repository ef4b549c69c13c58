"""All-pairs inner products of per-layer states as one GEMM.

Several metrics reduce to Frobenius inner products between one vector per layer: centred
Grams (CKA), z-scored ranked RDMs (RSA), k-NN indicator masks (mutual k-NN). Computing the
state once per layer and then ``A @ Bᵀ`` over the stacked states turns La·Lb pair evaluations
into La + Lb state computations and a single BLAS call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from repdrift.metrics._inputs import is_torch

# Stacked states above this size are processed in blocks of layers_b, so peak memory is
# about La·m·8 bytes for layers_a plus this budget for a block of layers_b.
BLOCK_BYTES = 512 * 2**20


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
    layers_a: Sequence[Any],
    layers_b: Sequence[Any],
    state: Callable[[Any, str], Any],
    *,
    same: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner products between per-layer state vectors, each state computed exactly once.

    Parameters
    ----------
    layers_a, layers_b
        Validated float64 layers, shapes (n, d_l).
    state
        ``state(X, label) -> vector`` of a length m that is the same for every layer
        (e.g. a flattened centred Gram, m = n²).
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
    first = state(layers_a[0], "layers_a[0]").reshape(-1)
    m = first.shape[0]
    A = _empty(first, (len(layers_a), m))
    A[0] = first
    del first
    for i in range(1, len(layers_a)):
        A[i] = state(layers_a[i], f"layers_a[{i}]").reshape(-1)
    sq_a = _row_sq(A)
    if same:
        cross = A @ A.T
        return _to_numpy(cross), _to_numpy(sq_a), _to_numpy(sq_a)

    block = max(1, min(len(layers_b), BLOCK_BYTES // (8 * m)))
    cross = np.empty((len(layers_a), len(layers_b)))
    sq_b = np.empty(len(layers_b))
    for start in range(0, len(layers_b), block):
        stop = min(start + block, len(layers_b))
        B = _empty(A, (stop - start, m))
        for j in range(start, stop):
            B[j - start] = state(layers_b[j], f"layers_b[{j}]").reshape(-1)
        cross[:, start:stop] = _to_numpy(A @ B.T)
        sq_b[start:stop] = _to_numpy(_row_sq(B))
        del B
    return cross, _to_numpy(sq_a), sq_b
