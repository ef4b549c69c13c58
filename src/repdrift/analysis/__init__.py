"""Analysis: pair runs with their base, measure per-layer drift, say how sure that is.

Modules: :mod:`.compare_runs` (:func:`compare`), :mod:`.pairing` (runs grouped by task),
:mod:`.stats` (half-sample intervals, permutation nulls, seed-level tests, corrections),
:mod:`.summaries` (method comparison, noise floor, task ranking), :mod:`.headline`.
"""

from repdrift.analysis.compare_runs import DEFAULT_METRICS, compare
from repdrift.analysis.headline import Headline, headline

__all__ = ["DEFAULT_METRICS", "Headline", "compare", "headline"]
