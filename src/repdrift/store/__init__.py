"""Store: run directories (safetensors layers + a verified manifest) and results folders.

Modules: :mod:`.writer` (:class:`StepWriter`, streamed and resumable), :mod:`.reader`
(:func:`load_run`, :func:`verify_run`), :mod:`.manifest`, :mod:`.assemble` (chunks to layer
files), :mod:`.tensorfile` (deterministic safetensors writer), :mod:`.legacy_pt` (the original
study's ``.pt`` files, read with ``weights_only=True``), :mod:`.results` (results folders).
"""

from repdrift.store.assemble import PooledChunk
from repdrift.store.manifest import MANIFEST_NAME, SCHEMA_VERSION, Manifest, step_dir_name
from repdrift.store.reader import Run, load_run, run_summary
from repdrift.store.results import Results, load_results
from repdrift.store.steps import verify_run
from repdrift.store.writer import StepWriter, write_run

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "Manifest",
    "PooledChunk",
    "Results",
    "Run",
    "StepWriter",
    "load_results",
    "load_run",
    "run_summary",
    "step_dir_name",
    "verify_run",
    "write_run",
]
