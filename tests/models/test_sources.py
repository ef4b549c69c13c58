"""The one "local path or hub id" rule (repdrift.models.sources) and its callers in models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repdrift.errors import InputError
from repdrift.models.loading import _resolve_lora_base
from repdrift.models.sources import (
    check_hub,
    is_hub_id,
    local_or_hub,
    normalize_source,
    source_in_folder,
)

# (value as the user writes it, what it is, the path it stands for relative to the tmp folder)
CASES = [
    pytest.param("models/base", "folder", "models/base", id="relative-folder"),
    pytest.param("./models/base", "folder", "models/base", id="dot-relative-folder"),
    pytest.param("{tmp}/models/base", "folder", "models/base", id="absolute-folder"),
    pytest.param("weights.bin", "file", "weights.bin", id="file"),
    pytest.param("org/name", "hub", None, id="hub-org-name"),
    pytest.param("gpt2", "hub", None, id="hub-name"),
    pytest.param("runs/typo", "missing", "runs/typo", id="org-name-whose-parent-exists"),
    pytest.param("./gone", "missing", "gone", id="dot-relative-missing"),
    pytest.param("a/b/c", "missing", "a/b/c", id="deeper-than-org-name"),
    pytest.param("{tmp}/gone", "missing", "gone", id="absolute-missing"),
]


def _value(raw: str, tmp: Path) -> str:
    return raw.replace("{tmp}", str(tmp))


@pytest.mark.parametrize(("raw", "kind", "rel"), CASES)
def test_local_or_hub(here: Path, raw: str, kind: str, rel: str | None) -> None:
    src = local_or_hub(_value(raw, here))
    if kind == "hub":
        assert src == raw and is_hub_id(raw)
    else:
        assert src == here / rel and src.is_absolute()


@pytest.mark.parametrize(("raw", "kind", "rel"), CASES)
def test_normalize_source_names_the_value_and_the_folder_tried(
    here: Path, raw: str, kind: str, rel: str | None
) -> None:
    value = _value(raw, here)
    if kind in ("folder", "hub"):
        assert normalize_source(value, "model") == (raw if kind == "hub" else here / rel)
        return
    with pytest.raises(InputError) as err:
        normalize_source(value, "model")
    message = str(err.value)
    assert repr(value) in message and str(here / rel) in message
    assert ("is a file" if kind == "file" else "does not exist") in message
    if raw == "runs/typo":
        assert "not a hub id" in message


@pytest.mark.parametrize(("raw", "kind", "rel"), CASES)
def test_lora_base_from_adapter_config_follows_the_rule(
    here: Path, raw: str, kind: str, rel: str | None
) -> None:
    value = _value(raw, here)
    if kind in ("folder", "hub"):
        assert _resolve_lora_base(here / "adapter", None, value) == normalize_source(value, "x")
        return
    with pytest.raises(InputError) as err:
        _resolve_lora_base(here / "adapter", None, value)
    message = str(err.value)
    assert str(here / "adapter") in message and "base=" in message
    assert repr(value) in message and str(here / rel) in message


def test_relative_paths_follow_root(here: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("elsewhere")
    (other / "base").mkdir()
    assert local_or_hub("base", root=other) == other.resolve() / "base"
    # the working directory is not consulted when a root is given
    assert local_or_hub("models/base", root=other) == "models/base"
    assert local_or_hub("./models/base", root=other) == other.resolve() / "models" / "base"
    assert local_or_hub("org/name", root=other) == "org/name"
    assert local_or_hub(str(here / "models"), root=other) == here / "models"


def test_path_objects_and_empty_values(here: Path) -> None:
    # a Path is always a path, never a hub id
    assert local_or_hub(Path("gpt2")) == here / "gpt2"
    with pytest.raises(InputError, match="does not exist"):
        normalize_source(Path("gpt2"), "model")
    with pytest.raises(InputError, match="empty"):
        local_or_hub("")
    assert local_or_hub("~") == Path(os.path.expanduser("~")).resolve()
    assert not is_hub_id("org/..") and not is_hub_id("../x") and not is_hub_id("a/b/c")


def test_bundled_names_follow_the_same_rule_everywhere(here: Path, minilm_path: Path) -> None:
    folder = minilm_path.resolve()
    # the API, the CLI and the study file all go through local_or_hub
    assert local_or_hub("bundled:minilm") == folder
    assert local_or_hub("bundled:minilm", root=here / "models") == folder
    assert normalize_source("bundled:minilm", "model") == folder
    assert source_in_folder("bundled:minilm", here / "models", "base") == folder
    with pytest.raises(InputError) as err:
        normalize_source("bundled:bert", "model")
    assert str(err.value) == "unknown bundled model 'bert' (bundled:bert); expected bundled:minilm"
    with pytest.raises(InputError, match="or bundled:minilm"):
        normalize_source("./no-such-model", "model")


def test_check_hub_passes_folders_and_fails_fast_offline(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_hub(here / "models" / "base", "model")  # a folder never needs the hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_hub(str(here / "models" / "base"), "tokenizer")  # nor one named by a string
    with pytest.raises(InputError, match="HF_HUB_OFFLINE is set, so it cannot be downloaded"):
        check_hub("someorg/no-such-model", "model")
