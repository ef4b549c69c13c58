"""ExtractionOptions: one set of defaults and checks for the API, the CLI and experiment files."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from repdrift.errors import InputError
from repdrift.extraction.api import extract
from repdrift.extraction.options import ExtractionOptions
from repdrift.store.reader import load_run


def test_defaults() -> None:
    options = ExtractionOptions()
    assert options.model_dump() == {
        "pooling": "mean",
        "layers": None,
        "batch_size": 32,
        "max_tokens": None,
        "dtype": "auto",
        "device": "auto",
        "device_map": None,
        "max_memory": None,
        "offload_folder": None,
        "format": "safetensors",
        "trust_remote_code": False,
        "final_norm": True,
    }
    assert ExtractionOptions.build() == options
    assert pickle.loads(pickle.dumps(options)) == options  # travels to Ray workers
    with pytest.raises(ValidationError):
        options.pooling = "max"  # type: ignore[misc]  # immutable: copies are validated


def test_normalised_values() -> None:
    options = ExtractionOptions(layers=3, dtype="bf16", device=torch.device("cpu"))
    assert options.layers == [3] and options.dtype == "bfloat16" and options.device == "cpu"
    assert ExtractionOptions(dtype=torch.float16).dtype == "float16"
    assert ExtractionOptions(layers=("embeddings", 0)).layers == ["embeddings", 0]
    assert ExtractionOptions(layers="all").layers == "all"


def test_unknown_pooling_names_the_value() -> None:
    with pytest.raises(ValidationError, match=r"pooling='median' is not one of mean, first"):
        ExtractionOptions(pooling="median")
    with pytest.raises(InputError, match=r"pooling='median' is not one of mean, first"):
        ExtractionOptions.build(pooling="median")


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "many"])
def test_bad_batch_size_is_refused(bad) -> None:
    with pytest.raises(InputError, match=r"batch_size=") as info:
        ExtractionOptions.build(batch_size=bad)
    assert repr(bad) in str(info.value)
    with pytest.raises(ValidationError, match="batch_size"):
        ExtractionOptions(batch_size=bad)


def test_other_bad_settings_are_named() -> None:
    with pytest.raises(InputError, match=r"max_tokens=0"):
        ExtractionOptions.build(max_tokens=0)
    with pytest.raises(InputError, match=r"format='npz' is not 'safetensors' or 'pt'"):
        ExtractionOptions.build(format="npz")
    with pytest.raises(InputError, match=r"unknown dtype 'fp8'"):
        ExtractionOptions.build(dtype="fp8")
    with pytest.raises(InputError, match=r"unknown extraction setting 'poolng' \(did you mean 'pooling'\?\)"):  # fmt: skip
        ExtractionOptions.build(poolng="first")
    with pytest.raises(InputError) as info:  # every problem, one line each
        ExtractionOptions.build(pooling="avg", batch_size=0)
    assert len(str(info.value).splitlines()) == 2


def test_updated_replaces_what_is_given() -> None:
    base = ExtractionOptions(pooling="first", layers=[1, 2], batch_size=8)
    assert base.updated() is base
    assert base.updated(pooling=None, layers=None) == base  # None keeps
    changed = base.updated(pooling="max", max_tokens=256)
    assert (changed.pooling, changed.layers, changed.batch_size, changed.max_tokens) == (
        "max", [1, 2], 8, 256,
    )  # fmt: skip
    assert base.pooling == "first"  # the original is untouched


def test_extract_refuses_bad_settings_before_loading(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"pooling='avg'"):
        extract(tmp_path / "no-such-model", task="demo-sst", out=tmp_path / "r", pooling="avg")
    with pytest.raises(InputError, match=r"batch_size=0"):
        extract(tmp_path / "no-such-model", task="demo-sst", out=tmp_path / "r", batch_size=0)
    assert not (tmp_path / "r").exists()


def test_keywords_and_options_write_identical_layer_files(
    minilm_path: Path, tmp_path: Path
) -> None:
    common = {"task": "demo-sst", "samples": 6, "device": "cpu", "progress": False}
    by_keywords = extract(minilm_path, out=tmp_path / "kw", pooling="first", layers=[0, 5], **common)
    options = ExtractionOptions(pooling="first", layers=[0, 5], device="cpu")
    by_options = extract(
        minilm_path, out=tmp_path / "opt", options=options, task="demo-sst", samples=6, progress=False
    )
    a, b = load_run(by_keywords), load_run(by_options)
    assert a.manifest.pooling == b.manifest.pooling == "first"
    assert a.layers == b.layers == ["layer_0", "layer_5"]
    for name in a.layers:
        file = a.manifest.layer_file(name)
        assert a.manifest.files[file] == b.manifest.files[file]  # same sha256 and size
        assert (by_keywords / "step_000000" / file).read_bytes() == (
            by_options / "step_000000" / file
        ).read_bytes()
    # a keyword given with options replaces that field only
    mixed = extract(minilm_path, out=tmp_path / "mixed", options=options, pooling="mean", **common)
    m = load_run(mixed)
    assert m.manifest.pooling == "mean" and m.layers == ["layer_0", "layer_5"]
