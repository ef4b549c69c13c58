"""Analysis: pair runs with their base, measure per-layer drift, say how sure that is.

Modules: :mod:`.compare_runs` (:func:`compare`), :mod:`.pairing` (runs grouped by task),
:mod:`.stats` (half-sample intervals, permutation nulls, seed-level tests, corrections),
:mod:`.summaries` (method comparison, noise floor, task ranking), :mod:`.headline`,
:mod:`.tokens` (token-level runs over all tokens). Analysis reads run directories only; the
original study's trees are converted first (:mod:`repdrift.original_study`, ``repdrift import``).
:mod:`.settings` holds :class:`~repdrift.analysis.settings.AnalysisSettings`, the one home of
the analysis settings.

Nothing is re-exported here, on purpose: the CLI reads the light settings module for its help
texts without loading the analysis (pandas, scipy). The public function is
:func:`repdrift.compare`.
"""
