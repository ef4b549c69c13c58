"""Mean per-sample cosine similarity between paired rows (same feature space required).

``cosine(X, Y) = mean_i <x_i, y_i> / (||x_i|| ||y_i||)`` in [-1, 1]. Unlike CKA it compares
coordinates directly, so it is meaningful only when both representations share a basis (the
same model's residual stream before and after fine-tuning); it is invariant to one
orthogonal map applied to both sides and to per-row positive scaling, not to translation.
Runs in numpy, or in torch on a device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import Layers, is_torch
from repdrift.metrics._pairwise import stacked_inner_products


def unit_rows(X: Any, label: str) -> Any:
    """Rows of ``X`` (n, d) scaled to unit length (numpy or torch); refuses all-zero rows,
    naming ``label``."""
    norms = ((X * X).sum(axis=1)) ** 0.5
    zero = norms <= 0.0
    n_zero = int(zero.sum())
    if n_zero:
        first = int(np.flatnonzero(zero.cpu().numpy() if is_torch(zero) else zero)[0])
        raise InputError(
            f"{label} has {n_zero} all-zero row(s) (e.g. row {first}); their cosine is undefined"
        )
    return X / norms[:, None]


def check_same_width(d1: int, d2: int, la: str, lb: str) -> None:
    """Refuse widths ``d1 != d2`` (of arrays named ``la`` and ``lb``): cosine needs one basis."""
    if d1 != d2:
        raise InputError(
            f"cosine compares coordinates, so it needs equal widths; {la} has d={d1} and {lb} "
            f"has d={d2}. Use a basis-free metric such as cka_linear or procrustes"
        )


def row_cosines(X: Any, Y: Any) -> Any:
    """Cosine of each pair of rows: ``<x_i, y_i> / (||x_i|| ||y_i||)``.

    Parameters
    ----------
    X, Y : ndarray or torch tensor, shape (n, d)
        Paired rows in one basis (equal widths; the caller checks).

    Returns
    -------
    ndarray or torch tensor (as the inputs), shape (n,)
        In [-1, 1], in the inputs' dtype; NaN where a row is all zero (not refused, so a
        per-row table keeps the other rows; :func:`cosine` refuses such rows).
    """
    if is_torch(X):
        return (X * Y).sum(1) / (X.norm(dim=1) * Y.norm(dim=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.einsum("ij,ij->i", X, Y) / (np.linalg.norm(X, axis=1) * np.linalg.norm(Y, axis=1))


def cosine(X: Any, Y: Any) -> float:
    """Mean row-wise cosine of X (n, d) and Y (n, d)."""
    check_same_width(X.shape[1], Y.shape[1], "X", "Y")
    return float((unit_rows(X, "X") * unit_rows(Y, "Y")).sum(axis=1).mean())


def cosine_matrix(layers_a: Layers, layers_b: Layers) -> np.ndarray:
    """(La, Lb) mean row-wise cosine as one GEMM over the unit-row layers."""
    d = layers_a.dims[0]
    for layers in (layers_a, layers_b):
        for i, di in enumerate(layers.dims):
            check_same_width(d, di, "layers_a[0]", layers.name(i))

    def state(layers: Layers, i: int, out: Any) -> None:
        out[:] = unit_rows(layers[i], layers.name(i)).reshape(-1)

    n = layers_a.n
    cross, _, _ = stacked_inner_products(
        layers_a, layers_b, state, n * d, same=layers_b is layers_a
    )
    return cross / n
