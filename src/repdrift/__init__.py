"""repdrift: what did fine-tuning do to my model's representations?

Public Python API
-----------------
metrics
    The similarity registry: ``metrics.names()``, ``metrics.compute(name, X, Y)``,
    ``metrics.matrix(name, layers_a, layers_b)``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("repdrift")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from repdrift import metrics  # noqa: E402
from repdrift.errors import IntegrityError, InputError, RepdriftError  # noqa: E402

__all__ = ["InputError", "IntegrityError", "RepdriftError", "__version__", "metrics"]
