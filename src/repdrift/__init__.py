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
metrics
    The similarity registry: ``metrics.names()``, ``metrics.compute(name, X, Y)``,
    ``metrics.matrix(name, layers_a, layers_b)``.

Heavy dependencies (torch, transformers) are imported on first use, so ``import repdrift``
stays fast.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("repdrift")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from repdrift import metrics
from repdrift.errors import InputError, IntegrityError, RepdriftError

_LAZY = {
    "extract": "repdrift.extract",
    "load_run": "repdrift.runs",
    "compare": "repdrift.analysis",
    "load_results": "repdrift.results",
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
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'repdrift' has no attribute {name!r}")
