"""An adapter config's relative base_model_name_or_path resolves against the adapter folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import peft
import pytest
import torch
from transformers import AutoModel

from repdrift.errors import InputError
from repdrift.models.load import load_model
from repdrift.models.sources import hash_weights, source_in_folder


@pytest.fixture(scope="module")
def study(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``study/minilm`` (the bundled base, linked) and ``study/adapter`` whose config says
    ``../minilm``."""
    root = tmp_path_factory.mktemp("study").resolve()
    _link_model(root / "minilm", minilm_path)
    torch.manual_seed(3)
    config = peft.LoraConfig(
        task_type="FEATURE_EXTRACTION", r=2, target_modules=["query"], init_lora_weights=False
    )
    adapter = root / "adapter"
    peft.get_peft_model(AutoModel.from_pretrained(minilm_path), config).save_pretrained(adapter)
    _set_base(adapter, "../minilm")
    return root


def _link_model(folder: Path, source: Path) -> None:
    """A real folder whose files link to those of ``source`` (the bundled MiniLM; resolving it
    stays here)."""
    folder.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file():
            (folder / f.name).symlink_to(f)


def _set_base(adapter: Path, value: str) -> None:
    path = adapter / "adapter_config.json"
    cfg = json.loads(path.read_text())
    cfg["base_model_name_or_path"] = value
    path.write_text(json.dumps(cfg))


def _copy_adapter(src: Path, dst: Path, base: str) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    _set_base(dst, base)
    return dst


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory where ``../minilm`` does not exist."""
    cwd = tmp_path / "work" / "deep"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    return cwd.resolve()


def test_relative_base_resolves_against_the_adapter_folder(
    minilm_path: Path, study: Path, elsewhere: Path
) -> None:
    loaded = load_model(study / "adapter", device="cpu")
    assert loaded.source["base"] == str(study / "minilm")
    assert loaded.source["base_weights_sha256"] == hash_weights(minilm_path)[0]
    assert not (elsewhere / ".." / "minilm").exists()


def test_missing_relative_base_names_the_paths_tried(study: Path, elsewhere: Path) -> None:
    adapter = _copy_adapter(study / "adapter", study / "moved" / "adapter", "../minilm")
    with pytest.raises(InputError) as err:
        load_model(adapter, device="cpu")
    message = str(err.value)
    assert str(study / "moved" / "minilm") in message  # resolved against the adapter folder
    assert str(elsewhere.parent / "minilm") in message  # and against the working directory
    assert "'../minilm'" in message and "base=" in message and str(adapter) in message
    assert "hub" not in message.split("(expected")[0]  # not a hub id, never an offline error


def test_base_relative_to_the_working_directory_still_loads_with_a_warning(
    minilm_path: Path, study: Path, elsewhere: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """peft writes the path it was given, relative to the trainer's working directory."""
    _link_model(elsewhere / "models" / "minilm", minilm_path)
    adapter = _copy_adapter(study / "adapter", elsewhere / "adapters" / "a1", "models/minilm")
    with caplog.at_level(logging.WARNING, logger="repdrift"):
        loaded = load_model(adapter, device="cpu")
    assert loaded.source["base"] == str(elsewhere / "models" / "minilm")
    assert str(adapter / "models" / "minilm") in caplog.text and "working directory" in caplog.text


def test_adapter_folder_wins_over_the_working_directory(tmp_path: Path, elsewhere: Path) -> None:
    (tmp_path / "adapter" / "base").mkdir(parents=True)
    (elsewhere / "base").mkdir()
    assert source_in_folder("base", tmp_path / "adapter", "x") == (tmp_path / "adapter" / "base")
    assert source_in_folder("./base", tmp_path / "adapter", "x") == (tmp_path / "adapter" / "base")
    assert source_in_folder("org/name", tmp_path / "adapter", "x") == "org/name"
    assert source_in_folder(str(elsewhere / "base"), tmp_path / "adapter", "x") == (
        elsewhere / "base"
    )
    (elsewhere / "weights.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file"):
        source_in_folder("weights.bin", tmp_path / "adapter", "x")


def test_full_fine_tune_records_its_base_weights_hash(minilm_path: Path, tmp_path: Path) -> None:
    loaded = load_model(minilm_path, base=minilm_path, kind="full", device="cpu")
    assert loaded.source["base"] == str(minilm_path)
    assert loaded.source["base_weights_sha256"] == loaded.source["weights_sha256"] is not None
