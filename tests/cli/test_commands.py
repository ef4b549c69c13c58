"""The command line: shared behaviour (errors, --version, --quiet) and the run commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import repdrift
from repdrift.cli.commands import app
from repdrift.store.writer import write_run

runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repdrift.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"repdrift {repdrift.__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("extract", "inspect", "compare", "weights", "plot", "report"):
        assert command in result.stdout


def test_bad_input_is_one_line_without_traceback_and_debug_shows_it(tmp_path):
    missing = tmp_path / "no-such-run"
    proc = _cli("inspect", str(missing))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {missing}: no such run directory"]
    assert "Traceback" not in proc.stderr
    proc = _cli("--debug", "inspect", str(missing))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_usage_error_exits_nonzero():
    proc = _cli("compare")
    assert proc.returncode == 2 and "Missing argument" in proc.stderr


@pytest.fixture
def texts(tmp_path):
    rng = np.random.default_rng(0)
    words = "good bad movie film plot actor great terrible boring fun story music".split()
    path = tmp_path / "val.jsonl"
    with path.open("w") as fh:
        for i in range(24):
            sentence = " ".join(rng.choice(words, size=int(rng.integers(3, 25))))
            fh.write(json.dumps({"idx": i, "sentence": sentence, "label": i % 2}) + "\n")
    return path


def test_extract_then_inspect_verify_and_tamper(minilm_path, texts, tmp_path):
    run = tmp_path / "runs" / "base"
    args = ["extract", str(minilm_path), "--task", "sst2", "--data", str(texts), "--split", "all"]
    result = runner.invoke(app, [*args, "--out", str(run), "--samples", "16", "--layers", "0,5"])
    assert result.exit_code == 0, result.output
    assert "complete" in result.stdout and "16" in result.stdout
    result = runner.invoke(app, ["inspect", str(run), "--verify"])
    assert result.exit_code == 0 and "verified" in result.stdout
    layer = run / "step_000000" / "layer_5.safetensors"
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last value
    layer.write_bytes(bytes(data))
    result = runner.invoke(app, ["inspect", str(run), "--verify"])
    assert result.exit_code == 1 and "layer_5.safetensors" in result.output


def test_compare_writes_results(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(30)]
    base = {f"layer_{i}": rng.normal(size=(30, 6)) for i in range(3)}
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=ids)
    runs = [str(tmp_path / "base")]
    for method in ("lora", "full"):
        moved = {k: v + rng.normal(size=v.shape) for k, v in base.items()}
        write_run(tmp_path / method, moved, task="toy", kind=method, sample_ids=ids)
        runs.append(str(tmp_path / method))
    out = tmp_path / "results"
    result = runner.invoke(
        app, ["compare", *runs, "--out", str(out), "--n-boot", "50", "--n-perm", "20"]
    )
    assert result.exit_code == 0, result.output
    assert "mean drift" in result.stdout
    for name in ("drift.csv", "drift.parquet", "comparison.csv", "results.json"):
        assert (out / name).is_file()


def _lineage_runs(root):
    """base, a fine-tune extracted without --base (kind 'base'), an unrelated model and a LoRA
    run of the base, with the weights hashes extraction records."""
    rng = np.random.default_rng(1)
    ids = [f"s{i}" for i in range(30)]
    base = {f"layer_{i}": rng.normal(size=(30, 6)) for i in range(2)}
    moved = {k: v + rng.normal(size=v.shape) for k, v in base.items()}
    write_run(root / "base", base, task="sst2", kind="base", sample_ids=ids,
              model={"path": "/models/minilm", "weights_sha256": "a" * 64})  # fmt: skip
    write_run(root / "full", moved, task="sst2", kind="base", sample_ids=ids,
              model={"path": "/models/full", "weights_sha256": "b" * 64})  # fmt: skip
    write_run(root / "other", moved, task="sst2", kind="base", sample_ids=ids,
              model={"path": "/models/other", "weights_sha256": "c" * 64})  # fmt: skip
    write_run(root / "sst2_lora_seed1", moved, task="sst2", kind="lora", sample_ids=ids,
              model={"path": "/adapters/l1", "base": "/models/minilm", "weights_sha256": "d" * 64,
                     "base_weights_sha256": "a" * 64, "training": {"seed": 1}})  # fmt: skip
    return {p.name: str(p) for p in root.iterdir()}


def test_compare_takes_the_first_run_or_ref_as_the_reference(tmp_path):
    runs = _lineage_runs(tmp_path / "runs")
    fast = ["--n-boot", "0", "--n-perm", "0", "-m", "cka_linear"]
    result = runner.invoke(app, ["compare", runs["base"], runs["full"], "-o", str(tmp_path / "a"),
                                 *fast])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "flagged" in result.stdout and "full" in result.stdout
    summary = json.loads((tmp_path / "a" / "results.json").read_text())
    assert summary["tasks"]["sst2"]["reference"]["path"] == runs["base"]
    result = runner.invoke(app, ["compare", runs["full"], "--ref", runs["base"],
                                 "-o", str(tmp_path / "b"), *fast])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "b" / "results.json").read_text())
    assert summary["tasks"]["sst2"]["reference"]["path"] == runs["base"]


def test_compare_refuses_a_foreign_reference_and_duplicate_weights(tmp_path):
    runs = _lineage_runs(tmp_path / "runs")
    fast = ["--n-boot", "0", "--n-perm", "0", "-m", "cka_linear"]
    args = ["compare", runs["other"], runs["sst2_lora_seed1"], "-o", str(tmp_path / "r"), *fast]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    message = " ".join(str(result.exception).split())
    assert runs["other"] in message and runs["sst2_lora_seed1"] in message
    assert "a" * 12 in message and "c" * 12 in message and "--allow-foreign-reference" in message
    result = runner.invoke(app, [*args, "--allow-foreign-reference"])
    assert result.exit_code == 0, result.output
    twin = shutil.copytree(runs["base"], tmp_path / "runs2" / "base")  # the same weights
    result = runner.invoke(app, ["compare", runs["base"], str(twin), "-o", str(tmp_path / "d"),
                                 *fast])  # fmt: skip
    assert result.exit_code != 0 and "same weights as the reference" in str(result.exception)
