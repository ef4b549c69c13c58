"""Orthogonal Procrustes similarity.

Each side is column-centred and scaled to unit Frobenius norm; the similarity is the
nuclear norm (sum of singular values) of ``Xᵀ Y``, which equals ``max_Q tr(Xᵀ Y Q)`` over
orthogonal Q (zero-padding the narrower side when d1 != d2). It lies in [0, 1] and is
invariant to translation, isotropic scaling and orthogonal transforms of either side.

Conventions for distances, all functions of the similarity s returned here:

- squared Procrustes distance ``min_Q ||X - Y Q||²_F = 2 - 2 s`` (Ding et al. 2021 use this
  "Procrustes distance"; Williams et al. 2021's Euclidean shape metric is its square root
  ``sqrt(2 - 2 s)``);
- Williams et al. (2021)'s angular shape metric is ``arccos(s)``;
- repdrift's drift is ``1 - s``, half the squared Procrustes distance.

When d > n, ``Xᵀ Y`` (d1 x d2) is never formed: with ``Xᵀ = Q_x R_x`` (thin QR),
``sv(Xᵀ Y) = sv(R_x R_yᵀ)``, an n x n problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repdrift.metrics._inputs import center_or_refuse


def procrustes_factor(X: np.ndarray, label: str = "X") -> np.ndarray:
    """A matrix F (n, r), r = min(n, d), with ``F Fᵀ = Xn Xnᵀ`` for the normalised ``Xn``.

    ``Xn`` is X centred and scaled to unit Frobenius norm; ``sv(Xnᵀ Yn) = sv(F_xᵀ F_y)``.
    """
    Xc = center_or_refuse(X, label, "procrustes")
    Xc /= np.linalg.norm(Xc)
    n, d = Xc.shape
    if d <= n:
        return Xc
    R = np.linalg.qr(Xc.T, mode="r")  # (n, n): Xcᵀ = Q R, so Xc = Rᵀ Qᵀ
    return R.T


def _nuclear(Fx: np.ndarray, Fy: np.ndarray) -> float:
    s = np.linalg.svd(Fx.T @ Fy, compute_uv=False)
    return float(min(s.sum(), 1.0))  # ≤ 1 by Cauchy-Schwarz; clip rounding overshoot


def procrustes(X: np.ndarray, Y: np.ndarray) -> float:
    """Orthogonal Procrustes similarity of X (n, d1) and Y (n, d2); in [0, 1]."""
    return _nuclear(procrustes_factor(X, "X"), procrustes_factor(Y, "Y"))


def procrustes_matrix(layers_a: Sequence[np.ndarray], layers_b: Sequence[np.ndarray]) -> np.ndarray:
    """(La, Lb) Procrustes similarity; normalisation and QR once per layer.

    A self-comparison (``layers_b is layers_a``) computes the upper triangle and mirrors it;
    its diagonal is ``||F||²_F`` (the nuclear norm of the PSD ``Fᵀ F`` is its trace).
    """
    fa = [procrustes_factor(X, f"layers_a[{i}]") for i, X in enumerate(layers_a)]
    if layers_b is not layers_a:
        fb = [procrustes_factor(X, f"layers_b[{j}]") for j, X in enumerate(layers_b)]
        return np.array([[_nuclear(a, b) for b in fb] for a in fa])
    out = np.empty((len(fa), len(fa)))
    for i, a in enumerate(fa):
        out[i, i] = min(float(np.sum(a * a)), 1.0)
        for j in range(i + 1, len(fa)):
            out[i, j] = out[j, i] = _nuclear(a, fa[j])
    return out
