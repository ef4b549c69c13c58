"""The embedded demo: its study file, and the reduced study end to end through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from repdrift.demo import DEMO_YAML, QUICK, demo_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "COLUMNS": "200"}  # fmt: skip


def test_examples_demo_yaml_is_the_embedded_study() -> None:
    assert (EXAMPLES / "demo.yaml").read_text() == DEMO_YAML


def test_demo_study(tmp_path: Path, minilm_path: Path) -> None:
    exp = demo_experiment(tmp_path / "d")
    assert exp.task_names == ["demo-sst", "demo-pair"]
    assert len(exp.seeds) == 3 and {v.method for v in exp.variants} == {"full", "lora"}
    assert Path(exp.base_model).resolve() == minilm_path.resolve()
    assert exp.train is not None and exp.analysis.weights
    # models live in the output folder, so --out moves everything
    assert exp.variant_path(exp.variants[1], "demo-sst", 2) == tmp_path / "d/models/demo-sst_lora_seed2"  # fmt: skip
    quick = demo_experiment(tmp_path / "q", quick=True)
    assert quick.task_names == QUICK["tasks"] and quick.samples == QUICK["samples"]
    assert quick.train.max_steps == QUICK["train"]["max_steps"] < exp.train.max_steps
    assert yaml.safe_load(DEMO_YAML)["output"] == "repdrift-demo"


def test_demo_trains_with_the_demo_recipe(tmp_path: Path) -> None:
    from repdrift.training.settings import DEMO_RECIPE

    exp = demo_experiment(tmp_path)
    for method, recipe in DEMO_RECIPE.items():
        settings = exp.train.for_method(method)
        args = {**settings.model_dump(), "lr": settings.learning_rate(method)}
        assert {k: args[k] for k in recipe} == recipe


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    return float(np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "repdrift.cli", "demo", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stdout = " ".join(proc.stdout.split())
    assert "report:" in stdout and "demo finished in" in stdout
    assert "demo-sst: lora drifts" in stdout

    report = out / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
    assert any((out / "figures").glob("*.png"))
    drift = pd.read_parquet(out / "results/drift.parquet")
    weights = pd.read_csv(out / "results/weights.csv")

    # the drift table holds what a plain CKA of the stored layers gives
    base = load_file(str(out / "runs/demo-sst_base/step_000000/layer_5.safetensors"))["pooled"]
    full = load_file(str(out / "runs/demo-sst_full_seed1/step_000000/layer_5.safetensors"))["pooled"]  # fmt: skip
    row = drift[(drift.run == "demo-sst_full_seed1") & (drift.layer == "layer_5")
                & (drift.metric == "cka_linear")].iloc[0]  # fmt: skip
    assert row.similarity == pytest.approx(linear_cka(base.astype(float), full.astype(float)), rel=1e-9)  # fmt: skip
    assert len(base) == QUICK["samples"]

    # full fine-tuning changed the model: drift > 0 in the top layers, every seed
    top = drift[
        (drift.method == "full") & (drift.layer_index >= 4) & (drift.metric == "cka_linear")
    ]
    assert len(top) == 3 * 2 and (top.drift > 1e-4).all()  # 3 seeds × layers 4, 5
    assert not np.allclose(base, full)
    # LoRA trained its adapter (B starts at zero) and changed the adapted weights
    lora = load_file(str(out / "runs/demo-sst_lora_seed1/step_000000/adapter_weights/lora.safetensors"))  # fmt: skip
    b_norms = [np.abs(v).max() for k, v in lora.items() if k.endswith("lora_B")]
    assert len(b_norms) == 12 and min(b_norms) > 0  # query and value in 6 blocks
    lora_rows = weights[weights.method == "lora"]
    assert len(lora_rows) > 0 and (lora_rows.rel_change > 0).all()
    assert (weights[weights.method == "full"].rel_change > 0).any()

    # the headline is computed from the tables
    from repdrift.analysis.headline import headline
    from repdrift.store.results import load_results

    h = headline(load_results(out / "results"))
    final = drift[(drift.metric == h.metric) & (drift.layer_index >= 0)]
    assert h.mean_drift.loc["demo-sst", "full"] == pytest.approx(final[final.method == "full"].drift.mean())  # fmt: skip
    assert set(h.accuracy.columns) == {"full", "lora"}

    # a second run reuses everything
    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "jobs run: 0, already done: 13" in again.stdout  # base + 2 methods × 3 seeds × 2
    assert "analysis: up to date, weights: up to date, figures: up to date, report: up to date" in again.stdout  # fmt: skip
    # ... and says so, instead of "demo finished in 0 s"
    again_words = " ".join(again.stdout.split())
    assert "demo finished in" not in again_words
    assert "demo: nothing left to do; reused the 13 finished job(s) (models and runs) and the results, figures and report in" in again_words  # fmt: skip
