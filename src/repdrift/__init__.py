"""repdrift: what did fine-tuning do to my model's representations?

Public Python API
-----------------
extract(model, task=..., out=...)
    Every layer's representations of fixed validation samples into a run directory.
load_run(path)
    Open a verified run directory (``Run.layer(i)`` → (n, d) array).
compare(runs, out=...)
    Per-layer drift of fine-tuned runs from their base run, with statistics.
load_results(path)
    Read a results folder back (tables as pandas DataFrames).
plan_seeds(results, effect=None)
    The study-level answer's power at the seeds at hand, and the seeds per method that would
    reach 80 % power.
metrics
    The similarity registry: ``metrics.names()``, ``metrics.compute(name, X, Y)``,
    ``metrics.matrix(name, layers_a, layers_b)``.

Heavy dependencies (torch, transformers) are imported on first use, so ``import repdrift``
stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from repdrift import metrics
from repdrift.common.version import __version__
from repdrift.errors import InputError, IntegrityError, RepdriftError

# The one function-local import of the package face: these pull in torch and transformers,
# so they are imported on first use and ``import repdrift`` stays fast. The names are functions,
# never modules: no subpackage is called extract, compare, load_run, load_results or
# plan_seeds.
_LAZY = {
    "extract": "repdrift.extraction.api",
    "load_run": "repdrift.store.reader",
    "compare": "repdrift.analysis.compare_runs",
    "load_results": "repdrift.store.results",
    "plan_seeds": "repdrift.analysis.seed_planner",
}

__all__ = [
    "InputError",
    "IntegrityError",
    "RepdriftError",
    "__version__",
    "compare",
    "extract",
    "load_results",
    "load_run",
    "metrics",
    "plan_seeds",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'repdrift' has no attribute {name!r}")
