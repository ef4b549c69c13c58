"""The training settings: one object holds the defaults, the checks (one line naming the setting
and the value) and the help text; the learning rate's default depends on the method."""

from __future__ import annotations

import subprocess
import sys

import pytest

from repdrift.common.settings import default, help_text
from repdrift.errors import InputError
from repdrift.models.training_record import DEFAULT_LR
from repdrift.training.settings import DEFAULT_EPOCHS, TrainingSettings


def test_defaults() -> None:
    settings = TrainingSettings()
    assert settings.model_dump() == {
        "epochs": None, "max_steps": None, "lr": None, "batch_size": 16, "rank": 8, "alpha": 16,
        "dropout": 0.05, "target_modules": None, "max_train_samples": None, "save_steps": None,
        "max_eval_samples": 256, "device": "auto",
    }  # fmt: skip
    assert TrainingSettings.build() == settings == TrainingSettings.create()
    assert default(TrainingSettings, "rank") == 8
    assert help_text(TrainingSettings, "rank") == "LoRA rank r."
    for field in TrainingSettings.model_fields:
        assert help_text(TrainingSettings, field), field


def test_the_learning_rate_is_per_method() -> None:
    assert TrainingSettings().learning_rate("full") == DEFAULT_LR["full"] == 5e-5
    assert TrainingSettings().learning_rate("lora") == DEFAULT_LR["lora"] == 1e-3
    one = TrainingSettings.create(lr=2e-4)  # one number: both methods
    assert one.learning_rate("full") == one.learning_rate("lora") == 2e-4
    lora_only = TrainingSettings.create(lr={"lora": 5e-3})
    assert lora_only.learning_rate("lora") == 5e-3 and lora_only.learning_rate("full") == 5e-5
    assert lora_only.for_method("full").lr is None
    assert lora_only.for_method("lora").learning_rate("lora") == 5e-3
    assert TrainingSettings.create(lr="1e-4").learning_rate("full") == 1e-4  # YAML's 1e-4
    with pytest.raises(InputError, match="unknown method 'qlora'"):
        TrainingSettings().learning_rate("qlora")


def test_the_training_length() -> None:
    assert TrainingSettings().total_steps(10) == DEFAULT_EPOCHS * 10 == 30
    assert TrainingSettings(epochs=0.25).total_steps(10) == 3  # rounded up
    assert TrainingSettings(epochs=0.01).total_steps(10) == 1
    assert TrainingSettings(epochs=2, max_steps=7).total_steps(10) == 7  # max_steps wins


def test_spellings_that_are_accepted() -> None:
    assert TrainingSettings.create(target_modules="query, value").target_modules == (
        "query",
        "value",
    )
    assert TrainingSettings.create(target_modules=["c_attn"]).target_modules == ("c_attn",)
    assert TrainingSettings.create(max_eval_samples=None).max_eval_samples == 0  # null: none
    assert TrainingSettings.create(epochs=2).epochs == 2.0
    # build and updated: None keeps the setting (the CLI's options not given)
    base = TrainingSettings.build(rank=4, lr=1e-4)
    assert base.updated(rank=None, alpha=32) == TrainingSettings.create(rank=4, alpha=32, lr=1e-4)


@pytest.mark.parametrize(
    ("values", "line"),
    [
        ({"rank": 0}, "invalid training setting rank=0: input should be greater than or equal to 1"),
        ({"batch_size": True}, "invalid training setting: batch_size=True is not a number"),
        ({"max_steps": 2.5}, "invalid training setting max_steps=2.5: input should be a valid integer"),
        ({"epochs": -1}, "invalid training setting epochs=-1: input should be greater than 0"),
        ({"epochs": float("nan")}, "invalid training setting epochs=nan: input should be a finite number"),
        ({"dropout": 1.0}, "invalid training setting dropout=1.0: input should be less than 1"),
        ({"max_eval_samples": -1}, "invalid training setting max_eval_samples=-1"),
        ({"lr": float("inf")}, "invalid training setting: lr must be a positive finite number"),
        ({"lr": -1}, "lr must be a positive finite number or one per method {full: ..., lora: ...}, got -1"),
        ({"lr": {"qlora": 1.0}}, "invalid training setting lr.qlora"),
        ({"lr": {"lora": 0}}, "invalid training setting lr.lora=0: input should be greater than 0"),
        ({"target_modules": []}, "target_modules must name at least one module"),
        ({"target_modules": [1]}, "invalid training setting target_modules.0=1"),
        ({"rnak": 4}, "unknown training setting 'rnak' (did you mean 'rank'?)"),
        ({"max_step": 4}, "unknown training setting 'max_step' (did you mean 'max_steps'?)"),
    ],
)  # fmt: skip
def test_a_bad_value_is_one_line_naming_the_setting(values: dict, line: str) -> None:
    with pytest.raises(InputError) as info:
        TrainingSettings.create(**values)
    said = str(info.value)
    assert "\n" not in said and line in said, said


def test_every_problem_is_reported() -> None:
    with pytest.raises(InputError) as info:
        TrainingSettings.create(rank=0, alpha=0)
    assert str(info.value).splitlines() == [
        "invalid training setting rank=0: input should be greater than or equal to 1",
        "invalid training setting alpha=0: input should be greater than or equal to 1",
    ]


def test_the_settings_are_read_without_torch() -> None:
    """The runner and the CLI read the settings (defaults, help) without loading torch."""
    code = (
        "import sys, repdrift.training, repdrift.training.settings; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
