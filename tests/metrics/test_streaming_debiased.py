"""StreamingDebiasedCKA == one-shot cka_debiased; StreamingCosine == one-shot cosine."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from _reference_cka import plain_cka
from repdrift import metrics
from repdrift.errors import InputError


def _data(seed: int, n: int, d1: int = 14, d2: int = 9, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d1)) * rng.uniform(0.5, 3.0, d1) + offset
    Y = X[:, :d2] ** 2 / (1.0 + abs(offset)) + rng.standard_normal((n, d2)) + offset
    return X, Y


def _cuts(rng: np.random.Generator, n: int, pieces: int) -> list[int]:
    return [0, *sorted(rng.choice(np.arange(1, n), size=pieces - 1, replace=False)), n]


@pytest.mark.parametrize("seed", range(4))
def test_streaming_debiased_equals_one_shot_for_random_chunkings(seed: int) -> None:
    X, Y = _data(seed, 400)
    ref = metrics.compute("cka_debiased", X, Y)
    assert ref == pytest.approx(plain_cka(X, Y, debiased=True), abs=1e-12)
    rng = np.random.default_rng(100 + seed)
    acc = metrics.StreamingDebiasedCKA()
    for a, b in itertools.pairwise(_cuts(rng, 400, int(rng.integers(2, 40)))):
        acc.update(X[a:b], Y[a:b])
    assert acc.n == 400 and acc.dims == (14, 9)
    assert acc.compute() == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_chunks_of_one_row(offset: float) -> None:
    X, Y = _data(7, 120, offset=offset)
    acc = metrics.StreamingDebiasedCKA()
    for i in range(120):
        acc.update(X[i : i + 1], Y[i : i + 1])
    assert acc.compute() == pytest.approx(metrics.compute("cka_debiased", X, Y), abs=1e-10)


def test_merge_tree_of_partial_accumulators_equals_one_shot() -> None:
    X, Y = _data(8, 500, offset=3.0)
    ref = metrics.compute("cka_debiased", X, Y)
    rng = np.random.default_rng(9)
    shards = []
    for a, b in itertools.pairwise(_cuts(rng, 500, 11)):
        acc = metrics.StreamingDebiasedCKA()
        for c in range(a, b, 7):  # each shard in chunks of its own
            acc.update(X[c : min(c + 7, b)], Y[c : min(c + 7, b)])
        shards.append(acc)
    shards.append(metrics.StreamingDebiasedCKA())  # an empty one merges as a no-op
    while len(shards) > 1:
        i, j = sorted(rng.choice(len(shards), size=2, replace=False))
        merged = shards[i].merge(shards[j])
        shards = [s for k, s in enumerate(shards) if k not in (i, j)] + [merged]
    assert shards[0].n == 500
    assert shards[0].compute() == pytest.approx(ref, abs=1e-10)
    assert pickle.loads(pickle.dumps(shards[0])).compute() == shards[0].compute()


def test_statistics_equal_their_definitions_after_merges() -> None:
    """The running statistics are the centred sums the module docstring defines."""
    X, Y = _data(10, 90, offset=2.0)
    acc = metrics.StreamingDebiasedCKA()
    for a in range(0, 90, 13):
        acc.update(X[a : a + 13], Y[a : a + 13])
    U, V = X - X.mean(0), Y - Y.mean(0)
    a, b = (U * U).sum(1), (V * V).sum(1)
    want = {
        "sxx": U.T @ U, "syy": V.T @ V, "sxy": U.T @ V,
        "ax": a @ U, "bx": b @ U, "ay": b @ V, "by": a @ V,
        "fxx": a @ a, "fyy": b @ b, "fxy": a @ b,
    }  # fmt: skip
    for key, value in want.items():
        np.testing.assert_allclose(getattr(acc, key), value, rtol=1e-11, atol=1e-9, err_msg=key)


def test_large_mean_many_chunks_and_torch_input() -> None:
    # Raw sums would lose most digits to the 1e4 offset; re-centring on running means does not.
    X, Y = _data(11, 2000, d1=8, d2=6, offset=1e4)
    ref = metrics.compute("cka_debiased", X, Y)
    acc = metrics.StreamingDebiasedCKA()
    for a in range(0, 2000, 37):
        acc.update(torch.from_numpy(X[a : a + 37]), torch.from_numpy(Y[a : a + 37]))
    assert acc.compute() == pytest.approx(ref, abs=1e-10)


def test_debiased_near_zero_for_independent_wide_data() -> None:
    rng = np.random.default_rng(12)
    X, Y = rng.standard_normal((200, 150)), rng.standard_normal((200, 150))
    acc = metrics.StreamingDebiasedCKA().update(X[:77], Y[:77]).update(X[77:], Y[77:])
    assert abs(acc.compute()) < 0.05 < metrics.compute("cka_linear", X, Y)
    assert acc.compute() == pytest.approx(metrics.compute("cka_debiased", X, Y), abs=1e-10)


def test_streaming_debiased_refuses_bad_input() -> None:
    X, Y = _data(13, 10)
    acc = metrics.StreamingDebiasedCKA().update(X[:3], Y[:3])
    with pytest.raises(InputError, match="at least n = 4"):
        acc.compute()
    with pytest.raises(InputError, match="widths"):
        acc.update(X[3:, :5], Y[3:])
    with pytest.raises(InputError, match="paired"):
        acc.update(X[3:], Y[4:])
    with pytest.raises(InputError, match="merge a StreamingDebiasedCKA"):
        acc.merge(metrics.StreamingLinearCKA())
    other = metrics.StreamingDebiasedCKA().update(X[:, :4], Y)
    with pytest.raises(InputError, match="cannot merge"):
        acc.merge(other)
    const = metrics.StreamingDebiasedCKA().update(np.ones((20, 3)) * 5, Y[:10].repeat(2, 0)[:20])
    with pytest.raises(InputError, match="X has zero variance"):
        const.compute()
    with pytest.raises(InputError, match="NaN"):
        metrics.StreamingDebiasedCKA().update(np.full((4, 2), np.nan), Y[:4])


def test_streaming_cosine_equals_one_shot() -> None:
    X, Y = _data(14, 300, d1=9, d2=9, offset=0.5)
    ref = metrics.compute("cosine", X, Y)
    rng = np.random.default_rng(15)
    parts = [
        metrics.StreamingCosine().update(X[a:b], Y[a:b])
        for a, b in itertools.pairwise(_cuts(rng, 300, 12))
    ]
    acc = metrics.StreamingCosine()
    for p in parts:
        acc.merge(p)
    assert acc.n == 300
    assert acc.compute() == pytest.approx(ref, abs=1e-12)
    per_row = (X * Y).sum(1) / np.linalg.norm(X, axis=1) / np.linalg.norm(Y, axis=1)
    assert acc.std == pytest.approx(per_row.std(), abs=1e-10)
    one = metrics.StreamingCosine()
    for i in range(300):
        one.update(X[i : i + 1], Y[i : i + 1])
    assert one.compute() == pytest.approx(ref, abs=1e-12)


def test_streaming_cosine_refuses_bad_input() -> None:
    X, Y = _data(16, 10, d1=5, d2=4)
    with pytest.raises(InputError, match="equal widths"):
        metrics.StreamingCosine().update(X, Y)
    with pytest.raises(InputError, match="at least n = 1"):
        metrics.StreamingCosine().compute()
    zero = X.copy()
    zero[2] = 0.0
    with pytest.raises(InputError, match="all-zero row"):
        metrics.StreamingCosine().update(zero, X)
    acc = metrics.StreamingCosine().update(X, X)
    with pytest.raises(InputError, match="equal widths"):
        acc.update(Y, Y)
    with pytest.raises(InputError, match="equal widths"):
        acc.merge(metrics.StreamingCosine().update(Y, Y))
