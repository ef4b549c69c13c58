"""Models: load a base model, a full fine-tune or a LoRA adapter with canonically named blocks.

Modules: :mod:`.load` (:func:`load_model`), :mod:`.loading` (backbone and adapter loading),
:mod:`.loaded` (:class:`LoadedModel`, forward inputs, embeddings), :mod:`.inputs` (segment and
position ids, shared with training), :mod:`.sources` (the one local-path-or-hub-id rule, weight
hashes), :mod:`.tokenizer` (the one tokenizer loader), :mod:`.blocks`, :mod:`.training_record`.
"""

from repdrift.models.blocks import find_blocks
from repdrift.models.load import load_model
from repdrift.models.loaded import Kind, LoadedModel
from repdrift.models.sources import Source, local_or_hub, normalize_source, sha256_files
from repdrift.models.tokenizer import load_tokenizer, tokenizer_sha256
from repdrift.models.training_record import TRAINING_RECORD, read_training_record

__all__ = [
    "TRAINING_RECORD",
    "Kind",
    "LoadedModel",
    "Source",
    "find_blocks",
    "load_model",
    "load_tokenizer",
    "local_or_hub",
    "normalize_source",
    "read_training_record",
    "sha256_files",
    "tokenizer_sha256",
]
