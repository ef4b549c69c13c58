"""A plain CKA written from the textbook formulas, the reference for the fast paths' tests."""

from __future__ import annotations

import numpy as np


def plain_cka(X: np.ndarray, Y: np.ndarray, *, debiased: bool) -> float:
    """Reference CKA from the textbook formulas, written out with explicit centring matrices."""
    n = X.shape[0]
    K, L = X @ X.T, Y @ Y.T
    if not debiased:
        H = np.eye(n) - np.ones((n, n)) / n

        def hsic(A, B):
            return np.trace(A @ H @ B @ H)
    else:

        def hsic(A, B):  # Song et al. (2012), eq. (5)
            A, B = A - np.diag(np.diag(A)), B - np.diag(np.diag(B))
            one = np.ones(n)
            return (
                np.trace(A @ B)
                + (one @ A @ one) * (one @ B @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (one @ A @ B @ one)
            ) / (n * (n - 3))

    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))
