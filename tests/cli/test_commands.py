"""The command line: shared behaviour (errors, --version, --quiet) and the run commands."""

from __future__ import annotations

import json
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
    args = ["extract", str(minilm_path), "--task", "sst2", "--data", str(texts)]
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
