"""The training settings: how to fine-tune, in one typed object (no torch: cheap to import).

:class:`TrainingSettings` is what :func:`repdrift.training.recipe.train` builds from its keyword
arguments, the CLI's ``train`` command reads its defaults and help text from, and the experiment
file's ``train:`` section is (:class:`repdrift.runner.sections.TrainConfig` is this class). The
variant itself (task, method, seed) is not a setting: :func:`~repdrift.training.recipe.train`
takes it as arguments, the runner's jobs as their labels. The samples trained on are
:class:`~repdrift.tasks.settings.SampleSettings` (the ``train`` split).

The peak learning rate depends on the method: :meth:`TrainingSettings.learning_rate` gives the
one given (one number for both methods, or one per method) or the method's default,
:data:`repdrift.models.training_record.DEFAULT_LR`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, get_args

from pydantic import Field, field_validator

from repdrift.common.naming import Method
from repdrift.common.settings import Settings, comma_list, refuse_bool
from repdrift.errors import InputError
from repdrift.models.training_record import DEFAULT_LR

#: Training length when neither ``epochs`` nor ``max_steps`` is given.
DEFAULT_EPOCHS = 3.0
#: The training seed of :func:`repdrift.training.recipe.train` and ``repdrift train``.
DEFAULT_SEED = 42
#: The fine-tuning methods.
METHODS: tuple[str, ...] = get_args(Method)
# A recipe for the bundled demo tasks on a small CPU: 30 steps of 16 (~1.2 epochs of 400) reach
# ~0.7-0.8 validation accuracy on demo-sst / demo-pair with the bundled MiniLM and move the
# upper layers' representations clearly (linear-CKA drift of the last layer 0.3-0.85), in
# roughly 7-23 CPU-seconds per run. The higher learning rates make up for the few steps.
DEMO_RECIPE: dict[str, dict[str, Any]] = {
    "full": {"max_steps": 30, "batch_size": 16, "lr": 2e-4},
    "lora": {"max_steps": 30, "batch_size": 16, "lr": 5e-3},
}

_Rate = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def check_method(method: Any) -> Method:
    """``method`` if it is ``full`` or ``lora``; InputError otherwise."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: expected 'full' or 'lora'")
    return method  # type: ignore[no-any-return]


class TrainingSettings(Settings):
    """How to fine-tune: length, learning rate, batch, the LoRA adapters, evaluation, device.

    Attributes
    ----------
    epochs : float
        Training length in epochs (default 3 when neither ``epochs`` nor ``max_steps`` is given).
    max_steps : int
        Optimiser steps (wins over ``epochs``).
    lr : float or {full: float, lora: float}
        Peak learning rate, one for both methods or per method (default 5e-5 full, 1e-3 LoRA).
    batch_size : int
        Examples per optimiser step.
    rank : int
        LoRA rank r.
    alpha : int
        LoRA alpha (the update is scaled by alpha / r).
    dropout : float
        LoRA dropout, in [0, 1).
    target_modules : list of str
        LoRA target modules (default: the attention query/value projections, detected: BERT
        ``query``/``value``, Llama ``q_proj``/``v_proj``, GPT-2 ``c_attn``); also as one
        comma-separated string.
    max_train_samples : int
        Train on this many samples (the same subset for every seed); default the whole split.
    save_steps : int
        Also save ``checkpoint-N`` every N steps (see ``checkpoints``).
    max_eval_samples : int
        Validation samples for the recorded accuracy (classification only); 0 (or null) skips it.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    The LoRA settings are ignored for ``full``. Build one with
    ``TrainingSettings.build(settings, lr=..., ...)`` (None keeps a setting) or
    ``TrainingSettings.create(...)``; errors as in :class:`~repdrift.common.settings.Settings`.
    """

    KIND: ClassVar[str] = "training setting"

    epochs: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=f"Training length in epochs (default: {DEFAULT_EPOCHS:g} when max_steps is "
        "not given).",
    )
    max_steps: int | None = Field(None, ge=1, description="Optimiser steps (wins over epochs).")
    lr: dict[Method, _Rate] | None = Field(
        None,
        description="Peak learning rate (default: per method, "
        + ", ".join(f"{m} {v:g}" for m, v in DEFAULT_LR.items())
        + ").",
    )
    batch_size: int = Field(16, ge=1, description="Examples per optimiser step.")
    rank: int = Field(8, ge=1, description="LoRA rank r.")
    alpha: int = Field(16, ge=1, description="LoRA alpha (the update is scaled by alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout, in [0, 1).")
    target_modules: tuple[str, ...] | None = Field(
        None,
        description="Comma-separated LoRA target modules (default: the attention query/value "
        "projections, detected).",
    )
    max_train_samples: int | None = Field(
        None,
        ge=1,
        description="Train on this many samples, the same subset for every seed (default: the "
        "whole split).",
    )
    save_steps: int | None = Field(
        None, ge=1, description="Also save checkpoint-N folders every N steps."
    )
    max_eval_samples: int = Field(
        256, ge=0, description="Validation samples for the recorded accuracy (0: none)."
    )
    device: str = Field("auto", min_length=1, description="auto | cpu | cuda | cuda:N.")

    _numbers = field_validator(
        "epochs", "max_steps", "batch_size", "rank", "alpha", "dropout", "max_train_samples",
        "save_steps", "max_eval_samples", mode="before",
    )(refuse_bool)  # fmt: skip

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if value is None or isinstance(value, Mapping):
            return value
        try:  # one number: the same peak rate for both methods
            rate = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(
                f"lr must be a positive finite number or one per method {{full: ..., lora: ...}}, "
                f"got {value!r}"
            )
        return dict.fromkeys(METHODS, rate)

    @field_validator("target_modules", mode="before")
    @classmethod
    def _target_modules(cls, value: Any) -> Any:
        value = comma_list(value)  # the CLI's "query,value"
        if isinstance(value, Sequence) and not value:
            raise ValueError("target_modules must name at least one module (or be left out)")
        return value

    @field_validator("max_eval_samples", mode="before")
    @classmethod
    def _no_evaluation(cls, value: Any) -> Any:
        return 0 if value is None else value  # null in an experiment file: no evaluation

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> Any:
        return value if isinstance(value, str) else str(value)  # e.g. a torch.device

    def learning_rate(self, method: str) -> float:
        """The peak learning rate of ``method``: the one given, else the method's default
        (:data:`~repdrift.models.training_record.DEFAULT_LR`).

        Raises
        ------
        InputError
            ``method`` is not ``full`` or ``lora``.
        """
        method = check_method(method)
        given = (self.lr or {}).get(method)  # type: ignore[call-overload]
        return float(DEFAULT_LR[method] if given is None else given)

    def total_steps(self, per_epoch: int) -> int:
        """Optimiser steps: ``max_steps``, else ``epochs`` (default 3) of ``per_epoch`` steps."""
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil((self.epochs or DEFAULT_EPOCHS) * per_epoch))

    def for_method(self, method: str) -> TrainingSettings:
        """These settings for one method: ``lr`` holds that method's rate only (or None: its
        default)."""
        given = (self.lr or {}).get(check_method(method))  # type: ignore[call-overload]
        return self.model_copy(update={"lr": None if given is None else {method: given}})


__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_SEED",
    "DEMO_RECIPE",
    "METHODS",
    "TrainingSettings",
    "check_method",
]
