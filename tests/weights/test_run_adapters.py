"""`repdrift weights` on runs' adapters: a LoRA run extracted with repdrift and an original LoRA
run converted by `repdrift import` give the weight drift of the PEFT adapter they came from, on
real files (the bundled MiniLM, a real PEFT LoRA)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

import repdrift
from _original_study import original_adapters, original_extractor
from repdrift.cli import app
from repdrift.errors import InputError, IntegrityError
from repdrift.original_study import import_original
from repdrift.store.adapter_file import ADAPTER_FILE
from repdrift.weights import COLUMNS, module_deltas, weight_drift

# peft's get_peft_model calls a transformers API that warns about its own rename.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

RUN = "demo-sst_lora_seed3"
NUMBERS = [c for c in COLUMNS if c not in ("variant", "method", "module", "param", "shape")]


def _peft_lora(minilm_path: Path):
    torch.manual_seed(0)
    return get_peft_model(
        AutoModel.from_pretrained(minilm_path),
        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False),
    ).eval()


@pytest.fixture(scope="module")
def lora(minilm_path: Path, tmp_path_factory) -> dict:
    """A PEFT LoRA adapter folder and the run repdrift.extract wrote from it."""
    root = tmp_path_factory.mktemp("run_adapters")
    adapter = root / "adapter"
    _peft_lora(minilm_path).save_pretrained(adapter)
    run = repdrift.extract(
        str(adapter), base=str(minilm_path), task="demo-sst", samples=12, device="cpu",
        out=root / RUN, progress=False,
    )  # fmt: skip
    return {"root": root, "adapter": adapter, "run": Path(run), "base": minilm_path}


def _same_numbers(got: pd.DataFrame, want: pd.DataFrame) -> float:
    """Largest absolute difference of the numeric columns (rows in the same order)."""
    assert list(got.columns) == list(want.columns) == list(COLUMNS)
    for col in ("method", "layer", "module", "param", "shape"):
        assert list(got[col]) == list(want[col]), col
    a = got[NUMBERS].astype(float).to_numpy()
    b = want[NUMBERS].astype(float).to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    return float(np.nanmax(np.abs(a - b)))


def test_weights_on_an_extracted_run_equals_weights_on_its_peft_folder(lora):
    want = weight_drift(lora["base"], {"v": lora["adapter"]}, progress=False)
    got = weight_drift(lora["base"], {"v": lora["run"]}, progress=False)
    assert len(got) == 12 and set(got["module"]) == {"attention.self.query", "attention.self.value"}
    assert (got["method"] == "lora").all() and (got["lora_rank"] == 4).all()
    assert (got["lora_scale"] == 2.0).all()  # alpha / r = 8 / 4
    assert _same_numbers(got, want) <= 1e-6
    # the run is named by its labels; its step folder is the same run
    by_path = weight_drift(lora["base"], [lora["run"] / "step_000000"], progress=False)
    assert set(by_path["variant"]) == {RUN}
    assert _same_numbers(by_path, want) <= 1e-6


def test_weights_cli_reads_a_run_beside_a_peft_folder(lora, tmp_path):
    out = tmp_path / "weights.csv"
    args = ["--quiet", "weights", str(lora["base"]), str(lora["run"]), str(lora["adapter"])]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == list(COLUMNS)
    assert list(dict.fromkeys(table["variant"])) == [RUN, "adapter"]
    run, peft = (table[table["variant"] == v].reset_index(drop=True) for v in (RUN, "adapter"))
    assert np.allclose(run[NUMBERS].astype(float), peft[NUMBERS].astype(float), atol=1e-6,
                       equal_nan=True)  # fmt: skip


def test_a_changed_adapter_file_and_a_run_without_one_are_refused(lora, tmp_path, minilm_path):
    copy = tmp_path / RUN
    shutil.copytree(lora["run"], copy)
    path = copy / "step_000000" / ADAPTER_FILE
    tensors = load_file(path)
    first = next(iter(tensors))
    tensors[first] = tensors[first] * 2
    save_file(tensors, path)
    with pytest.raises(IntegrityError, match=r"sha256|size"):
        weight_drift(minilm_path, [copy], progress=False)
    base_run = repdrift.extract(
        str(minilm_path), task="demo-sst", samples=4, device="cpu", out=tmp_path / "demo-sst_base",
        progress=False,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"no adapter_weights/lora\.safetensors"):
        weight_drift(minilm_path, [base_run], progress=False)


@pytest.fixture(scope="module")
def original(minilm_path: Path, tmp_path_factory) -> dict:
    """An original LoRA run folder (layers and adapter matrices as the phase-3 script saved
    them) and the PEFT adapter of the same model."""
    root = tmp_path_factory.mktemp("original_lora")
    tok = AutoTokenizer.from_pretrained(minilm_path)
    model = _peft_lora(minilm_path)
    folder = root / "tree/results/phase3_representations/sst2_lora_seed42"
    original_extractor(model, tok, folder, method="lora")
    original_adapters(model, folder)
    model.save_pretrained(root / "adapter")
    return {"root": root, "tree": root / "tree", "adapter": root / "adapter"}


def test_an_imported_original_lora_run_gives_its_adapters_delta_w(original, minilm_path):
    (run,) = import_original(original["tree"], original["root"] / "runs", lora_alpha=8,
                             progress=False)  # fmt: skip
    want = {d.param: d for d in module_deltas(minilm_path, original["adapter"])}
    got = {d.param: d for d in module_deltas(minilm_path, run)}
    assert sorted(got) == sorted(want) and len(got) == 12
    worst = max(float((got[k].delta - want[k].delta).abs().max()) for k in got)
    assert worst <= 1e-6
    assert all(got[k].target.scale == want[k].target.scale == 2.0 for k in got)
    assert {d.variant for d in got.values()} == {"sst2_lora_seed42"}


def test_an_original_run_imported_without_alpha_is_refused_in_one_line(original, minilm_path):
    runs = original["root"] / "runs_no_alpha"
    (run,) = import_original(original["tree"], runs, progress=False)
    with pytest.raises(InputError, match="--lora-alpha") as err:
        weight_drift(minilm_path, [run], progress=False)
    assert "lora.safetensors" in str(err.value) and "\n" not in str(err.value)
    result = CliRunner().invoke(
        app, ["weights", str(minilm_path), str(run), "--out", str(runs / "w.csv")]
    )
    # the CLI's entry point prints an InputError as one line and exits 2
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    assert str(result.exception) == str(err.value)
    meta = json.loads((run / "step_000000" / "metadata.json").read_text())
    assert ADAPTER_FILE in meta["files"]
