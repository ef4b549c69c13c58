"""Analysis: pair runs with their base, measure per-layer drift, say how sure that is.

Modules: :mod:`.compare_runs` (:func:`compare`), :mod:`.pairing` (runs grouped by task),
:mod:`.stats` (half-sample intervals, permutation nulls, seed-level tests, corrections),
:mod:`.summaries` (method comparison, noise floor, task ranking), :mod:`.headline`,
:mod:`.tokens` (token-level runs over all tokens). Analysis reads run directories only; the
original study's trees are converted first (:mod:`repdrift.original_study`, ``repdrift import``).
"""

from repdrift.analysis.compare_runs import DEFAULT_METRICS, compare
from repdrift.analysis.headline import Headline, headline

__all__ = ["DEFAULT_METRICS", "Headline", "compare", "headline"]
