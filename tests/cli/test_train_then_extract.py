"""Train on your own CSV, then extract, from the CLI: what the model is, and which rows it saw.

Issue 20, cases 2 and 3: a full fine-tune extracted without ``--base`` is a fine-tune of the
base its training record names (kind ``full``, lineage checked by ``compare``); one data file is
split the same way by ``train`` and ``extract`` (a seeded held-out part, recorded in both),
extracting rows the model was trained on is warned about with the count, and labels 1-5 are
five classes with the mapping recorded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from repdrift.cli.commands import app
from repdrift.errors import InputError
from repdrift.models.sources import hash_weights
from repdrift.tasks import splits
from repdrift.tasks.samples import load_samples

pytestmark = pytest.mark.slow  # a 1-step fine-tune of MiniLM and a few tiny extractions

WORDS = "the film plot actors scene story ending was is not very good bad slow delight".split()
N_ROWS = 40
COLUMNS = ["--text-fields", "review_text", "--id-field", "uid", "--max-length", "64"]


def _invoke(*args: str):
    return CliRunner().invoke(app, [*args, "--device", "cpu"])


def _said(result) -> str:
    """The command's output, and its error as the CLI prints it, with rich's wrapping undone."""
    error = f"error: {result.exception}" if isinstance(result.exception, InputError) else ""
    return " ".join(f"{result.output} {error}".split())


def _manifest(run: Path) -> dict:
    return json.loads((run / "step_000000" / "metadata.json").read_text())


@pytest.fixture(scope="module")
def study(tmp_path_factory, minilm_path) -> dict[str, Path]:
    """reviews.csv (40 rows, labels in `stars` 1-5) and a full fine-tune trained on it."""
    root = tmp_path_factory.mktemp("own_study")
    rng = np.random.default_rng(0)
    pd.DataFrame({
        "uid": [f"r{i:03d}" for i in range(N_ROWS)],
        "review_text": [" ".join(rng.choice(WORDS, size=int(k))) for k in rng.integers(4, 30, N_ROWS)],
        "stars": [1 + i % 5 for i in range(N_ROWS)],
    }).to_csv(root / "reviews.csv", index=False)  # fmt: skip
    model = root / "models" / "reviews_full_seed2"
    result = _invoke(
        "train", "--task", "reviews", "--method", "full", "--model", str(minilm_path),
        "--data", str(root / "reviews.csv"), *COLUMNS, "--label-field", "stars", "--seed", "2",
        "--max-steps", "1", "--batch-size", "4", "--out", str(model),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"root": root, "data": root / "reviews.csv", "model": model, "base": minilm_path}


def _extract(study, model: Path | str, out: Path, *more: str):
    return _invoke(
        "extract", str(model), "--task", "reviews", "--data", str(study["data"]), *COLUMNS,
        "--out", str(out), *more,
    )  # fmt: skip


# ------------------------------------------------------------------ case 2: what a model is


def test_a_fine_tune_without_base_is_full_of_its_recorded_base(study, tmp_path):
    ft_run, with_base = tmp_path / "reviews_full_seed2", tmp_path / "with_base"
    result = _extract(study, study["model"], ft_run)
    assert result.exit_code == 0, result.output
    said = _said(result)
    assert "loaded full fine-tune" in said and "from its training record" in said
    assert "loaded base model" not in said
    manifest = _manifest(ft_run)
    assert manifest["kind"] == "full"
    base = study["base"].resolve()
    assert manifest["model"]["base"] == str(base)
    assert manifest["model"]["base_weights_sha256"] == hash_weights(base)[0]
    # exactly what an extraction given --base records
    result = _extract(study, study["model"], with_base, "--base", str(study["base"]))
    assert result.exit_code == 0, result.output
    assert "(from --base)" in _said(result)
    given = _manifest(with_base)
    assert given["kind"] == "full"
    for key in ("base", "base_weights_sha256", "weights_sha256"):
        assert given["model"][key] == manifest["model"][key]

    # compare checks the lineage against the base run: no "lineage not checked", no relabelling
    base_run = tmp_path / "reviews_base"
    assert _extract(study, study["base"], base_run).exit_code == 0
    assert _manifest(base_run)["kind"] == "base"
    result = _invoke("compare", str(base_run), str(ft_run), "--out", str(tmp_path / "results"),
                     "--n-boot", "0", "--n-perm", "0", "--metric", "cka_linear")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = (tmp_path / "results" / "results.json").read_text()
    assert "lineage not checked" not in results and "recorded as a base run" not in results
    assert "lineage not checked" not in _said(result)


def test_a_relative_recorded_base_is_read_against_the_model_folder(study, tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(study["model"], models / "ft")
    (models / "base").symlink_to(study["base"].resolve(), target_is_directory=True)
    record_path = models / "ft" / "repdrift_training.json"
    record = json.loads(record_path.read_text())
    record["base_model"] = "../base"
    record_path.write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)  # "../base" from here would be tmp_path's parent's base
    result = _extract(study, models / "ft", tmp_path / "run", "--layers", "0")
    assert result.exit_code == 0, result.output
    assert _manifest(tmp_path / "run")["model"]["base"] == str((models / "base").resolve())


def test_a_recorded_base_that_is_gone_names_the_record_the_base_and_base_option(study, tmp_path):
    moved = tmp_path / "ft"
    shutil.copytree(study["model"], moved)
    record_path = moved / "repdrift_training.json"
    record = json.loads(record_path.read_text())
    record["base_model"] = str(tmp_path / "deleted_base")
    record_path.write_text(json.dumps(record))
    result = _extract(study, moved, tmp_path / "run")
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    said = _said(result)
    assert f"is a fine-tune of '{tmp_path / 'deleted_base'}'" in said
    assert f"training record {record_path}" in said and "--base" in said
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "step_000000" / "metadata.json").exists()


# ------------------------------------------------------------ case 3: which rows it saw


def test_train_and_extract_agree_on_a_held_out_part_of_one_file(study, tmp_path, monkeypatch):
    monkeypatch.setattr(splits, "_LOGGED", set())  # the split is stated once per process
    record = json.loads((study["model"] / "repdrift_training.json").read_text())
    held = record["held_out"]
    assert held["part"] == "train" and held["seed"] == 0
    assert (held["rows_in_file"], held["train_rows"], held["validation_rows"]) == (40, 32, 8)
    assert record["train_samples"] == 32 and record["validation_samples"] == 8

    run = tmp_path / "run"
    result = _extract(study, study["model"], run)
    assert result.exit_code == 0, result.output
    assert "split by repdrift (32 train, 8 validation; seed 0): reading 'validation'" in _said(
        result
    )
    manifest = _manifest(run)
    assert manifest["split"] == "validation" and len(manifest["sample_ids"]) == 8
    assert manifest["data"]["held_out"] == {**held, "part": "validation"}
    trained = load_samples("reviews", data=study["data"], split="train", n=None,
                           text_fields=["review_text"], id_field="uid")  # fmt: skip
    assert not set(manifest["sample_ids"]) & set(trained.ids)
    assert manifest["extra"]["trained_samples"]["seen"] == 0
    assert "was trained on" not in _said(result)  # nothing to warn about


def test_extracting_rows_the_model_was_trained_on_is_warned_with_the_count(study, tmp_path):
    run = tmp_path / "run"
    result = _extract(study, study["model"], run, "--split", "all", "--layers", "0")
    assert result.exit_code == 0, result.output
    said = _said(result)
    assert "32 of the 40 samples (task reviews, split 'all'" in said
    assert "are samples" in said and "was trained on" in said
    assert "--split validation" in said
    seen = _manifest(run)["extra"]["trained_samples"]
    assert (seen["seen"], seen["of"], seen["trained_on"]) == (32, 40, 32)


def test_another_split_of_one_file_is_refused_in_cli_words(study, tmp_path):
    result = _extract(study, study["base"], tmp_path / "run", "--split", "test")
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    said = _said(result)
    assert "split 'test' of data file" in said and "'train' and 'validation'" in said
    assert "'all'" in said and "--split" in said


def test_labels_one_to_five_are_five_classes_and_the_mapping_is_recorded(study):
    record = json.loads((study["model"] / "repdrift_training.json").read_text())
    assert record["labels"] == ["1", "2", "3", "4", "5"]
    assert record["label2id"] == {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4}
    assert record["label_field"] == "stars"
    config = json.loads((study["model"] / "config.json").read_text())
    assert config["id2label"] == {"0": "1", "1": "2", "2": "3", "3": "4", "4": "5"}
    assert config["label2id"] == record["label2id"]


def test_no_label_column_names_the_label_field_option(study, tmp_path):
    result = _invoke(
        "train", "--task", "reviews", "--method", "lora", "--model", str(study["base"]),
        "--data", str(study["data"]), *COLUMNS, "--max-steps", "1", "--out", str(tmp_path / "m"),
    )  # fmt: skip
    assert result.exit_code != 0 and isinstance(result.exception, InputError)
    said = _said(result)
    assert "has no label column" in said and "--label-field" in said
    assert not (tmp_path / "m").exists()
