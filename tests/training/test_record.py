"""The training record and the resume checks: a finished identical training is reused, other
settings or foreign files are refused, an unfinished one of ours starts over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repdrift.common.naming import checkpoint_name
from repdrift.errors import InputError
from repdrift.models.training_record import TRAINED_SAMPLES, TRAINING_RECORD, read_training_record
from repdrift.tasks.settings import SampleSettings
from repdrift.training.record import (
    arguments,
    check_variant,
    loss_summary,
    previous_run,
    weights_present,
    write_record,
    write_trained_samples,
)
from repdrift.training.settings import TrainingSettings

ARGS = {
    "task": "demo-sst", "method": "lora", "seed": 1, "data": None, "batch_size": 16, "rank": 8,
    "alpha": 16, "max_steps": 30, "max_train_samples": None, "save_steps": None, "epochs": None,
    "lr": 1e-3, "dropout": 0.05, "target_modules": None,
}  # fmt: skip


def _finished(out: Path, arguments: dict, weights: str = "adapter_model.safetensors") -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / weights).write_bytes(b"w")
    write_record(out, {"task": "demo-sst", "method": "lora", "seed": 1, "complete": True,
                       "arguments": arguments})  # fmt: skip


def test_record_round_trips_and_is_sorted_json(tmp_path: Path) -> None:
    write_record(tmp_path, {"seed": 1, "task": "t", "method": "full", "note": "é"})
    text = (tmp_path / TRAINING_RECORD).read_text(encoding="utf-8")
    assert text.endswith("\n") and "é" in text  # not \u-escaped
    assert list(json.loads(text)) == ["method", "note", "seed", "task"]
    assert read_training_record(tmp_path) == {"seed": 1, "task": "t", "method": "full", "note": "é"}


def test_trained_sample_hashes_are_uint64(tmp_path: Path) -> None:
    hashes = np.array([2**63 + 5, 1, 0], dtype=np.uint64)
    write_trained_samples(tmp_path, hashes)
    got = np.load(tmp_path / TRAINED_SAMPLES, allow_pickle=False)
    assert got.dtype == np.uint64 and got.tolist() == hashes.tolist()


def test_a_new_or_empty_out_is_not_a_previous_run(tmp_path: Path) -> None:
    assert previous_run(tmp_path / "new", ARGS) is False
    (tmp_path / "empty").mkdir()
    assert previous_run(tmp_path / "empty", ARGS) is False


def test_an_identical_finished_training_is_reused(tmp_path: Path) -> None:
    _finished(tmp_path / "o", ARGS)
    assert previous_run(tmp_path / "o", dict(ARGS)) is True


def test_finished_without_its_weights_is_trained_again(tmp_path: Path) -> None:
    _finished(tmp_path / "o", ARGS, weights="model.safetensors")  # a full run's file, not LoRA's
    assert not weights_present(tmp_path / "o", "lora") and weights_present(tmp_path / "o", "full")
    assert previous_run(tmp_path / "o", ARGS) is False


def test_other_settings_are_refused_and_named(tmp_path: Path) -> None:
    _finished(tmp_path / "o", ARGS)
    with pytest.raises(InputError, match=r"lr: 0\.001 -> 0\.002.*seed: 1 -> 2"):
        previous_run(tmp_path / "o", {**ARGS, "lr": 2e-3, "seed": 2})
    # a setting an older record lacks counts as None then
    old = {k: v for k, v in ARGS.items() if k != "save_steps"}
    _finished(tmp_path / "old", old)
    assert previous_run(tmp_path / "old", ARGS) is True
    with pytest.raises(InputError, match=r"save_steps: None -> 5"):
        previous_run(tmp_path / "old", {**ARGS, "save_steps": 5})


def test_foreign_files_and_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=f"no {TRAINING_RECORD}"):
        previous_run(tmp_path / "o", ARGS)
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine"
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        previous_run(tmp_path / "f", ARGS)


def test_an_unfinished_run_drops_only_its_own_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "o"
    out.mkdir()
    write_record(out, {"task": "demo-sst", "method": "lora", "seed": 1, "complete": False})
    ours, foreign = out / checkpoint_name(10), out / checkpoint_name(20)
    for folder in (ours, foreign, out / "checkpoint-final"):
        folder.mkdir()
    write_record(ours, {"task": "demo-sst", "method": "lora", "seed": 1})
    assert previous_run(out, ARGS) is False
    assert not ours.exists()  # ours: removed; without a record or not checkpoint-N: kept
    assert foreign.is_dir() and (out / "checkpoint-final").is_dir()


@pytest.mark.parametrize(
    ("method", "seed", "task", "match"),
    [
        ("qlora", 1, "demo-sst", "unknown method 'qlora'"),
        ("lora", True, "demo-sst", "seed must be an integer, got True"),
        ("lora", 1.5, "demo-sst", "seed must be an integer, got 1.5"),
        ("lora", 1, "nope", "unknown task 'nope'.*data="),
    ],
)
def test_a_bad_variant_is_named(method: str, seed: object, task: str, match: str) -> None:
    check_variant(SampleSettings(task="demo-sst"), "lora", 1)
    check_variant(SampleSettings(task="own", data="reviews.csv"), "full", 0)  # needs data
    with pytest.raises(InputError, match=match):
        check_variant(SampleSettings(task=task), method, seed)


def test_the_recorded_arguments_keep_their_format(tmp_path: Path) -> None:
    """The record's ``arguments`` are those every earlier version wrote (same keys, same
    values), so a folder trained before the settings object is reused, not refused."""
    samples = SampleSettings(task="demo-sst", split="train", n=None, seed=0)
    settings = TrainingSettings(max_steps=30)
    lora = arguments(samples, "lora", 1, settings, "base")
    assert lora == {**ARGS, "model": "base", "held_out": None, "text_fields": None,
                    "id_field": None, "label_field": None, "max_length": None}  # fmt: skip
    full = arguments(samples, "full", 1, settings.updated(lr={"full": 2e-4}), "base")
    assert full["lr"] == 2e-4 and full["rank"] is full["alpha"] is full["dropout"] is None
    # an old record of these settings: reused
    _finished(tmp_path / "old", lora)
    assert previous_run(tmp_path / "old", lora) is True
    # the data and its columns, as trained on: the file resolved, its held-out rule recorded
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\na,0\n")
    own = SampleSettings(task="own", data=data, text_fields="text", max_length=64)
    got = arguments(own, "lora", 1, TrainingSettings(target_modules="value,query"), "base")
    assert got["data"] == str(data.resolve()) and got["held_out"] is not None
    assert got["text_fields"] == ["text"] and got["max_length"] == 64
    assert got["target_modules"] == ["query", "value"] and got["epochs"] is None


def test_loss_summary_against_a_plain_reference() -> None:
    losses = [float(i % 7) for i in range(250)]
    summary = loss_summary(losses)
    assert summary["final_train_loss"] == pytest.approx(np.mean(losses[-10:]))
    every = 3  # ceil(250 / 100)
    want = [[min(i + every, 250), round(float(np.mean(losses[i : i + every])), 6)]
            for i in range(0, 250, every)]  # fmt: skip
    assert summary["loss_curve"] == want and len(want) <= 100
    assert loss_summary([2.0]) == {"final_train_loss": 2.0, "loss_curve": [[1, 2.0]]}
