"""A user's own CSV with custom column names and long texts, from the CLI, the API and a study.

The first hour of a real user: `review_text` is no column name repdrift knows, ids live in
`uid`, and 400-word reviews need more than the GLUE budget of 128 tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import repdrift
from repdrift.cli.commands import app
from repdrift.runner import make_plan, parse_experiment
from repdrift.runner.dispatch import run_job
from repdrift.store.reader import load_run

WORDS = "the film plot actors scene story ending was is not very good bad slow delight".split()


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n_words = [400, 12, 250, 30, 400, 5]
    df = pd.DataFrame({
        "uid": [f"r{i:03d}" for i in range(len(n_words))],
        "review_text": [" ".join(rng.choice(WORDS, size=k)) for k in n_words],
        "stars": [5, 1, 4, 2, 3, 5],
    })  # fmt: skip
    path = tmp_path_factory.mktemp("data") / "reviews.csv"
    df.to_csv(path, index=False)
    return path


def _manifest(run: Path) -> dict:
    return json.loads((run / "step_000000" / "metadata.json").read_text())


def _check(run: Path) -> None:
    loaded = load_run(run)
    assert loaded.sample_ids == [f"r{i:03d}" for i in range(6)]
    assert loaded.layer(5).shape == (6, 384)
    manifest = _manifest(run)
    assert manifest["max_length"] == 512


def test_cli_with_own_columns_and_budget(reviews, minilm_path, tmp_path):
    run = tmp_path / "cli_run"
    result = CliRunner().invoke(app, [
        "--quiet", "extract", str(minilm_path), "--task", "reviews", "--data", str(reviews),
        "--text-fields", "review_text", "--id-field", "uid", "--label-field", "stars",
        "--max-length", "512", "--split", "all", "--out", str(run), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    _check(run)


def test_unknown_columns_fail_before_the_model_loads(reviews, tmp_path):
    # a model path that does not exist: the data error must come first
    with pytest.raises(repdrift.InputError, match=r"reviews.csv.*review_text.*--text-fields"):
        repdrift.extract(tmp_path / "no-model", task="reviews", data=reviews, out=tmp_path / "x")


def test_api_and_study_give_the_same_run(reviews, minilm_path, tmp_path):
    api_run = repdrift.extract(
        str(minilm_path), task="reviews", data=reviews, out=tmp_path / "api_run",
        text_fields=["review_text"], id_field="uid", max_length=512, device="cpu", progress=False,
        split="all",
    )  # fmt: skip
    _check(api_run)
    exp = parse_experiment(
        {"name": "own", "base_model": str(minilm_path), "samples": 6, "seeds": [1],
         "tasks": [{"name": "reviews", "data": str(reviews), "text_fields": ["review_text"],
                    "id_field": "uid", "max_length": 512, "split": "all"}],
         "variants": [{"method": "full", "path": str(minilm_path)}],
         "extraction": {"device": "cpu"}, "output": "out"},
        root=tmp_path,
    )  # fmt: skip
    base_job = next(j for j in make_plan(exp).jobs if j.method == "base")
    run_job(base_job, progress=False)  # the extraction job the study runs for this task
    study_run = exp.runs_dir / "reviews_base"
    _check(study_run)
    for i in range(6):  # same samples, same token budget, same representations
        np.testing.assert_array_equal(load_run(study_run).layer(i), load_run(api_run).layer(i))


def test_train_on_own_columns_from_the_cli(reviews, minilm_path, tmp_path):
    out = tmp_path / "lora"
    result = CliRunner().invoke(app, [
        "--quiet", "train", "--task", "reviews", "--method", "lora", "--model", str(minilm_path),
        "--data", str(reviews), "--text-fields", "review_text", "--id-field", "uid",
        "--label-field", "stars", "--max-length", "256", "--max-steps", "1", "--batch-size", "2",
        "--out", str(out), "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads((out / "repdrift_training.json").read_text())
    assert record["arguments"]["text_fields"] == ["review_text"]
    assert record["arguments"]["label_field"] == "stars" and record["arguments"]["max_length"] == 256
