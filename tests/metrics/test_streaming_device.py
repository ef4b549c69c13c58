"""The token-level accumulators' torch path (run on the CPU here) equals the numpy path."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from _reference_cka import plain_cka
from repdrift.common.devices import has_fast_float64
from repdrift.metrics.streaming import StreamingLinearCKA
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA
from repdrift.metrics.token_blocks import BlockStatistics


def _data(seed: int, n: int, d1: int = 12, d2: int = 8):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d1)) * rng.uniform(0.5, 3.0, d1) + 25.0  # a large mean
    Y = np.tanh(X[:, :d2] / 10) * 4 + rng.standard_normal((n, d2)) - 7.0
    return X.astype(np.float32), Y.astype(np.float32)  # stored as runs store them


def _fill(acc, X, Y, cuts):
    for a, b in itertools.pairwise(cuts):
        acc.update(X[a:b], Y[a:b])
    return acc


@pytest.mark.parametrize("cls", [StreamingLinearCKA, StreamingDebiasedCKA])
def test_torch_state_on_a_device_equals_numpy(cls):
    X, Y = _data(0, 300)
    cuts = [0, 1, 40, 41, 170, 300]
    numpy_acc = _fill(cls(), X, Y, cuts)
    torch_acc = _fill(cls(device="cpu"), torch.from_numpy(X), torch.from_numpy(Y), cuts)
    assert isinstance(torch_acc.sxx, torch.Tensor) and torch_acc.sxx.dtype == torch.float64
    assert isinstance(numpy_acc.sxx, np.ndarray)
    assert torch_acc.compute() == pytest.approx(numpy_acc.compute(), abs=1e-8)
    assert torch_acc.linear_cka() == pytest.approx(numpy_acc.linear_cka(), abs=1e-8)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    debiased = cls is StreamingDebiasedCKA
    assert torch_acc.compute() == pytest.approx(plain_cka(X64, Y64, debiased=debiased), abs=1e-8)
    if debiased:
        for got, want in zip(torch_acc.numerators(), numpy_acc.numerators(), strict=True):
            assert got == pytest.approx(want, rel=1e-10)
    again = pickle.loads(pickle.dumps(torch_acc))
    assert again.compute() == pytest.approx(torch_acc.compute(), abs=1e-15)


def test_merging_across_numpy_and_torch_moves_the_state():
    X, Y = _data(1, 200)
    whole = StreamingDebiasedCKA().update(X, Y).compute()
    on_numpy = StreamingDebiasedCKA().update(X[:90], Y[:90])
    on_torch = StreamingDebiasedCKA(device="cpu").update(X[90:], Y[90:])
    assert on_numpy.merge(on_torch).compute() == pytest.approx(whole, abs=1e-8)
    assert isinstance(on_numpy.sxx, np.ndarray)
    empty = StreamingDebiasedCKA(device="cpu").merge(StreamingDebiasedCKA().update(X, Y))
    assert isinstance(empty.sxy, torch.Tensor) and empty.compute() == pytest.approx(whole, abs=1e-8)


def test_block_statistics_from_torch_blocks_equal_numpy():
    X, Y = _data(2, 400)
    cuts = np.sort(np.random.default_rng(2).choice(np.arange(5, 395), 11, replace=False))
    bounds = [0, *cuts, 400]
    np_blocks = [StreamingDebiasedCKA().update(X[a:b], Y[a:b]) for a, b in itertools.pairwise(bounds)]
    t_blocks = [
        StreamingDebiasedCKA(device="cpu").update(X[a:b], Y[a:b])
        for a, b in itertools.pairwise(bounds)
    ]
    W = (np.random.default_rng(3).random((20, len(np_blocks))) < 0.5).astype(float)
    W[0] = 1
    deb_np, lin_np = BlockStatistics(np_blocks).cka(W)
    deb_t, lin_t = BlockStatistics(t_blocks).cka(W)
    np.testing.assert_allclose(deb_t, deb_np, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lin_t, lin_np, rtol=0, atol=1e-8)
    assert deb_t[0] == pytest.approx(StreamingDebiasedCKA().update(X, Y).compute(), abs=1e-8)


def test_float32_products_with_float64_accumulation_stay_close():
    """What a device without fast float64 does (forced here on the CPU): each chunk's
    products in float32 about the chunk's means, summed in float64."""
    assert has_fast_float64(None) and has_fast_float64("cpu")
    X, Y = _data(4, 2000)
    exact = StreamingDebiasedCKA().update(X, Y).compute()
    acc = StreamingDebiasedCKA(device="cpu")
    acc.fast64 = False
    for a, b in itertools.pairwise(range(0, 2001, 250)):
        acc.update(X[a:b], Y[a:b])
    assert acc.sxx.dtype == torch.float64
    assert acc.compute() == pytest.approx(exact, abs=1e-5)
