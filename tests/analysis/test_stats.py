"""Resampling, nulls and seed-level tests: exactness against direct computation, and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from _reference_cka import plain_cka
from repdrift.analysis import stats
from repdrift.errors import InputError
from repdrift.metrics.resampling import gram_cka_permuted, gram_cka_subsets


def test_half_samples_are_distinct_sorted_halves():
    idx = stats.half_samples(51, 20, np.random.default_rng(0))
    assert idx.shape == (20, 25)
    for row in idx:
        assert len(set(row)) == 25 and np.all(np.diff(row) > 0) and row.max() < 51
    with pytest.raises(InputError, match="n >= 8"):
        stats.half_samples(5, 3, np.random.default_rng(0))


def test_permutations_are_permutations():
    p = stats.permutations(30, 10, np.random.default_rng(0))
    assert p.shape == (10, 30)
    assert all(sorted(row) == list(range(30)) for row in p)


def test_half_sample_interval_covers_population_cka_at_nominal_rate():
    """X ~ N(0, I), Y = X A + s E has population linear CKA ||A||² / (sqrt(d) ||AᵀA + s²I||).

    300 trials at level 0.9: the binomial standard error of the coverage is 0.017, so
    [0.82, 0.97] allows for ~4.5 SE below (half-sampling intervals run slightly narrow for
    this skewed ratio statistic at n = 100: measured 0.87-0.90) and ~4 SE above.
    """
    rng = np.random.default_rng(1)
    d, s, n = 4, 1.5, 100
    A = rng.normal(size=(d, d))
    truth = np.sum(A**2) / np.sqrt(d * np.sum((A.T @ A + s**2 * np.eye(d)) ** 2))
    from repdrift.metrics.kernels import kernel_alignment, u_center_gram

    hits = 0
    trials = 300
    for _ in range(trials):
        X = rng.normal(size=(n, d))
        Y = X @ A + s * rng.normal(size=(n, d))
        Xc, Yc = X - X.mean(0), Y - Y.mean(0)
        K, L = Xc @ Xc.T, Yc @ Yc.T
        estimate = kernel_alignment(u_center_gram(K), u_center_gram(L))
        reps = gram_cka_subsets(K, L, stats.half_samples(n, 300, rng), debiased=True)
        iv = stats.basic_interval(estimate, reps, level=0.9)
        hits += iv.low <= truth <= iv.high
    assert 0.82 <= hits / trials <= 0.97


def test_permutation_pvalue_is_uniform_under_independence_and_small_under_dependence():
    from repdrift.metrics.kernels import u_centered_gram

    rng = np.random.default_rng(5)
    pvals = []
    for _ in range(200):
        X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
        Ku, Lu = u_centered_gram(X), u_centered_gram(Y)
        observed = plain_cka(X, Y, debiased=True)
        null = gram_cka_permuted(Ku, Lu, stats.permutations(30, 99, rng))
        pvals.append(stats.permutation_pvalue(observed, null))
    rate = np.mean(np.array(pvals) <= 0.1)
    assert 0.04 <= rate <= 0.17  # nominal 0.1; binomial SE 0.021 over 200 trials
    X = rng.normal(size=(30, 3))
    Y = X + 0.3 * rng.normal(size=(30, 3))
    null = gram_cka_permuted(
        u_centered_gram(X), u_centered_gram(Y), stats.permutations(30, 199, rng)
    )
    assert stats.permutation_pvalue(plain_cka(X, Y, debiased=True), null) == 1 / 200


def test_calibrated_similarity_maps_chance_to_zero_and_identity_to_one():
    assert stats.calibrated_similarity(0.4, 0.4) == 0
    assert stats.calibrated_similarity(1.0, 0.4) == 1
    assert np.isnan(stats.calibrated_similarity(1.0, 1.0))


def _seed_drifts(rng, n_seeds, mean, seed_sd=0.02, n_rep=200, sample_sd=0.005):
    drift = mean + seed_sd * rng.normal(size=n_seeds)
    reps = drift[:, None] + sample_sd * rng.normal(size=(n_seeds, n_rep))
    return drift, reps


def test_group_comparison_false_positive_rate_is_nominal_under_the_null():
    """Both methods drift alike: the test must not reject more often than its level.

    Welch's test on 3 + 3 normal seeds has an exact size of 0.033 at level 0.05 (it is slightly
    conservative at so few seeds; 20,000 simulated trials). Over 1,000 trials the binomial SE
    is 0.0057, so [0.01, 0.06] is about ±4 SE around 0.033 and excludes anti-conservative rates.
    """
    rng = np.random.default_rng(7)
    rejections = 0
    trials = 1000
    for _ in range(trials):
        a, ra = _seed_drifts(rng, 3, 0.3)
        b, rb = _seed_drifts(rng, 3, 0.3)
        rejections += stats.compare_groups(a, b, ra, rb, rng=rng).p <= 0.05
    assert 0.01 <= rejections / trials <= 0.06


def test_group_comparison_detects_a_planted_difference_and_not_an_absent_one():
    rng = np.random.default_rng(8)
    a, ra = _seed_drifts(rng, 3, 0.20, seed_sd=0.01)
    b, rb = _seed_drifts(rng, 3, 0.40, seed_sd=0.01)
    res = stats.compare_groups(a, b, ra, rb, rng=rng)
    assert res.test == "welch" and res.p < 0.01 and res.high < 0 and res.effect_size < -3
    assert res.low < res.diff < res.high
    same = stats.compare_groups(a, a, ra, ra, rng=rng)
    assert same.diff == 0 and same.p == 1.0


def test_group_comparison_with_one_seed_falls_back_to_samples():
    rng = np.random.default_rng(9)
    a, ra = _seed_drifts(rng, 1, 0.2)
    b, rb = _seed_drifts(rng, 1, 0.4)
    res = stats.compare_groups(a, b, ra, rb, rng=rng)
    assert res.test == "samples" and res.p < 0.05 and np.isnan(res.effect_size)
    with pytest.raises(InputError, match="replicates"):
        stats.compare_groups(a, b, ra[:, :10], rb, rng=rng)


def _plain_holm(p):
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p[i])
        adj[i] = min(1.0, running)
    return adj


def _plain_bh(p):
    order = np.argsort(p)[::-1]
    m = len(p)
    adj = np.empty(m)
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p[i] * m / rank)
        adj[i] = running
    return adj


def test_pvalue_adjustments_match_plain_implementations():
    p = np.random.default_rng(10).uniform(size=25) ** 3
    np.testing.assert_allclose(stats.adjust_pvalues(p, "holm"), _plain_holm(p))
    np.testing.assert_allclose(stats.adjust_pvalues(p, "bh"), _plain_bh(p))
    with_nan = stats.adjust_pvalues([0.01, np.nan, 0.04], "holm")
    assert np.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02)
    with pytest.raises(InputError, match="correction"):
        stats.adjust_pvalues(p, "bonferonni")
