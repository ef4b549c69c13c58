"""Canonical correlation family: ``cca``, ``svcca`` (Raghu et al. 2017), ``pwcca`` (Morcos et al. 2018).

CCA is computed the numerically sound way (Björck & Golub 1973): centre each side, take an
orthonormal basis ``Q`` of its column space from a thin SVD (directions with singular value
below ``max(n, d)·eps·s_max`` are dropped, so rank-deficient inputs are fine), and the
canonical correlations are the singular values of ``Q_xᵀ Q_y``, i.e. the cosines of the
principal angles between the two column spaces. No covariance matrix is ever inverted.

Dimensionality rules (:data:`DIMENSIONALITY_RULES`, also shown in the report): ``cca`` and
``pwcca`` keep every numerically non-zero direction; ``svcca`` keeps, per side, the fewest
leading singular directions explaining ``keep_variance`` (0.99) of the variance. Even below the
forced-ones regime, canonical correlations of r_x and r_y kept directions among n samples are
inflated by chance once r_x + r_y is a sizeable fraction of n (independent data give large
leading correlations), so SVCCA/PWCCA then report far less drift than CKA; a warning is logged
once per setting when r_x + r_y > (n − 1) / 2 (:func:`warn_if_close_to_n`).

``cca`` is the mean canonical correlation over ``min(r_x, r_y)`` directions. It is invariant to
invertible linear maps of either side (it only sees column spaces), hence also to
orthogonal maps, scaling and translation.

Behaviour when n <= d (or generally r_x + r_y > n - 1): centred data live in an
(n - 1)-dimensional space, so the two column spaces must share at least
``r_x + r_y - (n - 1)`` dimensions and that many canonical correlations equal 1 whatever the
data. With full-rank inputs and d >= n - 1, CCA similarity is 1 for *any* pair. A warning is
logged in that regime; prefer ``svcca`` (which first reduces dimension) or the CKA family.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._inputs import center_or_refuse

log = logging.getLogger(__name__)

WEIGHT_SIDES = ("x", "y", "smaller")

#: How many directions each CCA-family metric keeps, in a sentence for methods sections.
DIMENSIONALITY_RULES = {
    "cca": "keeps every numerically non-zero direction of each side",
    "svcca": "keeps, per side, the fewest leading singular directions explaining "
    "keep_variance (default 0.99) of the variance, then averages the canonical correlations",
    "pwcca": "keeps every numerically non-zero direction; weights canonical correlations by "
    "the projection of the reference side's units",
}


@dataclass(frozen=True)
class Subspace:
    """Per-layer CCA state.

    Attributes
    ----------
    basis : (n, r) ndarray
        Orthonormal basis of the centred column space (possibly SVD-truncated).
    neurons : (r, d) ndarray
        ``basisᵀ Xc``: each original (centred) unit expressed in the basis; used by PWCCA.
    n_features : int
        d, the number of original units.
    """

    basis: np.ndarray
    neurons: np.ndarray
    n_features: int


def subspace(
    X: np.ndarray, label: str, metric: str, keep_variance: float | None = None
) -> Subspace:
    """Orthonormal basis of the centred columns of ``X`` (n, d), optionally SVD-truncated.

    Parameters
    ----------
    X : (n, d) float64
    label, metric
        For error messages.
    keep_variance
        None keeps every numerically non-zero direction; a value in (0, 1] keeps the fewest
        leading singular directions whose variance reaches that fraction (SVCCA).
    """
    Xc = center_or_refuse(X, label, metric)
    U, s, Vt = _svd(Xc)
    tol = max(Xc.shape) * np.finfo(np.float64).eps * s[0]
    r = int(np.count_nonzero(s > tol))
    if keep_variance is not None:
        var = s[:r] ** 2
        frac = np.cumsum(var) / var.sum()
        # The small slack keeps a cumulative sum that rounds just below the target from
        # pulling in one more (noise) direction.
        r = int(np.searchsorted(frac, keep_variance - 1e-12) + 1)
        r = min(r, len(var))
    return Subspace(basis=U[:, :r], neurons=s[:r, None] * Vt[:r], n_features=X.shape[1])


def canonical_correlations(sx: Subspace, sy: Subspace, *, warn: bool = True) -> np.ndarray:
    """Canonical correlations, descending, length ``min(r_x, r_y)``, clipped into [0, 1]."""
    if warn:
        warn_if_degenerate(sx.basis.shape[0], sx.basis.shape[1], sy.basis.shape[1])
    rho = np.linalg.svd(sx.basis.T @ sy.basis, compute_uv=False)
    return np.clip(rho[: min(sx.basis.shape[1], sy.basis.shape[1])], 0.0, 1.0)


def warn_if_degenerate(n: int, rx: int, ry: int) -> None:
    """Log when the ranks force canonical correlations of 1 (see the module notes)."""
    if rx + ry > n - 1:
        log.warning(
            "CCA with n=%d samples and ranks %d, %d: at least %d canonical correlations are 1 "
            "by construction (n too small for the dimension)",
            n,
            rx,
            ry,
            rx + ry - (n - 1),
        )


@functools.lru_cache(maxsize=256)
def warn_if_close_to_n(metric: str, n: int, rx: int, ry: int) -> None:
    """Log once per (metric, n, r_x, r_y) when the kept dimensions are a large share of n."""
    if rx + ry > (n - 1) / 2:
        log.warning(
            "%s keeps %d and %d directions with n=%d samples (%s): canonical correlations are "
            "inflated by chance when the kept dimensions approach n, so similarity is biased "
            "upwards (drift downwards); use more samples, a smaller keep_variance, or the CKA "
            "family",
            metric, rx, ry, n, DIMENSIONALITY_RULES.get(metric, ""),
        )  # fmt: skip


def _svd(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        return np.linalg.svd(A, full_matrices=False)  # LAPACK gesdd
    except np.linalg.LinAlgError:  # gesdd occasionally fails to converge; gesvd is robust
        import scipy.linalg  # lazy: scipy.linalg costs ~0.5 s to import

        return scipy.linalg.svd(A, full_matrices=False, lapack_driver="gesvd")


def _check_keep_variance(keep_variance: Any) -> float:
    if isinstance(keep_variance, bool) or not isinstance(keep_variance, (int, float, np.floating)):
        raise InputError(f"keep_variance={keep_variance!r}; expected a fraction in (0, 1]")
    if not 0.0 < float(keep_variance) <= 1.0:
        raise InputError(f"keep_variance={keep_variance!r}; expected a fraction in (0, 1]")
    return float(keep_variance)


def _check_side(weights_from: Any) -> str:
    if weights_from not in WEIGHT_SIDES:
        raise InputError(f"weights_from={weights_from!r}; expected one of {WEIGHT_SIDES}")
    return weights_from


# ---------------------------------------------------------------- pair functions


def _pwcca_pair(sx: Subspace, sy: Subspace, weights_from: str, *, warn: bool = True) -> float:
    if warn:
        warn_if_degenerate(sx.basis.shape[0], sx.basis.shape[1], sy.basis.shape[1])
    A, rho, Bt = _svd(sx.basis.T @ sy.basis)
    k = min(sx.basis.shape[1], sy.basis.shape[1])
    rho = np.clip(rho[:k], 0.0, 1.0)
    side = weights_from
    if side == "smaller":
        side = "x" if sx.n_features <= sy.n_features else "y"
    # Canonical variates h_i = Q a_i are orthonormal; <h_i, x_j> = a_iᵀ (Qᵀ x_j).
    proj = A[:, :k].T @ sx.neurons if side == "x" else Bt[:k] @ sy.neurons
    alpha = np.abs(proj).sum(axis=1)
    return float(alpha @ rho / alpha.sum())


def cca(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean canonical correlation between X (n, d1) and Y (n, d2); in [0, 1]."""
    return float(canonical_correlations(subspace(X, "X", "cca"), subspace(Y, "Y", "cca")).mean())


def svcca(X: np.ndarray, Y: np.ndarray, *, keep_variance: float = 0.99) -> float:
    """SVCCA (Raghu et al. 2017): mean canonical correlation after SVD reduction.

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64
    keep_variance : float
        Each side keeps its fewest leading singular directions explaining this fraction of
        variance (0.99 as in Raghu et al.). 1.0 keeps the full rank, which equals ``cca``.

    Returns
    -------
    float in [0, 1].
    """
    kv = _check_keep_variance(keep_variance)
    sx, sy = subspace(X, "X", "svcca", kv), subspace(Y, "Y", "svcca", kv)
    warn_if_close_to_n("svcca", X.shape[0], sx.basis.shape[1], sy.basis.shape[1])
    return float(canonical_correlations(sx, sy).mean())


def pwcca(X: np.ndarray, Y: np.ndarray, *, weights_from: str = "x") -> float:
    """Projection-weighted CCA (Morcos et al. 2018).

    ``sum_i alpha_i rho_i / sum_i alpha_i`` with ``alpha_i = sum_j |<h_i, x_j>|``: ``h_i`` the unit-norm i-th
    canonical variate of the weighting side, ``x_j`` its j-th centred unit, ``rho_i`` the
    i-th canonical correlation. Not symmetric.

    Parameters
    ----------
    X, Y : (n, d1), (n, d2) float64
    weights_from : {"x", "y", "smaller"}
        Which side's units define the weights. "x" (default) weights by the first argument,
        the reference representation in a drift comparison; "smaller" is the rule of Morcos
        et al.'s reference code (the side with fewer units, X on ties).

    Returns
    -------
    float in [0, 1]. Invariant to invertible linear maps of the non-weighting side, to
    translation, isotropic scaling and permutation/sign flips of units; not to general
    rotations of the weighting side.

    Notes
    -----
    The reference code adds neuron means back onto the canonical variates before
    orthonormalising them; that shift is orthogonal-complement noise for centred data, so we
    use the centred, already orthonormal variates.
    """
    side = _check_side(weights_from)
    sx, sy = subspace(X, "X", "pwcca"), subspace(Y, "Y", "pwcca")
    warn_if_close_to_n("pwcca", X.shape[0], sx.basis.shape[1], sy.basis.shape[1])
    return _pwcca_pair(sx, sy, side)


# ---------------------------------------------------------------- matrices


def _matrix(
    layers_a: Sequence[np.ndarray],
    layers_b: Sequence[np.ndarray],
    metric: str,
    keep_variance: float | None,
    pair: Any,
) -> np.ndarray:
    sa = [subspace(X, f"layers_a[{i}]", metric, keep_variance) for i, X in enumerate(layers_a)]
    same = layers_b is layers_a
    sb = (
        sa
        if same
        else [subspace(X, f"layers_b[{j}]", metric, keep_variance) for j, X in enumerate(layers_b)]
    )
    ra, rb = max(s.basis.shape[1] for s in sa), max(t.basis.shape[1] for t in sb)
    warn_if_degenerate(sa[0].basis.shape[0], ra, rb)  # once, not once per pair
    if metric in ("svcca", "pwcca"):
        warn_if_close_to_n(metric, sa[0].basis.shape[0], ra, rb)
    out = np.empty((len(sa), len(sb)))
    for i, s in enumerate(sa):
        for j, t in enumerate(sb):
            out[i, j] = pair(s, t)
    return out


def cca_matrix(layers_a: Sequence[np.ndarray], layers_b: Sequence[np.ndarray]) -> np.ndarray:
    """(La, Lb) mean canonical correlations; one SVD per layer, one small SVD per pair."""
    return _matrix(
        layers_a,
        layers_b,
        "cca",
        None,
        lambda s, t: float(canonical_correlations(s, t, warn=False).mean()),
    )


def svcca_matrix(
    layers_a: Sequence[np.ndarray], layers_b: Sequence[np.ndarray], *, keep_variance: float = 0.99
) -> np.ndarray:
    """(La, Lb) SVCCA; one SVD per layer, one small SVD per pair."""
    kv = _check_keep_variance(keep_variance)
    return _matrix(
        layers_a,
        layers_b,
        "svcca",
        kv,
        lambda s, t: float(canonical_correlations(s, t, warn=False).mean()),
    )


def pwcca_matrix(
    layers_a: Sequence[np.ndarray], layers_b: Sequence[np.ndarray], *, weights_from: str = "x"
) -> np.ndarray:
    """(La, Lb) PWCCA with weights from ``layers_a`` (``weights_from="x"``) by default."""
    side = _check_side(weights_from)
    return _matrix(
        layers_a, layers_b, "pwcca", None, lambda s, t: _pwcca_pair(s, t, side, warn=False)
    )
