"""The runner and the weight analysis read "local path or hub id" by the models' one rule."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from repdrift.errors import InputError
from repdrift.models.sources import local_or_hub, normalize_source
from repdrift.runner.experiment_file import resolve_model
from repdrift.runner.stages import _weights_device
from repdrift.runner.status import _missing_folder
from repdrift.weights.checkpoints import resolve_model_folder

VALUES = ["models/base", "./models/base", "weights.bin", "org/name", "gpt2", "runs/typo",
          "./gone", "a/b/c", "{tmp}/models/base", "{tmp}/gone"]  # fmt: skip


@pytest.mark.parametrize("raw", VALUES)
def test_experiment_file_and_status_follow_the_rule(here: Path, raw: str) -> None:
    value = raw.replace("{tmp}", str(here))
    src = local_or_hub(value)
    # an experiment file's folder is its root; here it is the working directory
    assert resolve_model(value, here) == str(src)
    assert _missing_folder(value) == (isinstance(src, Path) and not src.exists())


@pytest.mark.parametrize("raw", VALUES)
def test_weight_analysis_follows_the_rule(here: Path, raw: str) -> None:
    value = raw.replace("{tmp}", str(here))
    try:
        expected = normalize_source(value, "model")
    except InputError as exc:
        with pytest.raises(InputError) as err:
            resolve_model_folder(value)
        assert str(err.value) == str(exc)
        return
    if isinstance(expected, Path):
        assert resolve_model_folder(value) == expected
    else:  # a hub id: looked up in the (empty) local cache only
        with pytest.raises(InputError, match=f"{value}: not a folder, and not found in the local"):
            resolve_model_folder(value)


def test_experiment_root_is_where_relative_models_live(here: Path, tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp("study")
    (root / "base").mkdir()
    assert resolve_model("base", root) == str(root.resolve() / "base")
    assert resolve_model("./later", root) == str(root.resolve() / "later")
    assert resolve_model("org/name", root) == "org/name"


def test_weights_device_uses_the_device_rule() -> None:
    def exp(device: str) -> SimpleNamespace:
        return SimpleNamespace(extraction=SimpleNamespace(device=device))

    assert _weights_device(exp("cpu")) == "cpu"
    assert _weights_device(exp("auto")) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="device='toaster'"):
        _weights_device(exp("toaster"))
