"""RSA on tied (quantised) data against scipy, and the CCA family's dimensionality warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr

from repdrift.metrics import compute
from repdrift.metrics.cca import DIMENSIONALITY_RULES, warn_if_close_to_n
from repdrift.metrics.rsa import tied_ranks


def _quantised(rng: np.random.Generator) -> np.ndarray:
    X = rng.integers(-3, 4, size=(60, 4)).astype(np.float64)
    X[X.std(axis=1) == 0, 0] += 1.0  # the correlation distance needs non-constant rows
    return X


@pytest.mark.parametrize("seed", range(5))
def test_rsa_on_integer_data_treats_equal_distances_as_ties(seed):
    """n = 60, d = 4 integer-valued activations: many pairs are at exactly the same distance.

    Euclidean: scipy's pdist gives exact ties on integers, so the plain pdist + spearmanr
    reference holds to 1e-12. Correlation distances of integer rows that are equal in exact
    arithmetic come out of any float computation up to rounding noise (scipy's included), so
    the reference rounds them to 12 decimals before spearmanr; without that rounding scipy
    breaks the ties in arbitrary order.
    """
    rng = np.random.default_rng(seed)
    X, Y = _quantised(rng), _quantised(rng)
    ref = spearmanr(pdist(X, "euclidean"), pdist(Y, "euclidean")).statistic
    assert compute("rsa", X, Y, rdm="euclidean") == pytest.approx(ref, abs=1e-12)
    dx, dy = pdist(X, "correlation"), pdist(Y, "correlation")
    ref = spearmanr(np.round(dx, 12), np.round(dy, 12)).statistic
    assert compute("rsa", X, Y) == pytest.approx(ref, abs=1e-12)


def test_tied_ranks_average_within_groups():
    v = np.array([0.3, 0.1, 0.3 + 1e-15, 0.2, 0.1])
    np.testing.assert_array_equal(tied_ranks(v), [4.5, 1.5, 4.5, 3.0, 1.5])


def test_svcca_warns_once_when_kept_dimensions_approach_n(caplog):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 64))
    Y = X + 2 * rng.normal(size=(150, 64))
    warn_if_close_to_n.cache_clear()
    with caplog.at_level(logging.WARNING, logger="repdrift.metrics.cca"):
        compute("svcca", X, Y)
        compute("svcca", X, Y)
    hits = [r for r in caplog.records if "inflated by chance" in r.getMessage()]
    assert len(hits) == 1 and "n=150" in hits[0].getMessage()
    assert "keep_variance" in hits[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="repdrift.metrics.cca"):
        compute("svcca", X[:, :4], Y[:, :4])  # 4 + 4 directions among 150 samples: fine
    assert not [r for r in caplog.records if "inflated by chance" in r.getMessage()]
    assert set(DIMENSIONALITY_RULES) == {"cca", "svcca", "pwcca"}
