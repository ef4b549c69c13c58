"""Representational similarity analysis: Spearman correlation between condensed RDMs.

The RDM of X (n, d) holds one dissimilarity per sample pair i < j (condensed, length
n(n-1)/2, scipy's ``pdist`` order). ``rdm="correlation"`` (default) uses ``1 - Pearson(x_i,
x_j)`` across features, ``rdm="euclidean"`` the Euclidean distance. The similarity is the
Spearman rank correlation of the two RDMs (average ranks for ties), in [-1, 1].

Ties matter: quantised activations give many pairs at exactly the same distance. Each
distance is computed pair by pair from the differences of the rows (scipy's ``pdist``), not
through a Gram matrix whose rounding noise would break such ties in arbitrary order, and
values within :data:`TIE_RTOL` (relative) of each other are ranked as ties.

Each layer's RDM is ranked and standardised once; Spearman is then the Pearson correlation
of ranks, i.e. an inner product, so :func:`rsa_matrix` is a single GEMM.
"""

from __future__ import annotations

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import Layers
from repdrift.metrics._pairwise import stacked_inner_products

RDM_KINDS = ("correlation", "euclidean")
#: Dissimilarities closer than this (relative to the largest) share an average rank.
TIE_RTOL = 1e-12


def rdm(X: np.ndarray, kind: str = "correlation", label: str = "X") -> np.ndarray:
    """Condensed representational dissimilarity matrix.

    Parameters
    ----------
    X : (n, d) float64
    kind : {"correlation", "euclidean"}
    label
        For error messages.

    Returns
    -------
    (n (n - 1) / 2,) float64, pairs (i, j) with i < j in row-major order.
    """
    if kind not in RDM_KINDS:
        raise InputError(f"rdm={kind!r}; expected one of {RDM_KINDS}")
    import scipy.spatial.distance  # lazy, like scipy.stats below

    if kind == "euclidean":
        return scipy.spatial.distance.pdist(X, "euclidean")
    Z = X - X.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    scale = np.sqrt(np.einsum("ij,ij->i", X, X))
    flat = norms <= 1e-12 * np.maximum(scale, np.finfo(np.float64).tiny)
    if flat.any():
        raise InputError(
            f"{label} has {int(flat.sum())} row(s) with identical values across features (e.g. "
            f"row {int(np.flatnonzero(flat)[0])}); the correlation distance is undefined for "
            "them. Use rdm='euclidean'"
        )
    return scipy.spatial.distance.pdist(X, "correlation")


def tied_ranks(values: np.ndarray, rtol: float = TIE_RTOL) -> np.ndarray:
    """Average ranks (1-based) with values within ``rtol`` × max |value| of their neighbour
    in sorted order counted as ties."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    sv = v[order]
    tol = rtol * float(np.max(np.abs(sv))) if sv.size else 0.0
    new = np.concatenate([[True], np.diff(sv) > tol])
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], sv.size)
    average = (starts + ends + 1) / 2.0  # mean of the 1-based positions start+1 … end
    ranks = np.empty_like(v)
    ranks[order] = average[group]
    return ranks


def _ranked_state(X: np.ndarray, label: str, kind: str) -> np.ndarray:
    """Ranks of the RDM, centred and scaled to unit norm: Spearman = dot product."""
    r = tied_ranks(rdm(X, kind, label))
    r -= r.mean()
    norm = np.sqrt(r @ r)
    if not norm > 0:
        raise InputError(
            f"every pairwise dissimilarity of {label} is equal; the Spearman correlation of "
            "its RDM is undefined"
        )
    return r / norm


def rsa(X: np.ndarray, Y: np.ndarray, *, rdm: str = "correlation") -> float:
    """Spearman correlation between the RDMs of X (n, d1) and Y (n, d2); in [-1, 1], n >= 3."""
    return float(_ranked_state(X, "X", rdm) @ _ranked_state(Y, "Y", rdm))


def rsa_matrix(layers_a: Layers, layers_b: Layers, *, rdm: str = "correlation") -> np.ndarray:
    """(La, Lb) RSA; each layer's RDM computed and ranked once, then one GEMM."""

    def state(layers: Layers, i: int, out: np.ndarray) -> None:
        out[:] = _ranked_state(layers[i], layers.name(i), rdm)

    n = layers_a.n
    cross, _, _ = stacked_inner_products(
        layers_a, layers_b, state, n * (n - 1) // 2, same=layers_b is layers_a
    )
    return cross
