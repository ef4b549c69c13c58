"""The command line's words (issue 20, case 7): bundled models by name, options named as typed,
data files without rows, the max length actually used, hub ids that fail fast, notes only when
they matter, tables at full width when captured, help and ``inspect`` in plain words."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from repdrift.cli import app
from repdrift.errors import InputError
from repdrift.store.writer import write_run

runner = CliRunner()
REPDRIFT = Path(sys.executable).with_name("repdrift")
COMMANDS = ("extract", "inspect", "compare", "weights", "plot", "report", "train", "run", "demo")


def _words(text: str) -> str:
    return " ".join(text.split())


def test_bundled_minilm_on_the_command_line_in_help_and_inspect(minilm_path: Path, tmp_path: Path) -> None:
    shown = runner.invoke(app, ["extract", "--help"])
    assert "bundled:minilm (all-MiniLM-L6-v2" in _words(shown.stdout)
    out = tmp_path / "run"
    args = ["extract", "bundled:minilm", "--task", "demo-sst", "--samples", "8", "--layers", "0"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "step_000000" / "metadata.json").read_text())
    assert Path(manifest["model"]["path"]) == minilm_path.resolve()
    shown = runner.invoke(app, ["inspect", str(out)])
    assert shown.exit_code == 0
    assert re.search(r"│ time +│ step 0: \d+\.\d s", shown.stdout), shown.stdout
    assert "{0:" not in shown.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--samples", "0"], "--samples"), (["--max-length", "1"], "--max-length"),
     (["--batch-size", "0"], "--batch-size"), (["--max-tokens", "0"], "--max-tokens")],
)  # fmt: skip
def test_bad_numbers_name_the_option_as_typed(tmp_path: Path, args: list[str], option: str) -> None:
    command = ["extract", "bundled:minilm", "--task", "demo-sst", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, [*command, *args])
    assert result.exit_code == 2
    said = _words(result.output)
    assert f"Invalid value for '{option}'" in said
    assert "n must" not in said and "batch_size" not in said and "max_tokens" not in said


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.csv", "", "is empty"),
        ("header.csv", "text,label\n", "has a header line (text, label) and no rows"),
        ("header.tsv", "text\tlabel\n", "has a header line (text, label) and no rows"),
        ("empty.jsonl", "\n", "is empty"),
        ("empty.json", "[]", "holds an empty JSON list"),
        ("folder/validation.csv", "text,label\n", "has a header line (text, label) and no rows"),
    ],
)
def test_a_data_file_without_rows_is_named(tmp_path: Path, name: str, content: str, why: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(content)
    data = path.parent if name.startswith("folder/") else path
    command = ["extract", "bundled:minilm", "--task", "mine", "--data", str(data)]
    result = runner.invoke(app, [*command, "--out", str(tmp_path / "r")])
    assert isinstance(result.exception, InputError)
    message = str(result.exception)
    assert message == f"data file {path} {why}: there are no samples to read"


def test_max_length_above_the_model_limit_is_recorded_as_used(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    long_text = " ".join(["representation drift across layers"] * 200)  # ~800 tokens
    (folder / "validation.csv").write_text(f"text,label\n{long_text},1\nshort text,0\n")
    out = tmp_path / "run"
    command = ["extract", "bundled:minilm", "--task", "mine", "--data", str(folder), "--layers", "0"]
    result = runner.invoke(app, [*command, "--max-length", "1024", "--out", str(out)])
    assert result.exit_code == 0, result.output
    log = _words(result.stderr)
    assert "max_length 1024 is more than the tokenizer allows (512): using 512" in log
    assert "512 tokens is the most this tokenizer allows" in log
    assert "raise the budget" not in log
    manifest = json.loads((out / "step_000000" / "metadata.json").read_text())
    assert manifest["max_length"] == 512


def test_a_hub_id_fails_fast_and_says_why_when_offline(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [str(REPDRIFT), "extract", "someorg/no-such-model", "--task", "demo-sst"]
    started = time.monotonic()
    proc = subprocess.run([*command, "--out", str(tmp_path / "r")], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert time.monotonic() - started < 60  # imports included; the hub's retries took ~54 s
    assert proc.returncode == 2
    assert _words(proc.stderr).endswith(
        "error: model 'someorg/no-such-model' is no local folder and is not in the local hub "
        "cache, and HF_HUB_OFFLINE is set, so it cannot be downloaded: give a local model "
        "folder (or bundled:minilm)"
    )


def test_train_from_a_hub_id_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    command = ["train", "--task", "demo-sst", "--method", "full", "--model", "someorg/no-such-model"]
    result = runner.invoke(app, [*command, "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, InputError), result.output
    assert str(result.exception).startswith(
        "tokenizer 'someorg/no-such-model' is no local folder and is not in the local hub cache, "
        "and HF_HUB_OFFLINE is set"
    )


def test_a_hub_id_fails_in_seconds_when_the_hub_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    command = ["extract", "someorg/no-such-model", "--task", "demo-sst", "--samples", "4"]
    started = time.monotonic()
    result = runner.invoke(app, [*command, "--out", str(tmp_path / "r")])
    assert time.monotonic() - started < 20
    message = str(result.exception)
    assert isinstance(result.exception, InputError), result.output
    assert "'someorg/no-such-model' is no local folder" in message
    assert "the hub http://127.0.0.1:9 cannot be reached" in message


def _runs(root: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(30)]
    base = {f"layer_{i}": rng.normal(size=(30, 6)) for i in range(3)}
    write_run(root / "base", base, task="toy", kind="base", sample_ids=ids)
    for method in ("lora", "full"):
        moved = {k: v + rng.normal(size=v.shape) for k, v in base.items()}
        write_run(root / method, moved, task="toy", kind=method, sample_ids=ids)
    return {p.name: str(p) for p in root.iterdir()}


def test_the_procrustes_note_comes_once_after_pairing_and_plot_names_weights(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs")
    failed = runner.invoke(app, ["compare", runs["base"], runs["base"], "-o", str(tmp_path / "x")])
    assert failed.exit_code != 0
    assert "values only" not in failed.output
    out = tmp_path / "results"
    args = ["compare", runs["base"], runs["lora"], runs["full"], "-o", str(out)]
    result = runner.invoke(app, [*args, "--n-boot", "20", "--n-perm", "20"])
    assert result.exit_code == 0, result.output
    log = _words(result.stderr)
    assert log.count("values only") == 1
    assert (
        "procrustes: values only, without intervals or p-values (it has no fast resampling path; "
        "--resample procrustes, resampled= in Python, recomputes it on every replicate, slowly)"
    ) in log
    drawn = runner.invoke(app, ["plot", str(out), "-o", str(tmp_path / "figures")])
    assert drawn.exit_code == 0, drawn.output
    assert (
        "skipping figure weight_change, intruder_counts: no weights table in the results folder "
        "(`repdrift weights BASE VARIANT... --out RESULTS` writes one there)"
    ) in _words(drawn.stderr)


def test_tables_keep_their_width_when_output_is_captured(tmp_path: Path) -> None:
    deep = tmp_path / ("a" * 50) / ("b" * 50)
    write_run(deep, {"layer_0": np.ones((4, 3))}, task="toy", kind="base",
              sample_ids=list("abcd"), model={"path": str(deep / "model")})  # fmt: skip
    result = runner.invoke(app, ["inspect", str(deep)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert f"run {deep}" in lines
    # the table row holds the whole path (rich wraps at 80 columns when output is not a terminal)
    assert any(re.fullmatch(rf"│ model +│ {re.escape(str(deep / 'model'))} +│", ln) for ln in lines)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_bool_or_list_types(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout and "<list[" not in result.stdout
    assert "--help" in result.stdout
