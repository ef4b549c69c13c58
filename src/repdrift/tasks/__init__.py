"""Tasks: presets, the fixed validation samples every model sees, and their token ids.

Modules: :mod:`.presets` (:class:`TaskSpec`, :data:`PRESETS`, bundled data), :mod:`.samples`
(:func:`load_samples`), :mod:`.encoding` (:func:`encode`).
"""

from repdrift.tasks.encoding import encode
from repdrift.tasks.presets import BUNDLED_DATA, PRESETS, TaskSpec, bundled_data
from repdrift.tasks.samples import Samples, choose_rows, load_samples

__all__ = [
    "BUNDLED_DATA",
    "PRESETS",
    "Samples",
    "TaskSpec",
    "bundled_data",
    "choose_rows",
    "encode",
    "load_samples",
]
