"""Per-row cosine (metrics.cosine.row_cosines, the one home of the rule) against a plain loop,
and its mean against the registered ``cosine`` metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repdrift.errors import InputError
from repdrift.metrics.cosine import cosine, row_cosines


def _plain(X: np.ndarray, Y: np.ndarray) -> list[float]:
    out = []
    for x, y in zip(X.tolist(), Y.tolist(), strict=True):
        dot = sum(a * b for a, b in zip(x, y, strict=True))
        out.append(dot / (math.sqrt(sum(a * a for a in x)) * math.sqrt(sum(b * b for b in y))))
    return out


def test_row_cosines_equal_a_plain_loop_and_average_to_cosine() -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 7)), rng.normal(size=(40, 7))
    got = row_cosines(X, Y)
    assert got.shape == (40,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _plain(X, Y), rtol=0, atol=1e-12)
    assert cosine(X, Y) == pytest.approx(float(got.mean()), abs=1e-12)


def test_row_cosines_invariances() -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    scale = rng.uniform(0.1, 10, size=(20, 1))
    base = row_cosines(X, Y)
    np.testing.assert_allclose(row_cosines(X @ Q, Y @ Q), base, atol=1e-12)  # one rotation
    np.testing.assert_allclose(row_cosines(X * scale, Y), base, atol=1e-12)  # per-row scale
    np.testing.assert_allclose(row_cosines(X, X), 1.0, atol=1e-12)
    np.testing.assert_allclose(row_cosines(X, -X), -1.0, atol=1e-12)


def test_a_zero_row_is_nan_for_rows_and_refused_by_the_metric() -> None:
    X = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])
    got = row_cosines(X, Y)
    assert got[0] == 0.0 and math.isnan(got[1]) and got[2] == pytest.approx(1.0)
    with pytest.raises(InputError, match="all-zero row"):
        cosine(X, Y)
