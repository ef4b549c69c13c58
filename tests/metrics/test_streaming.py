"""Streaming accumulators: StreamingLinearCKA == one-shot cka_linear; MinibatchCKA == cka_minibatch."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest
import torch

from repdrift import metrics
from repdrift.errors import InputError


def _data(seed: int, n: int, d1: int = 16, d2: int = 12, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d1)) + offset
    Y = X[:, :d2] ** 2 + rng.standard_normal((n, d2)) + offset
    return X, Y


def _random_cuts(rng: np.random.Generator, n: int, pieces: int) -> list[int]:
    return [0, *sorted(rng.choice(np.arange(1, n), size=pieces - 1, replace=False)), n]


@pytest.mark.parametrize("seed", range(4))
def test_streaming_equals_one_shot_for_random_chunkings(seed: int) -> None:
    X, Y = _data(seed, 500)
    ref = metrics.compute("cka_linear", X, Y)
    rng = np.random.default_rng(100 + seed)
    cuts = _random_cuts(rng, 500, int(rng.integers(2, 30)))
    acc = metrics.StreamingLinearCKA()
    for a, b in itertools.pairwise(cuts):
        acc.update(X[a:b], Y[a:b])
    assert acc.n == 500
    assert acc.compute() == pytest.approx(ref, abs=1e-12)


def test_streaming_merge_tree_equals_one_shot() -> None:
    X, Y = _data(5, 600)
    ref = metrics.compute("cka_linear", X, Y)
    rng = np.random.default_rng(6)
    cuts = _random_cuts(rng, 600, 9)
    shards = [
        metrics.StreamingLinearCKA().update(X[a:b], Y[a:b]) for a, b in itertools.pairwise(cuts)
    ]
    # merge in a random tree order, including an empty accumulator
    shards.append(metrics.StreamingLinearCKA())
    while len(shards) > 1:
        i, j = sorted(rng.choice(len(shards), size=2, replace=False))
        merged = shards[i].merge(shards[j])
        shards = [s for k, s in enumerate(shards) if k not in (i, j)] + [merged]
    assert shards[0].compute() == pytest.approx(ref, abs=1e-12)
    # accumulators pickle (for process pools / ray)
    assert pickle.loads(pickle.dumps(shards[0])).compute() == shards[0].compute()


def test_streaming_stays_accurate_with_a_large_mean_and_many_chunks() -> None:
    # Raw (uncentred) sums would lose ~8 digits to the 1e4 offset; centred merging does not.
    X, Y = _data(7, 20_000, 8, 6, offset=1e4)
    ref = metrics.compute("cka_linear", X, Y)
    acc = metrics.StreamingLinearCKA()
    for start in range(0, 20_000, 97):
        acc.update(X[start : start + 97], Y[start : start + 97])
    assert acc.compute() == pytest.approx(ref, abs=1e-11)


def test_streaming_accepts_torch_and_float32() -> None:
    X, Y = _data(8, 300)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    ref = metrics.compute("cka_linear", X32, Y32)
    acc = metrics.StreamingLinearCKA()
    acc.update(torch.from_numpy(X32[:100]), torch.from_numpy(Y32[:100]))
    acc.update(X32[100:], Y32[100:])
    assert acc.compute() == pytest.approx(ref, abs=1e-12)


def test_streaming_errors() -> None:
    X, Y = _data(9, 50)
    acc = metrics.StreamingLinearCKA()
    with pytest.raises(InputError, match="at least n = 2"):
        acc.compute()
    acc.update(X, Y)
    with pytest.raises(InputError, match=r"chunk widths \(d1, d2\) = \(16, 11\) differ"):
        acc.update(X, Y[:, :11])
    with pytest.raises(InputError, match="X_chunk has 50 rows and Y_chunk has 49"):
        acc.update(X, Y[:-1])
    bad = X.copy()
    bad[1, 1] = np.nan
    with pytest.raises(InputError, match=r"X_chunk .* 1 NaN"):
        acc.update(bad, Y)
    const = metrics.StreamingLinearCKA().update(np.full((10, 3), 2.5), Y[:10])
    with pytest.raises(InputError, match="X has zero variance"):
        const.compute()
    other = metrics.StreamingLinearCKA().update(X[:, :3], Y)
    with pytest.raises(InputError, match="cannot merge accumulators of widths"):
        acc.merge(other)


def test_minibatch_accumulator_equals_cka_minibatch() -> None:
    X, Y = _data(10, 195, 30, 25)
    acc = metrics.MinibatchCKA()
    for s in metrics.minibatch_slices(195, 32):
        acc.update(X[s], Y[s])
    assert acc.n == 195 and acc.n_batches == 6  # the 3-row remainder joins the 6th batch
    ref = metrics.compute("cka_minibatch", X, Y, batch_size=32)
    assert acc.compute() == pytest.approx(ref, abs=1e-12)
    # merge of two halves equals one accumulator over all batches
    a, b = metrics.MinibatchCKA(), metrics.MinibatchCKA()
    for i, s in enumerate(metrics.minibatch_slices(195, 32)):
        (a if i % 2 else b).update(X[s], Y[s])
    assert a.merge(b).compute() == pytest.approx(ref, abs=1e-12)


def test_minibatch_is_not_one_shot_but_unbiased() -> None:
    X, Y = _data(11, 256, 20, 20)
    mb = metrics.compute("cka_minibatch", X, Y, batch_size=64)
    assert mb != pytest.approx(metrics.compute("cka_debiased", X, Y), abs=1e-6)
    # one batch covering everything is exactly the debiased estimator
    assert metrics.compute("cka_minibatch", X, Y, batch_size=256) == pytest.approx(
        metrics.compute("cka_debiased", X, Y), abs=1e-12
    )
    # independent data, d >> batch: near zero, while biased CKA per batch would be inflated
    rng = np.random.default_rng(12)
    A, B = rng.standard_normal((400, 500)), rng.standard_normal((400, 500))
    assert abs(metrics.compute("cka_minibatch", A, B, batch_size=50)) < 0.05


def test_minibatch_errors() -> None:
    X, Y = _data(13, 20)
    with pytest.raises(InputError, match="before any update"):
        metrics.MinibatchCKA().compute()
    with pytest.raises(InputError, match="needs at least n = 4"):
        metrics.MinibatchCKA().update(X[:3], Y[:3])
    with pytest.raises(InputError, match="can only merge a MinibatchCKA"):
        metrics.MinibatchCKA().merge(metrics.StreamingLinearCKA())
