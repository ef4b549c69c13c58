"""`repdrift compare` on a faithful replica of the original study's unpooled folders.

Both folders are written by the original extractor's calls (tests/_original_study.py) with the
real MiniLM as the base and a perturbed copy as the fine-tuned model, under the study's folder
names. Without options compare reproduces the original analysis's biased CKA per layer; with
--task/--tokenizer it pools over real tokens, and it refuses samples that cannot be the ones
the files were written from.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

from _original_study import original_extractor, original_linear_cka, original_pooling, sst2_csv
from _perturbed import perturb_blocks
from repdrift.cli import app
from repdrift.report import write_report
from repdrift.runner.experiment_file import parse_experiment
from repdrift.runner.study import execute, make_plan

LAYERS = 6


@pytest.fixture(scope="module")
def tree(minilm_path: Path, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("original")
    tok = AutoTokenizer.from_pretrained(minilm_path)
    base = AutoModel.from_pretrained(minilm_path).eval()
    tuned = AutoModel.from_pretrained(minilm_path).eval()
    perturb_blocks(tuned.encoder.layer[3:], 0.3)  # the upper blocks moved
    folders = {
        "base": root / "base_representations/representations/base_pretrained_sst2",
        "full": root / "results/phase3_representations/sst2_full_finetune_seed42",
    }
    masks = {}
    for key, model in (("base", base), ("full", tuned)):
        _, masks[key] = original_extractor(model, tok, folders[key], method=key)
    return {"folders": folders, "mask": masks["base"], "data": sst2_csv(root / "sst2.csv")}


def _compare(tree: dict, out: Path, *extra: str) -> pd.DataFrame:
    runs = [str(tree["folders"]["base"]), str(tree["folders"]["full"])]
    result = CliRunner().invoke(
        app, ["compare", *runs, "--out", str(out), "-m", "cka_linear", "-m", "cka_debiased",
              "--n-boot", "20", "--n-perm", "20", *extra],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    drift = pd.read_parquet(out / "drift.parquet")
    return drift[drift.metric == "cka_linear"].set_index("layer").similarity


def _layer_file(tree: dict, key: str, i: int) -> Path:
    return tree["folders"][key] / "step_000000" / f"layer_{i}.pt"


def test_reproduces_the_original_biased_cka_and_names_the_mask_option(tree, tmp_path):
    """`repdrift compare base_pretrained_sst2 sst2_full_finetune_seed42`, as a user runs it."""
    out = tmp_path / "r"
    proc = subprocess.run(
        [sys.executable, "-m", "repdrift.cli", "compare", str(tree["folders"]["base"]),
         str(tree["folders"]["full"]), "--out", str(out), "--n-boot", "20", "--n-perm", "20"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "mean_unmasked" in said and "--task, --tokenizer and --max-length" in said
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


def test_recovered_mask_pools_over_real_tokens(tree, minilm_path, tmp_path):
    ours = _compare(tree, tmp_path / "r", "--task", "sst2", "--tokenizer", str(minilm_path),
                    "--data", str(tree["data"]))  # fmt: skip
    mask = tree["mask"].numpy()
    unmasked = _compare(tree, tmp_path / "u")

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
    summary = (tmp_path / "r" / "results.json").read_text()
    assert '"pooling": "mean"' in summary and "mean_unmasked" not in summary
    assert "mean_unmasked" not in write_report(tmp_path / "r", tmp_path / "masked.html").read_text()


def test_samples_that_cannot_be_the_files_are_refused(tree, minilm_path, tmp_path):
    runs = [str(tree["folders"]["base"]), str(tree["folders"]["full"])]
    common = ["compare", *runs, "--out", str(tmp_path / "r"), "-m", "cka_linear",
              "--n-boot", "0", "--n-perm", "0", "--task", "sst2", "--tokenizer", str(minilm_path),
              "--data", str(tree["data"])]  # fmt: skip
    # a shorter max length than the extraction used: batch widths no sample reaches
    result = CliRunner().invoke(app, [*common, "--max-length", "6"])
    assert result.exit_code != 0
    said = str(result.exception)
    assert "layer_0.pt" in said and "hold no sample of" in said
    # the samples in another order
    shuffled = tmp_path / "shuffled.csv"
    lines = tree["data"].read_text().splitlines()
    shuffled.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    result = CliRunner().invoke(app, [*common[:-1], str(shuffled)])
    assert result.exit_code != 0 and "base_pretrained_sst2" in str(result.exception)
    # mask options without unpooled runs, or half of them
    result = CliRunner().invoke(app, [*common[:11], "--task", "sst2"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "go together" in result.output


def test_a_study_file_imports_the_tree_with_the_mask(tree, minilm_path, tmp_path):
    """`import: {runs, base, tokenizer}`: the runner pools the unpooled runs over real tokens,
    the same numbers as `compare --task --tokenizer`."""
    root = tree["folders"]["full"].parents[2]
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
    drift = pd.read_parquet(exp.results_dir / "drift.parquet").set_index("layer").similarity
    cli = _compare(tree, tmp_path / "r", "--task", "sst2", "--tokenizer", str(minilm_path),
                   "--data", str(tree["data"]))  # fmt: skip
    for i in range(LAYERS):
        assert drift[f"layer_{i}"] == pytest.approx(cli[f"layer_{i}"], abs=1e-12)
