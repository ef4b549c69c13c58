"""Mutual k-nearest-neighbour alignment (Huh et al. 2024, "The Platonic Representation Hypothesis").

For each sample i, ``N_X(i)`` is the set of its k nearest other samples in X and ``N_Y(i)`` in
Y; the alignment is ``mean_i |N_X(i) ∩ N_Y(i)| / k`` in [0, 1]. Chance level for unrelated
representations is about ``k / (n - 1)``.

Neighbours are by cosine similarity by default (rows L2-normalised, then inner product, as in
Huh et al.'s code), or by Euclidean distance. Ties are broken by the lower sample index so
the result is deterministic. Each layer's neighbour sets are computed once; a pair then costs
one sorted-array intersection of n·k keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import Layers, center_or_refuse

NEIGHBOR_METRICS = ("cosine", "euclidean")
# Rows of the similarity matrix processed at once: memory ~ ROW_BLOCK·n float64.
ROW_BLOCK = 2048


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputError(f"k={k!r}; expected an integer number of neighbours")
    if not 1 <= k <= n - 2:
        raise InputError(
            f"k={k} with n={n} samples; expected 1 <= k <= n - 2 (k = n - 1 makes every "
            "neighbourhood the whole set)"
        )
    return int(k)


def neighbor_keys(X: np.ndarray, k: int, metric: str = "cosine", label: str = "X") -> np.ndarray:
    """Sorted keys ``i·n + j`` of the k nearest neighbours j of each sample i (j != i).

    Parameters
    ----------
    X : (n, d) float64
    k : int, 1 <= k <= n - 2
    metric : {"cosine", "euclidean"}

    Returns
    -------
    (n·k,) int64, sorted ascending.
    """
    if metric not in NEIGHBOR_METRICS:
        raise InputError(f"metric={metric!r}; expected one of {NEIGHBOR_METRICS}")
    n = X.shape[0]
    k = _check_k(k, n)
    # With all rows identical every neighbour is a tie and the sets are arbitrary.
    center_or_refuse(X, label, "mutual_knn")
    sq = np.einsum("ij,ij->i", X, X)
    if metric == "cosine":
        zero = sq <= 0.0
        if zero.any():
            raise InputError(
                f"{label} has {int(zero.sum())} all-zero row(s) (e.g. row "
                f"{int(np.flatnonzero(zero)[0])}); cosine neighbours are undefined for them. "
                "Use metric='euclidean'"
            )
        X = X / np.sqrt(sq)[:, None]
    else:
        X = X - X.mean(axis=0, keepdims=True)  # translation invariant; less cancellation
        sq = np.einsum("ij,ij->i", X, X)
    keys = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, ROW_BLOCK):
        rows = np.arange(start, min(start + ROW_BLOCK, n))
        S = X[rows] @ X.T
        if metric == "euclidean":
            S = 2.0 * S - sq[None, :]  # -||x_i - x_j||² + ||x_i||², same order per row
        S[np.arange(len(rows)), rows] = -np.inf
        # Stable sort of -S: ties go to the lower index.
        nn = np.argsort(-S, axis=1, kind="stable")[:, :k]
        keys[rows] = rows[:, None] * n + nn
    out = keys.reshape(-1)
    out.sort()
    return out


def _overlap(a: np.ndarray, b: np.ndarray, n: int, k: int) -> float:
    return float(np.intersect1d(a, b, assume_unique=True).size) / (n * k)


def mutual_knn(X: np.ndarray, Y: np.ndarray, *, k: int = 10, metric: str = "cosine") -> float:
    """Mutual k-NN alignment of X (n, d1) and Y (n, d2); in [0, 1], n >= k + 2."""
    n = X.shape[0]
    k = _check_k(k, n)
    return _overlap(neighbor_keys(X, k, metric, "X"), neighbor_keys(Y, k, metric, "Y"), n, k)


def mutual_knn_matrix(
    layers_a: Layers, layers_b: Layers, *, k: int = 10, metric: str = "cosine"
) -> np.ndarray:
    """(La, Lb) mutual k-NN alignment; neighbour sets computed once per layer."""
    n = layers_a.n
    k = _check_k(k, n)

    def keys(layers: Layers) -> list[np.ndarray]:
        return [neighbor_keys(layers[i], k, metric, layers.name(i)) for i in range(len(layers))]

    ka = keys(layers_a)
    kb = ka if layers_b is layers_a else keys(layers_b)
    return np.array([[_overlap(a, b, n, k) for b in kb] for a in ka])
