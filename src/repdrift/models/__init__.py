"""Models: load a base model, a full fine-tune or a LoRA adapter with canonically named blocks.

Modules: :mod:`.load` (:func:`~repdrift.models.load.load_model`), :mod:`.loading` (backbone and
adapter loading), :mod:`.loaded` (:class:`~repdrift.models.loaded.LoadedModel`, forward inputs,
embeddings), :mod:`.inputs` (segment and position ids, shared with training), :mod:`.sources`
(the one local-path-or-hub-id rule, weight hashes), :mod:`.tokenizer` (the one tokenizer
loader), :mod:`.blocks`, :mod:`.training_record`.

Nothing is re-exported here, on purpose: the light modules (sources, training_record) are used
by the runner and the CLI without loading torch and transformers.
"""
