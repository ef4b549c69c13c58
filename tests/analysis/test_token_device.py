"""Token-level drift with its accumulators in torch (on the CPU here) equals the numpy path:
values, half-sample replicates, null replicates and per-token cosines."""

from __future__ import annotations

import numpy as np
import pytest

from repdrift.analysis import stats, token_null, tokens
from repdrift.analysis.token_null import SampleShuffles


def test_torch_path_on_the_cpu_equals_numpy(monkeypatch):
    monkeypatch.setattr(tokens, "CHUNK_ROWS", 37)  # several chunks per block
    monkeypatch.setattr(token_null, "CHUNK_ROWS", 53)
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 30, 40)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    X = (rng.normal(size=(offsets[-1], 10)) * 2 + 30).astype(np.float32)
    Y = (X @ rng.normal(size=(10, 10)) + rng.normal(size=X.shape) * 3 - 9).astype(np.float32)
    block = tokens._blocks(len(lengths), 12, rng)
    W = np.zeros((30, 12))
    np.put_along_axis(W, stats.half_samples(12, 30, rng), 1.0, axis=1)
    shuffles = SampleShuffles(offsets, 5, seed=1, group=6)
    want = tokens._measure(X, Y, offsets, block, W, shuffles)
    got = tokens._measure(X, Y, offsets, block, W, shuffles, device="cpu")
    for name in tokens.TOKEN_METRICS:
        assert got["values"][name] == pytest.approx(want["values"][name], abs=1e-8)
        np.testing.assert_allclose(got["boot"][name], want["boot"][name], rtol=0, atol=1e-8)
        np.testing.assert_allclose(got["null"][name], want["null"][name], rtol=0, atol=1e-8)
        assert got["null_observed"][name] == pytest.approx(want["null_observed"][name], abs=1e-8)
    np.testing.assert_allclose(got["per_token_cos"], want["per_token_cos"], rtol=0, atol=1e-12)
    assert np.isfinite(got["boot"]["cka_debiased"]).all()
