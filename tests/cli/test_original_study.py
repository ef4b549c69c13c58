"""`repdrift import` on a faithful replica of the original study's folders, then `repdrift
compare` on the standard runs it wrote.

The folders are written by the original extractor's calls (tests/_original_study.py) with the
real MiniLM as the base and a perturbed copy as the fine-tuned model, under the study's folder
names. Imported without the samples, compare reproduces the original analysis's biased CKA per
layer; with --task/--tokenizer the import pools over real tokens, and it refuses samples that
cannot be the ones the files were written from. compare itself refuses the original folders,
pointing to the import.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

from _original_study import (
    original_adapters,
    original_extractor,
    original_linear_cka,
    original_pooling,
    sst2_csv,
)
from _perturbed import perturb_blocks
from repdrift.cli import app
from repdrift.report import write_report
from repdrift.runner.experiment_file import parse_experiment
from repdrift.runner.study import execute, make_plan
from repdrift.store.reader import load_run

LAYERS = 6


@pytest.fixture(scope="module")
def tree(minilm_path: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("original")
    tok = AutoTokenizer.from_pretrained(minilm_path)
    base = AutoModel.from_pretrained(minilm_path).eval()
    tuned = AutoModel.from_pretrained(minilm_path).eval()
    perturb_blocks(tuned.encoder.layer[3:], 0.3)  # the upper blocks moved
    lora = get_peft_model(
        AutoModel.from_pretrained(minilm_path),
        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False),
    ).eval()
    folders = {
        "base": root / "base_representations/representations/base_pretrained_sst2",
        "full": root / "results/phase3_representations/sst2_full_finetune_seed42",
        "lora": root / "results/phase3_representations/sst2_lora_seed42",
    }
    masks = {}
    for key, model in (("base", base), ("full", tuned), ("lora", lora)):
        _, masks[key] = original_extractor(model, tok, folders[key], method=key)
    adapters = original_adapters(lora, folders["lora"])
    return {"root": root, "folders": folders, "mask": masks["base"], "adapters": adapters,
            "data": sst2_csv(root / "sst2.csv")}  # fmt: skip


def _import(tree: dict, out: Path, *extra: str) -> Path:
    result = CliRunner().invoke(app, ["import", str(tree["root"]), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out


def _compare(runs: Path, out: Path) -> pd.Series:
    result = CliRunner().invoke(
        app, ["compare", str(runs / "sst2_base"), str(runs / "sst2_full_seed42"), "--out",
              str(out), "-m", "cka_linear", "-m", "cka_debiased", "--n-boot", "20",
              "--n-perm", "20"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    drift = pd.read_parquet(out / "drift.parquet")
    return drift[drift.metric == "cka_linear"].set_index("layer").similarity


def _layer_file(tree: dict, key: str, i: int) -> Path:
    return tree["folders"][key] / "step_000000" / f"layer_{i}.pt"


def test_import_then_compare_reproduces_the_original_biased_cka(tree, tmp_path):
    """`repdrift import TREE --out runs`, then `repdrift compare`, as a user runs them."""
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    runs, out = tmp_path / "runs", tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "repdrift.cli", "import", str(tree["root"]), "--out", str(runs)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["sst2_base", "sst2_full_seed42", "sst2_lora_seed42"]  # fmt: skip
    run = load_run(runs / "sst2_full_seed42")  # a standard, verified run
    m = run.manifest
    assert (m.kind, m.task, m.model["training"]["seed"], m.pooling) == ("full", "sst2", 42, "mean_unmasked")  # fmt: skip
    assert m.extra["imported"]["from"] == str(tree["folders"]["full"] / "step_000000")
    assert run.layer_path(0).suffix == ".safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "repdrift.cli", "compare", str(runs / "sst2_base"),
         str(runs / "sst2_full_seed42"), "--out", str(out), "--n-boot", "20", "--n-perm", "20"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    drift = pd.read_parquet(out / "drift.parquet")
    ours = drift[drift.metric == "cka_linear"].set_index("layer").similarity
    for i in range(LAYERS):
        original = original_linear_cka(
            original_pooling(_layer_file(tree, "base", i)),
            original_pooling(_layer_file(tree, "full", i)),
        )
        assert ours[f"layer_{i}"] == pytest.approx(original, abs=1e-6)
    # the perturbed upper blocks moved: the comparison is not trivially 1
    assert ours["layer_5"] < 0.999
    # the report says how these layers were pooled
    page = html.unescape(write_report(out, tmp_path / "report.html").read_text())
    assert "mean_unmasked: the original study's unpooled layers averaged over every position" in page  # fmt: skip
    # importing again leaves the complete runs alone
    before = (runs / "sst2_base/step_000000/metadata.json").stat().st_mtime_ns
    _import(tree, runs)
    assert (runs / "sst2_base/step_000000/metadata.json").stat().st_mtime_ns == before


def test_compare_on_the_original_folders_points_to_the_import(tree, tmp_path):
    runs = [str(tree["folders"]["base"]), str(tree["folders"]["full"])]
    result = CliRunner().invoke(app, ["compare", *runs, "--out", str(tmp_path / "r")])
    assert result.exit_code != 0
    said = str(result.exception)
    assert "layer_0.pt" in said and "repdrift import" in said


def test_recovered_mask_pools_over_real_tokens(tree, minilm_path, tmp_path):
    runs = _import(tree, tmp_path / "masked", "--task", "sst2", "--tokenizer", str(minilm_path),
                   "--data", str(tree["data"]))  # fmt: skip
    ours = _compare(runs, tmp_path / "r")
    unmasked = _compare(_import(tree, tmp_path / "unmasked"), tmp_path / "u")
    mask = tree["mask"].numpy()

    def masked_mean(path: Path) -> np.ndarray:
        layer = torch.load(path, weights_only=True).double().numpy()
        return (layer * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)

    gaps = []
    for i in range(LAYERS):
        expected = original_linear_cka(
            masked_mean(_layer_file(tree, "base", i)), masked_mean(_layer_file(tree, "full", i))
        )
        assert ours[f"layer_{i}"] == pytest.approx(expected, abs=1e-6)
        gaps.append(abs(ours[f"layer_{i}"] - unmasked[f"layer_{i}"]))
    assert max(gaps) > 1e-3  # the mask changes the answer here
    manifest = load_run(runs / "sst2_base").manifest
    assert manifest.pooling == "mean" and manifest.tokenizer_sha256 and manifest.max_length == 128
    assert manifest.sample_ids == [str(i) for i in range(len(mask))]  # the file's idx column
    summary = (tmp_path / "r" / "results.json").read_text()
    assert '"pooling": "mean"' in summary and "mean_unmasked" not in summary
    assert "mean_unmasked" not in write_report(tmp_path / "r", tmp_path / "masked.html").read_text()


def test_samples_that_cannot_be_the_files_are_refused(tree, minilm_path, tmp_path):
    common = ["import", str(tree["root"]), "--out", str(tmp_path / "runs"), "--task", "sst2",
              "--tokenizer", str(minilm_path), "--data", str(tree["data"])]  # fmt: skip
    # a shorter max length than the extraction used: batch widths no sample reaches
    result = CliRunner().invoke(app, [*common, "--max-length", "6"])
    assert result.exit_code != 0
    said = str(result.exception)
    assert "layer_0.pt" in said and "hold no sample of" in said
    # the samples in another order
    shuffled = tmp_path / "shuffled.csv"
    lines = tree["data"].read_text().splitlines()
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    result = CliRunner().invoke(app, [*common[:-1], str(shuffled), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "base_pretrained_sst2" in str(result.exception)
    # half of the mask options
    result = CliRunner().invoke(app, [*common[:4], "--task", "sst2"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "go together" in result.output


def test_an_import_is_written_a_chunk_of_rows_at_a_time(tree, minilm_path, tmp_path, monkeypatch):
    """Memory does not grow with n: the run is written in chunks of rows of every layer, and
    the chunked import equals the one-chunk import exactly, masked or not; a refused mask
    writes nothing."""
    from repdrift.original_study import importer

    masked = ["--task", "sst2", "--tokenizer", str(minilm_path), "--data", str(tree["data"])]
    whole = {"unmasked": _import(tree, tmp_path / "whole"), "masked": _import(tree, tmp_path / "whole_m", *masked)}  # fmt: skip
    monkeypatch.setattr(importer, "IMPORT_CHUNK_ROWS", 7)
    chunked = {"unmasked": _import(tree, tmp_path / "chunked"), "masked": _import(tree, tmp_path / "chunked_m", *masked)}  # fmt: skip
    for how in ("unmasked", "masked"):
        for name in ("sst2_base", "sst2_full_seed42"):
            a, b = load_run(whole[how] / name), load_run(chunked[how] / name)
            n = len(a.sample_ids)
            assert n > 7 and b.manifest.chunk_size == 7 and b.manifest.n_samples == n
            for layer in a.layers:
                np.testing.assert_array_equal(a.layer(layer), b.layer(layer))
    refused = tmp_path / "refused"
    result = CliRunner().invoke(app, ["import", str(tree["root"]), "--out", str(refused), *masked, "--max-length", "6"])  # fmt: skip
    assert result.exit_code != 0 and "hold no sample of" in str(result.exception)
    assert not list(refused.rglob("*.safetensors")) and not list(refused.rglob("*.npy"))


def test_a_bad_tree_is_refused_naming_the_file(tree, tmp_path):
    broken = tmp_path / "tree/results/phase3_representations/sst2_full_finetune_seed1"
    (broken / "step_000000").mkdir(parents=True)
    (broken / "step_000000/layer_0.pt").write_bytes(b"not a tensor file")
    result = CliRunner().invoke(app, ["import", str(tmp_path / "tree"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code != 0 and "layer_0.pt" in str(result.exception)
    result = CliRunner().invoke(app, ["import", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code != 0 and "nothing" in str(result.exception)


def test_lora_matrices_are_imported_with_the_extractors_keys(tree, tmp_path):
    runs = _import(tree, tmp_path / "runs", "--lora-alpha", "8")
    step = runs / "sst2_lora_seed42/step_000000"
    load_run(step.parent)  # listed in the manifest and verified
    assert "adapter_weights/lora.safetensors" in json.loads((step / "metadata.json").read_text())["files"]  # fmt: skip
    with safe_open(step / "adapter_weights/lora.safetensors", framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
        for name, value in tree["adapters"].items():
            layer = name.split(".layer.")[1].split(".")[0]
            module = name.split(f".layer.{layer}.")[1].split(".lora_")[0]
            factor = "lora_A" if ".lora_A." in name else "lora_B"
            torch.testing.assert_close(f.get_tensor(f"layer_{layer}.{module}.{factor}"), value.float())  # fmt: skip
    assert len(keys) == len(tree["adapters"]) == 2 * 2 * LAYERS  # query and value, A and B
    assert meta["layer_0.attention.self.query.scaling"] == repr(8 / 4)
    assert not (runs / "sst2_full_seed42/step_000000/adapter_weights").exists()


def test_a_study_file_imports_the_tree_with_the_mask(tree, minilm_path, tmp_path):
    """`import: {runs, base, tokenizer}`: the runner imports into OUTPUT/runs, pooling over real
    tokens, and analyses the standard runs: the same numbers as `repdrift import --task
    --tokenizer` then `repdrift compare`."""
    root = tree["root"]
    exp = parse_experiment(
        {"name": "old", "tasks": [{"name": "sst2", "data": str(tree["data"])}], "seeds": [42],
         "output": str(tmp_path / "study"),
         "import": {"runs": str(root / "results/phase3_representations"),
                    "base": str(root / "base_representations/representations"),
                    "methods": ["full"], "tokenizer": str(minilm_path)},
         "analysis": {"metrics": ["cka_linear"], "n_boot": 20, "n_perm": 20, "weights": False}},
        root=tmp_path,
    )  # fmt: skip
    execute(make_plan(exp), progress=False)
    assert load_run(exp.runs_dir / "sst2_full_seed42").manifest.pooling == "mean"
    drift = pd.read_parquet(exp.results_dir / "drift.parquet").set_index("layer").similarity
    runs = _import(tree, tmp_path / "runs", "--task", "sst2", "--tokenizer", str(minilm_path),
                   "--data", str(tree["data"]))  # fmt: skip
    cli = _compare(runs, tmp_path / "r")
    for i in range(LAYERS):
        assert drift[f"layer_{i}"] == pytest.approx(cli[f"layer_{i}"], abs=1e-12)
