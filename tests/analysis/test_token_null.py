"""The token-level null (whole samples re-paired within groups of nearly equal length): every
sample takes part, replicates equal the accumulator on the re-paired rows, the level holds when
the pairing carries nothing and it rejects when it does."""

from __future__ import annotations

import numpy as np
import pytest

from repdrift.analysis import stats, token_null
from repdrift.analysis.token_null import SampleShuffles, null_replicates, null_text
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA


def _offsets(lengths) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)])


def test_every_sample_takes_part_with_its_group_in_blocks_of_equal_length():
    # short texts with all-distinct lengths: the former null (samples shuffled only among
    # equal lengths) could move none of these tokens
    lengths = np.arange(5, 41)[::-1]
    offsets = _offsets(lengths)
    shuffles = SampleShuffles(offsets, 20, seed=0, group=10)
    sample = np.searchsorted(offsets, shuffles.rows, side="right") - 1
    position = shuffles.rows - offsets[sample]
    # groups of 10 by length: 5-14, 15-24, 25-34 and the remaining 6 (35-40)
    group_min = np.select([lengths < 15, lengths < 25, lengths < 35], [5, 15, 25], 35)
    assert np.array_equal(np.bincount(sample, minlength=36), group_min)
    assert shuffles.movable == pytest.approx(group_min.sum() / lengths.sum())
    assert shuffles.movable > 0.8  # 36 samples, every length different: the worst case
    moved = []
    for r in range(20):
        paired = shuffles.perm(r)
        assert np.array_equal(np.sort(paired), np.sort(shuffles.rows))  # a re-pairing
        partner = np.searchsorted(offsets, paired, side="right") - 1
        assert np.array_equal(paired - offsets[partner], position)  # position by position
        assert np.array_equal(group_min[partner], group_min[sample])  # within the group
        whole = [len(set(partner[sample == i])) == 1 for i in range(36)]
        assert all(whole)  # a sample's block moves as a whole
        moved.append(np.mean(partner != sample))
    assert np.mean(moved) > 0.8
    # the same shuffle for every layer and run: drawn from the seed and its index only
    assert np.array_equal(SampleShuffles(offsets, 20, seed=0).perm(7), shuffles.perm(7))
    assert not np.array_equal(SampleShuffles(offsets, 20, seed=1).perm(7), shuffles.perm(7))


def test_replicates_equal_the_accumulator_on_repaired_rows(monkeypatch):
    monkeypatch.setattr(token_null, "CHUNK_ROWS", 7)  # several chunks per pass
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 12, 15)
    offsets = _offsets(lengths)
    X = rng.normal(size=(offsets[-1], 5)) * 2 + 30  # a large mean, as activations have
    Y = X @ rng.normal(size=(5, 5)) + rng.normal(size=X.shape) - 9
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)  # as stored in a run's files
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)
    shuffles = SampleShuffles(offsets, 4, seed=3, group=4)
    ticks = []
    observed, null = null_replicates(X32, Y32, shuffles, ticks.append)
    assert ticks == [1, 1, 1, 1]
    rows = shuffles.rows
    for r, y_rows in [(None, rows), *((r, shuffles.perm(r)) for r in range(4))]:
        Xk, Yk = X64[rows], Y64[y_rows]
        want = StreamingDebiasedCKA().update(Xk, Yk)
        cos = np.sum(Xk * Yk, 1) / (np.linalg.norm(Xk, axis=1) * np.linalg.norm(Yk, axis=1))
        got = observed if r is None else {k: v[r] for k, v in null.items()}
        assert got["cka_debiased"] == pytest.approx(want.compute(), abs=1e-10)
        assert got["cka_linear"] == pytest.approx(want.linear_cka(), abs=1e-10)
        assert got["cosine"] == pytest.approx(cos.mean(), abs=1e-12)


def _simulated(rng: np.random.Generator, rho: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token rows of 30 samples (4-24 tokens): base = position + sample content + noise; the
    variant a linear map of position + content (its own sample's with weight rho, an
    independent sample's otherwise) + noise. rho = 0: the pairing carries nothing."""
    lengths = rng.integers(4, 25, 30)
    offsets = _offsets(lengths)
    d = 4
    P = rng.normal(size=(lengths.max(), d))
    C, C_other = rng.normal(size=(30, d)), rng.normal(size=(30, d))
    sample = np.repeat(np.arange(30), lengths)
    position = np.concatenate([np.arange(n) for n in lengths])
    X = P[position] + C[sample] + 0.5 * rng.normal(size=(len(sample), d))
    content = rho * C[sample] + np.sqrt(1 - rho**2) * C_other[sample]
    A = rng.normal(size=(d, d))
    Y = (P[position] + content + 0.5 * rng.normal(size=(len(sample), d))) @ A
    return X, Y, offsets


def _rejections(rho: float, n_sims: int, n_null: int, alpha: float) -> dict[str, float]:
    rng = np.random.default_rng(2026)
    hits = {"cka_debiased": 0, "cka_linear": 0, "cosine": 0}
    for sim in range(n_sims):
        X, Y, offsets = _simulated(rng, rho)
        observed, null = null_replicates(X, Y, SampleShuffles(offsets, n_null, seed=sim))
        for name in hits:
            hits[name] += stats.permutation_pvalue(observed[name], null[name]) <= alpha
    return {name: count / n_sims for name, count in hits.items()}


@pytest.mark.slow
def test_level_holds_when_the_pairing_carries_nothing_and_power_when_it_does():
    # 19 shuffles: p <= 0.05 exactly when the observed pairing beats all 19, probability 1/20
    # under exchangeability; 1000 simulations: 0.05 +- 0.0069 (one standard error). Measured:
    # 0.047 (both CKAs), 0.052 (cosine); power at rho = 0.6: 0.99 (CKAs), at 0.3: 0.48.
    level = _rejections(rho=0.0, n_sims=1000, n_null=19, alpha=0.05)
    for name, rate in level.items():
        assert 0.03 <= rate <= 0.07, (name, rate)
    power = _rejections(rho=0.6, n_sims=100, n_null=19, alpha=0.05)
    for name in ("cka_debiased", "cka_linear"):
        assert power[name] >= 0.9, (name, power[name])


def test_described_with_what_it_tests_and_its_floor():
    drawn = null_text(99, 99)
    assert "whole samples re-paired within groups of 10 samples of nearly equal length" in drawn
    assert "beyond position and length" in drawn and "not drift" in drawn
    assert "p >= 0.01 (its floor)" in drawn
    none = null_text(0, 0)
    assert "no null drawn (token_null = 0, the default)" in none
    assert "no smaller than 1/(N + 1)" in none
    assert "no null drawn (n_perm = 0)" in null_text(0, 50)
