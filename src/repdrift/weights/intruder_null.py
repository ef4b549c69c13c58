"""The intruder count expected for random directions: the reference an intruder count needs.

An intruder (see :mod:`repdrift.weights.spectra`) is a top singular vector u of W' whose best
|cosine| with the p = min(out, in) left singular vectors of the base W is below epsilon. Those
p vectors are orthonormal in R^m (m = out), so for a direction u drawn uniformly from the unit
sphere of R^m the alignment max_i |<u, U0[:, i]>| has the law of the largest |coordinate| among
the first p coordinates of a uniform unit vector. It does not depend on W: it sets how low an
alignment is by chance alone. A random unit vector in R^4096 has max |cos| about 0.06 against
a basis, so at epsilon = 0.5 every random direction is an intruder: a count near k then says
the top directions changed, not how new they are (published replications saw counts saturate
at 908 and 1595 of 1600 slots while the share of spectral energy in intruders still separated
the methods).

The probability q(m, p, epsilon) = P(max_{i<=p} |u_i| < epsilon) and the expected count
k * q (k examined vectors; each top-k singular vector of a random W' is marginally uniform,
so the expectation is linear whatever their joint law):

- p = 1 is exact: u_1^2 ~ Beta(1/2, (m - 1)/2), so q = I_{epsilon^2}(1/2, (m - 1)/2).
- p = m and epsilon <= 1/sqrt(m) is exactly 0 (the largest of m squared coordinates summing to
  1 is at least 1/m).
- Otherwise a seeded Monte-Carlo estimate: u = g / ||g|| with g standard normal, so
  max_{i<=p} |u_i| = max_{i<=p} |g_i| / sqrt(g_1^2 + ... + g_p^2 + C) with C ~ chi^2(m - p)
  independent (p normals per draw, not m). :data:`NULL_DRAWS` draws with seed
  :data:`NULL_SEED`, computed once per (m, p) and cached; its standard error is
  sqrt(q (1 - q) / NULL_DRAWS) <= 0.005 for the probability, k times that for the count.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import betainc

from repdrift.errors import InputError

#: Monte-Carlo draws per (m, p) for the random-direction alignment (standard error of the
#: probability at most 0.5 / sqrt(NULL_DRAWS) = 0.005).
NULL_DRAWS = 10_000
#: Seed of those draws: the same table every time.
NULL_SEED = 0
# Normals drawn per chunk (memory bound ~32 MB whatever p is).
_CHUNK_VALUES = 4_000_000


def _check_dims(m: int, p: int) -> None:
    if isinstance(m, bool) or isinstance(p, bool) or not (1 <= int(p) <= int(m)):
        raise InputError(f"random alignment: expected 1 <= p <= m, got m={m!r}, p={p!r}")


@lru_cache(maxsize=64)
def random_alignment_sample(m: int, p: int) -> np.ndarray:
    """Sorted Monte-Carlo draws of max_{i<=p} |u_i| for u uniform on the unit sphere of R^m.

    Parameters
    ----------
    m : int
        Dimension of the space (the weight's output dimension).
    p : int
        Number of orthonormal reference vectors (min(out, in) of the base weight), 1 <= p <= m.

    Returns
    -------
    numpy.ndarray, shape (NULL_DRAWS,)
        float64 in (0, 1], ascending; read-only (cached and shared).
    """
    _check_dims(m, p)
    rng = np.random.default_rng([NULL_SEED, m, p])
    out = np.empty(NULL_DRAWS)
    rows = max(1, _CHUNK_VALUES // p)
    for start in range(0, NULL_DRAWS, rows):
        size = min(rows, NULL_DRAWS - start)
        g = rng.standard_normal((size, p))
        rest = rng.chisquare(m - p, size) if m > p else 0.0
        out[start : start + size] = np.abs(g).max(axis=1) / np.sqrt(np.square(g).sum(axis=1) + rest)
    out.sort()
    out.flags.writeable = False
    return out


def random_intruder_probability(m: int, p: int, epsilon: float) -> float:
    """P(max_{i<=p} |u_i| < epsilon) for u uniform on the unit sphere of R^m.

    Exact for p = 1 and for p = m with epsilon <= 1/sqrt(m); otherwise the Monte-Carlo
    estimate of :func:`random_alignment_sample` (see the module docstring).

    Parameters
    ----------
    m, p : int
        Space dimension and number of orthonormal reference vectors, 1 <= p <= m.
    epsilon : float
        Threshold in (0, 1].

    Returns
    -------
    float
        In [0, 1].
    """
    _check_dims(m, p)
    if not (0 < epsilon <= 1):
        raise InputError(f"epsilon: expected a number in (0, 1], got {epsilon!r}")
    if m == 1:
        return 0.0  # u = ±1: alignment 1, never below epsilon <= 1
    if p == 1:
        return float(betainc(0.5, (m - 1) / 2, epsilon**2))
    if p == m and epsilon <= 1 / math.sqrt(m):
        return 0.0
    sample = random_alignment_sample(int(m), int(p))
    return float(np.searchsorted(sample, epsilon, side="left")) / sample.size


def expected_random_intruders(m: int, p: int, k: int, epsilon: float) -> float:
    """Intruders expected among k examined directions if they were uniformly random.

    Parameters
    ----------
    m : int
        Output dimension of the weight (rows, nn.Linear layout).
    p : int
        min(out, in): the base's left singular vectors the alignment is taken over.
    k : int
        Vectors examined (already clipped to min(k, out, in)).
    epsilon : float
        Intruder threshold.

    Returns
    -------
    float
        k * :func:`random_intruder_probability` (m, p, epsilon), in [0, k].
    """
    return k * random_intruder_probability(m, p, epsilon)
