"""The original study's results trees, converted once into standard run directories.

Modules: :mod:`.token_counts` (the mask it did not save, recovered by re-tokenising).
"""

from repdrift.original_study.token_counts import OriginalSamples

__all__ = ["OriginalSamples"]
