"""Runs fed their samples differently are refused, named, or compared on purpose and flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _perturbed import perturb_blocks
from repdrift.analysis.compare_runs import compare
from repdrift.cli.commands import app
from repdrift.errors import InputError
from repdrift.store.manifest import MANIFEST_NAME, step_dir_name
from repdrift.store.writer import write_run

N, D = 24, 6
IDS = [f"s{i}" for i in range(N)]


def _fast(runs, **kw):
    return compare(runs, n_boot=0, n_perm=0, metrics=["cka_linear"], progress=False, **kw)


def _edit_manifest(run: Path, **fields) -> None:
    """Rewrite recorded fields of step 0's manifest, as another extraction would have written
    them (the manifest is the commit record; the layer files stay verified)."""
    path = run / step_dir_name(0) / MANIFEST_NAME
    raw = json.loads(path.read_text())
    for key, value in fields.items():
        if key in ("text_fields", "truncation", "samples_sha256"):
            raw["data"][key] = value
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))


def _pair(root: Path, **variant_fields) -> tuple[Path, Path]:
    """A base run and a fine-tuned run of the same samples, as extraction records them
    (token ids 'a...', max length 128, right padding), then the variant's fields edited."""
    rng = np.random.default_rng(0)
    X = {f"layer_{i}": rng.normal(size=(N, D)) for i in range(2)}
    Y = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in X.items()}
    ref, run = root / "base", root / "full"
    write_run(ref, X, task="t", kind="base", sample_ids=IDS,
              model={"path": "/m/base", "weights_sha256": "a" * 64})  # fmt: skip
    write_run(run, Y, task="t", kind="full", sample_ids=IDS,
              model={"path": "/m/full", "weights_sha256": "b" * 64, "base": "/m/base",
                     "base_weights_sha256": "a" * 64, "training": {"seed": 1}})  # fmt: skip
    recorded = {
        "token_ids_sha256": "1" * 64, "max_length": 128, "tokenizer_sha256": "2" * 64,
        "text_fields": ["sentence"], "truncation": "longest_first",
    }  # fmt: skip
    _edit_manifest(ref, **recorded)
    _edit_manifest(run, **{**recorded, **variant_fields})
    return ref, run


def _flags(results) -> list[str]:
    (task,) = results.summary["tasks"].values()
    (run,) = task["runs"]
    return run["flags"]


def test_the_same_inputs_pass_without_a_flag(tmp_path):
    assert _flags(_fast(_pair(tmp_path))) == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"token_ids_sha256": "3" * 64, "max_length": 512}, "max_length 512 vs 128"),
        ({"token_ids_sha256": "3" * 64, "tokenizer_sha256": "4" * 64}, "tokenizer_sha256 4444"),
        ({"token_ids_sha256": "3" * 64, "truncation": "only_second"}, "truncation only_second"),
        ({"token_ids_sha256": "3" * 64}, "token ids (token_ids_sha256) 333333333333 vs 111111"),
        ({"padding_side": "left"}, "padding_side 'left' vs 'right'"),
    ],
)
def test_different_inputs_are_refused_naming_the_field_and_both_values(tmp_path, fields, named):
    ref, run = _pair(tmp_path, **fields)
    with pytest.raises(InputError, match="tokenised differently") as err:
        _fast([ref, run])
    message = str(err.value)
    assert named in message and str(run) in message and str(ref) in message
    assert "allow_different_inputs=True (CLI: --allow-different-inputs)" in message
    flags = _flags(_fast([ref, run], allow_different_inputs=True))
    assert len(flags) == 1 and flags[0].startswith("compared on purpose with different inputs")
    assert named in flags[0]


def test_settings_that_changed_no_token_are_flagged_not_refused(tmp_path):
    # max length 512 vs 128 on samples shorter than 128 tokens: the same token ids
    (flag,) = _flags(_fast(_pair(tmp_path, max_length=512)))
    assert flag.startswith("recorded settings differ (max_length 512 vs 128)")
    assert "token ids are identical" in flag


def test_other_text_fields_are_named_not_called_a_data_change(tmp_path):
    ref, run = _pair(tmp_path, text_fields=["review"], samples_sha256="5" * 64)
    _edit_manifest(ref, samples_sha256="6" * 64)
    with pytest.raises(InputError, match=r"text fields \['review'\] vs \['sentence'\]"):
        _fast([ref, run])


def test_a_run_without_token_ids_beside_one_with_them_is_flagged_not_guessed(tmp_path):
    ref, run = _pair(tmp_path)
    rng = np.random.default_rng(1)
    external = tmp_path / "external"  # arrays made elsewhere: tokenisation unknown
    write_run(external, {f"layer_{i}": rng.normal(size=(N, D)) for i in range(2)}, task="t",
              kind="full", sample_ids=IDS, model={"path": "/m/ext"})  # fmt: skip
    res = _fast([ref, run, external])
    flags = {r["name"]: r["flags"] for r in res.summary["tasks"]["t"]["runs"]}
    assert flags["full"] == []
    assert any(f.startswith(f"inputs not checked: {external} records no token ids")
               for f in flags["external"])  # fmt: skip


def test_a_lone_reference_says_why_it_has_nothing_to_compare(tmp_path):
    ref, _ = _pair(tmp_path)
    with pytest.raises(InputError, match=r"only the reference run .* was given: name the runs"):
        _fast([ref], ref=ref)  # repdrift compare REF REF
    other = tmp_path / "other_task"
    write_run(other, {f"layer_{i}": np.eye(N, D) for i in range(2)}, task="u", kind="full",
              sample_ids=IDS, model={"path": "/m/u"})  # fmt: skip
    with pytest.raises(InputError, match=r"is of task 't', but no other run is") as err:
        _fast([other], ref=ref)
    assert f"task 'u': {other}" in str(err.value)


@pytest.mark.slow
def test_cli_refuses_runs_extracted_at_two_max_lengths(minilm_path, tmp_path):
    """The case from the field: the reference at one --max-length, the fine-tune at another,
    on texts longer than the shorter limit, through the real CLI."""
    from transformers import AutoModel, AutoTokenizer

    tuned = tmp_path / "tuned"
    model = AutoModel.from_pretrained(minilm_path)
    perturb_blocks(model.encoder.layer[3:], 0.3)
    model.save_pretrained(tuned)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tuned)
    data = tmp_path / "val.jsonl"
    words = "good bad movie film plot actor great terrible boring fun story music".split()
    rng = np.random.default_rng(0)
    data.write_text("".join(
        json.dumps({"idx": i, "sentence": " ".join(rng.choice(words, size=20))}) + "\n"
        for i in range(60)
    ))  # fmt: skip
    runner = CliRunner()
    common = ["--task", "sst2", "--data", str(data), "--samples", "12", "--layers", "0,5"]
    ref, run = tmp_path / "runs" / "base", tmp_path / "runs" / "full"
    for args in (
        [str(minilm_path), "--out", str(ref), "--max-length", "8"],
        [str(tuned), "--base", str(minilm_path), "--out", str(run), "--max-length", "32"],
    ):
        result = runner.invoke(app, ["extract", *args, *common])
        assert result.exit_code == 0, result.output
    compare_args = ["compare", str(ref), str(run), "-m", "cka_linear", "--n-boot", "0",
                    "--n-perm", "0"]  # fmt: skip
    result = runner.invoke(app, [*compare_args, "-o", str(tmp_path / "refused")])
    assert isinstance(result.exception, InputError)  # the entry point prints it, exit 2
    assert "tokenised differently (max_length 32 vs 8" in " ".join(str(result.exception).split())
    assert not (tmp_path / "refused" / "results.json").exists()
    out = tmp_path / "on_purpose"
    result = runner.invoke(app, [*compare_args, "-o", str(out), "--allow-different-inputs"])
    assert result.exit_code == 0, result.output
    (task,) = json.loads((out / "results.json").read_text())["tasks"].values()
    assert any(
        f.startswith("compared on purpose with different inputs: max_length 32 vs 8")
        for f in task["runs"][0]["flags"]
    )
    report = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(out), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert "compared on purpose with different inputs: max_length 32 vs 8" in report.read_text()


def test_a_run_of_samples_its_model_was_trained_on_is_flagged(tmp_path):
    ref, run = _pair(tmp_path)
    _edit_manifest(run, extra={"trained_samples": {"seen": 20, "of": 24, "trained_on": 96}})
    (flag,) = _flags(_fast([ref, run]))
    assert flag.startswith("20 of its 24 samples are samples its model was trained on")


def test_a_run_extracted_in_another_dtype_is_flagged(tmp_path):
    ref, run = _pair(tmp_path, dtype="bfloat16")
    (flag,) = _flags(_fast([ref, run]))
    assert flag == (
        "extracted in bfloat16, the reference in float32: the drift includes the change of "
        "precision"
    )
