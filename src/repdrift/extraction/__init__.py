"""Extraction: every layer's pooled (or token-level) representations of fixed samples, to disk.

Modules: :mod:`.api` (:func:`extract`, :func:`extract_loaded`), :mod:`.to_run` (a loaded model
and token ids into a run directory), :mod:`.capture` (forward hooks, pooling on the device),
:mod:`.batching` (length-sorted, token-budget batches), :mod:`.pooling`, :mod:`.options`
(:class:`ExtractionOptions`: the settings shared by the API, the CLI and experiment files).
"""

from repdrift.extraction.api import extract, extract_loaded, find_checkpoints
from repdrift.extraction.capture import extract_pooled, iter_pooled_chunks
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.to_run import StepRecord, extract_to_run

__all__ = [
    "ExtractionOptions",
    "StepRecord",
    "extract",
    "extract_loaded",
    "extract_pooled",
    "extract_to_run",
    "find_checkpoints",
    "iter_pooled_chunks",
]
