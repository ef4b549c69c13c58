"""``repdrift train``: its options show the training settings' help and defaults, read from
:class:`~repdrift.training.settings.TrainingSettings` (the one home), and a bad value is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from repdrift.cli import app
from repdrift.common.settings import default, help_text
from repdrift.errors import InputError
from repdrift.tasks.settings import SampleSettings
from repdrift.training.settings import DEFAULT_SEED, TrainingSettings

runner = CliRunner()


def _words(text: str) -> str:
    """The help without its box drawing and line breaks."""
    return " ".join(text.replace("│", " ").split())


@pytest.fixture(scope="module")
def shown() -> str:
    result = runner.invoke(app, ["train", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    return _words(result.stdout)


@pytest.mark.parametrize(
    "field", ["batch_size", "rank", "alpha", "dropout", "max_eval_samples", "device"]
)
def test_help_shows_each_default_from_the_settings(shown: str, field: str) -> None:
    option = "--" + field.replace("_", "-")
    text = help_text(TrainingSettings, field).rstrip(".")
    assert f"{option} " in shown and f"{text} (default: {default(TrainingSettings, field)})." in shown


def test_help_of_settings_without_a_fixed_default(shown: str) -> None:
    for field in ("epochs", "max_steps", "lr", "target_modules", "max_train_samples", "save_steps"):
        assert help_text(TrainingSettings, field) in shown, field
    assert "full 5e-05, lora 0.001" in shown  # the learning rate's default per method
    assert help_text(SampleSettings, "task") in shown
    assert f"[default: {DEFAULT_SEED}]" in shown


def test_a_bad_value_is_named_before_anything_loads(tmp_path: Path) -> None:
    args = ["train", "--task", "demo-sst", "--method", "lora", "--model", "bundled:minilm"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--dropout", "1.5"])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception) == (
        "invalid training setting dropout=1.5: input should be less than 1"
    )
    assert not (tmp_path / "m").exists()
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--rank", "0"])
    assert result.exit_code == 2 and "--rank" in result.output  # typer names it as typed
