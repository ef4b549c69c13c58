"""Extraction: every layer's pooled (or token-level) representations of fixed samples, to disk.

Modules: :mod:`.api` (:func:`~repdrift.extraction.api.extract`,
:func:`~repdrift.extraction.api.extract_loaded`), :mod:`.options` (one
:class:`~repdrift.extraction.options.ExtractionOptions`), :mod:`.request` (a complete run of the
same call is recognised before any model loads), :mod:`.to_run` (a loaded model and token ids
into a run directory), :mod:`.capture` (forward hooks, pooling on the device), :mod:`.batching`
(length-sorted, token-budget batches), :mod:`.budget`, :mod:`.pooling`.

Nothing is re-exported here, on purpose: importing a light module of this package (options,
request) must not pull in torch and transformers, so ``repdrift extract`` can return in a second
when its run is already complete. The public function is :func:`repdrift.extract`.
"""
