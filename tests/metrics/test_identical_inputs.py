"""Identical inputs give similarity exactly 1.0 (drift exactly 0) for every registered metric.

Without the registry's rule (repdrift.metrics._identical), Procrustes, RSA and the CCA family
give 1 - a few ulp for some shapes (e.g. procrustes 0.9999999999999998 at n = d = 12).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repdrift import metrics
from repdrift.errors import InputError
from repdrift.metrics._identical import ROUNDING_SLACK, same_values, snapped

# n > d, n < d, n == d, and a thin one; CCA-family warnings for n <= d are expected.
SHAPES = [(50, 10), (20, 40), (12, 12), (100, 3)]
PARAMS = {"cka_minibatch": {"batch_size": 8}, "mutual_knn": {"k": 3}}


def _x(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"n{s[0]}d{s[1]}")
@pytest.mark.parametrize("name", metrics.names())
def test_compute_on_identical_inputs_is_exactly_one(name: str, shape: tuple[int, int]) -> None:
    X = _x(*shape)
    p = PARAMS.get(name, {})
    assert metrics.get(name).bounds[1] == 1.0
    assert metrics.compute(name, X, X, **p) == 1.0  # the same object
    assert metrics.compute(name, X, X.copy(), **p) == 1.0  # a bitwise copy
    assert 1.0 - metrics.compute(name, X, X.copy(), **p) == 0.0  # drift exactly 0
    # float32 storage: the float64 values the metric sees are identical too
    x32 = X.astype(np.float32)
    assert metrics.compute(name, x32, x32.copy(), **p) == 1.0


@pytest.mark.parametrize("name", metrics.names())
def test_torch_and_device_paths_on_identical_inputs(name: str) -> None:
    X = _x(20, 40, seed=1)
    p = PARAMS.get(name, {})
    t = torch.from_numpy(X)
    assert metrics.compute(name, t, t.clone(), **p) == 1.0
    assert metrics.compute(name, t, t.clone(), device="cpu", **p) == 1.0
    M = metrics.matrix(name, [t, t**2], [t.clone()], device="cpu", **p)
    assert M[0, 0] == 1.0


@pytest.mark.parametrize("name", metrics.names())
def test_matrix_diagonal_and_copies_are_exactly_one(name: str) -> None:
    p = PARAMS.get(name, {})
    layers = [_x(40, 8, seed=s) for s in range(3)]  # n > d: other pairs stay below 1
    S = metrics.matrix(name, layers, layers, **p)  # self-comparison path
    assert (np.diag(S) == 1.0).all()
    M = metrics.matrix(name, layers, [layers[2].copy(), layers[0].copy()], **p)
    assert M[2, 0] == 1.0 and M[0, 1] == 1.0
    # pairs that are not identical keep their computed value
    assert M[1, 0] == pytest.approx(metrics.compute(name, layers[1], layers[2], **p), abs=1e-12)
    assert M[1, 0] < 1.0


@pytest.mark.parametrize("name", metrics.names())
def test_resample_values_and_subsets_on_identical_inputs(name: str) -> None:
    p = PARAMS.get(name, {})
    X = _x(24, 30, seed=2)
    other = _x(24, 30, seed=3)
    rng = np.random.default_rng(0)
    idx = np.stack([rng.permutation(24)[:12] for _ in range(4)])
    perms = np.stack([rng.permutation(24) for _ in range(3)])
    reps = metrics.resample(name, X, [X.copy(), other], idx=idx, perms=perms, **p)
    assert reps.values[0] == 1.0
    assert (reps.subsets[0] == 1.0).all()
    assert reps.values[1] == pytest.approx(metrics.compute(name, X, other, **p), abs=1e-12)


def test_resample_many_joint_linear_ckas_on_identical_inputs() -> None:
    X = _x(30, 50, seed=4)
    idx = np.stack([np.arange(0, 30, 2), np.arange(1, 30, 2)])
    out = metrics.resample_many(
        list(metrics.names()), X, [X.copy()], idx=idx, perms=None,
        resampled=["cka_linear", "cka_debiased", "cosine"], params={"mutual_knn": {"k": 3}},
    )  # fmt: skip
    for name, reps in out.items():
        assert reps.values[0] == 1.0, name
        if reps.subsets is not None:
            assert (reps.subsets[0] == 1.0).all(), name


@pytest.mark.parametrize("name", ["cka_linear", "procrustes", "cca", "rsa"])
def test_degenerate_identical_input_is_still_refused(name: str) -> None:
    X = np.ones((10, 4))  # zero variance: undefined, not "identical hence 1"
    with pytest.raises(InputError, match=r"zero variance|identical values"):
        metrics.compute(name, X, X.copy())


def test_only_rounding_is_snapped() -> None:
    assert snapped(1 - 2.2e-16, 1.0) == 1.0
    assert snapped(1 + 4.4e-16, 1.0) == 1.0
    assert snapped(1 - 10 * ROUNDING_SLACK, 1.0) == 1 - 10 * ROUNDING_SLACK
    assert np.isnan(snapped(float("nan"), 1.0))


def test_same_values() -> None:
    X = _x(5, 3)
    Y = X.copy()
    assert same_values(X, Y) and same_values(X, X)
    Y[2, 1] = np.nextafter(Y[2, 1], np.inf)  # one ulp in a middle row
    assert not same_values(X, Y)
    assert not same_values(X, X[:, :2])
    assert same_values(torch.from_numpy(X), X.copy())
