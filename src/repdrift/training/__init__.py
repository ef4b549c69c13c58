"""Training: thin, seeded full and LoRA fine-tuning recipes (transformers + peft).

Modules: :mod:`.settings` (:class:`TrainingSettings`, no torch), :mod:`.recipe`
(:func:`~repdrift.training.recipe.train`), :mod:`.data` (examples and collation), :mod:`.model`
(task model and LoRA set-up), :mod:`.record` (the training record and resume checks). Only the
settings are handed on here, so that ``import repdrift.training`` loads no torch.
"""

from repdrift.models.training_record import DEFAULT_LR
from repdrift.training.settings import DEFAULT_EPOCHS, DEMO_RECIPE, TrainingSettings

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LR", "DEMO_RECIPE", "TrainingSettings"]
