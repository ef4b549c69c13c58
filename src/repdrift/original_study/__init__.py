"""The original study's results trees, converted once into standard run directories.

``repdrift import TREE --out RUNS`` / :func:`import_original` (:mod:`.importer`); modules:
:mod:`.layout` (finding its runs and reading their folder names), :mod:`.pooling` (unpooled
``(n, seq_len, d)`` layers mean-pooled in bounded memory), :mod:`.token_counts` (the mask it did
not save, recovered by re-tokenising), :mod:`.adapters` (its LoRA A/B matrices). After the
import, every other stage reads standard runs only.
"""

from repdrift.original_study.importer import import_original, import_run
from repdrift.original_study.layout import OriginalRun, find_runs
from repdrift.original_study.token_counts import OriginalSamples

__all__ = ["OriginalRun", "OriginalSamples", "find_runs", "import_original", "import_run"]
