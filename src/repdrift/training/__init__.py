"""Training: thin, seeded full and LoRA fine-tuning recipes (transformers + peft).

Modules: :mod:`.recipe` (:func:`train`), :mod:`.data` (examples and collation), :mod:`.model`
(task model and LoRA set-up), :mod:`.record` (the training record and resume checks).
"""

from repdrift.training.recipe import DEFAULT_EPOCHS, DEFAULT_LR, DEMO_RECIPE, train

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LR", "DEMO_RECIPE", "train"]
