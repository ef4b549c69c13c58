"""Pairing runs with their reference: the explicit reference, lineage and duplicate weights."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from repdrift.analysis.compare_runs import compare
from repdrift.analysis.pairing import describe, group_by_task, pair_runs
from repdrift.errors import InputError
from repdrift.store.writer import write_run

N, D = 30, 5
IDS = [f"s{i}" for i in range(N)]
BASE_SHA, OTHER_SHA = "a" * 64, "b" * 64


def _sha(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture(scope="module")
def layers() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"layer_{i}": rng.normal(size=(N, D)) for i in range(2)}


def _write(path: Path, layers, *, kind: str, model: dict, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    moved = {k: v + 0.3 * rng.normal(size=v.shape) for k, v in layers.items()}
    write_run(path, moved if kind != "base" or seed else layers, task="sst2", kind=kind,
              sample_ids=IDS, model=model)  # fmt: skip
    return path


def _base(root: Path, layers, name: str = "base", sha: str = BASE_SHA) -> Path:
    return _write(root / name, layers, kind="base", seed=0,
                  model={"path": f"/models/{name}", "weights_sha256": sha})  # fmt: skip


def _full_without_base(root: Path, layers, name: str, sha: str, seed: int = 1) -> Path:
    """A fine-tuned model extracted without --base: its manifest says kind 'base'."""
    return _write(root / name, layers, kind="base", seed=seed,
                  model={"path": f"/models/{name}", "weights_sha256": sha})  # fmt: skip


def _lora(root: Path, layers, name: str, sha: str, base_sha: str, seed: int = 1) -> Path:
    model = {
        "path": f"/adapters/{name}",
        "base": "/models/base",
        "weights_sha256": sha,
        "base_weights_sha256": base_sha,
        "training": {"seed": seed, "method": "lora"},
    }
    return _write(root / name, layers, kind="lora", model=model, seed=seed + 10)  # fmt: skip


def _fast(runs, **kw):
    return compare(runs, n_boot=0, n_perm=0, metrics=["cka_linear"], progress=False, **kw)


def test_the_reference_given_first_is_the_reference(tmp_path, layers, caplog):
    base = _base(tmp_path, layers)
    full = _full_without_base(tmp_path, layers, "full", _sha(1))
    with pytest.raises(InputError, match=r"exactly one base run .* or a reference named with ref="):
        _fast([base, full])  # both record kind 'base': ambiguous without a reference
    with caplog.at_level(logging.WARNING, logger="repdrift"):
        res = _fast([base, full], ref=base)
    (group,) = res.summary["tasks"].values()
    assert group["reference"]["path"] == str(base)
    (run,) = group["runs"]
    assert run["name"] == "full" and run["method"] == "full"  # labelled from its folder
    assert any("recorded as a base run" in f for f in run["flags"])
    assert any("no training seed" in f for f in run["flags"])  # not a silent NaN
    assert any("no base model recorded" in f for f in run["flags"])
    assert "recorded as a base run" in caplog.text and str(full) in caplog.text
    assert set(res.drift["run"]) == {"full"}
    # the reference may be listed among the runs or not, and ref= takes a list
    again = _fast([full], ref=[base])
    assert again.summary["tasks"]["sst2"]["reference"]["path"] == str(base)


def test_a_variant_is_labelled_from_its_training_record_then_its_folder_name(tmp_path, layers):
    base = _base(tmp_path, layers)
    named = _full_without_base(tmp_path, layers, "sst2_full_seed42", _sha(1))
    recorded = _write(tmp_path / "ckpt", layers, kind="base", seed=3, model={
        "weights_sha256": _sha(2), "training": {"seed": 7, "method": "full_ft", "task": "sst2"},
    })  # fmt: skip
    (group,) = pair_runs([named, recorded], ref=base)
    by_name = {v.name: v for v in group.variants}
    assert (by_name["sst2_full_seed42"].method, by_name["sst2_full_seed42"].seed) == ("full", 42)
    assert any("seed 42 read from the folder name" in f for f in by_name["sst2_full_seed42"].flags)
    assert (by_name["ckpt"].method, by_name["ckpt"].seed) == ("full", 7)
    assert any("training record" in f for f in by_name["ckpt"].flags)
    # explicit labels are never replaced or flagged
    (group,) = pair_runs([named], ref=base, labels={str(named): {"method": "mine", "seed": 5}})
    (v,) = group.variants
    assert (v.method, v.seed) == ("mine", 5) and not any("labelled" in f for f in v.flags)


def test_a_variant_of_other_weights_is_refused_naming_both(tmp_path, layers):
    other = _base(tmp_path, layers, name="unrelated", sha=OTHER_SHA)
    lora = _lora(tmp_path, layers, "sst2_lora_seed1", _sha(5), BASE_SHA)
    with pytest.raises(InputError) as err:
        _fast([other, lora], ref=other)
    message = str(err.value)
    assert str(lora) in message and str(other) in message
    assert BASE_SHA[:12] in message and OTHER_SHA[:12] in message
    assert "/models/base" in message and "/models/unrelated" in message
    assert "allow_foreign_reference=True" in message and "--allow-foreign-reference" in message
    res = _fast([other, lora], ref=other, allow_foreign_reference=True)
    (run,) = res.summary["tasks"]["sst2"]["runs"]
    assert any(f.startswith("foreign reference") for f in run["flags"])
    # the right base: no flag at all
    base = _base(tmp_path, layers)
    res = _fast([base, lora], ref=base)
    assert res.summary["tasks"]["sst2"]["runs"][0]["flags"] == []


def test_identical_weights_are_refused_not_counted_as_two_seeds(tmp_path, layers):
    base = _base(tmp_path, layers)
    a = _lora(tmp_path, layers, "sst2_lora_seed1", _sha(5), BASE_SHA, seed=1)
    b = _lora(tmp_path, layers, "sst2_lora_seed2", _sha(5), BASE_SHA, seed=2)
    with pytest.raises(InputError) as err:
        _fast([base, a, b])
    message = str(err.value)
    assert str(a) in message and str(b) in message and _sha(5)[:12] in message
    assert "two seeds" in message
    # the base model extracted twice: compared with itself
    twin = _base(tmp_path, layers, name="base_again")
    with pytest.raises(InputError, match="same weights as the reference"):
        _fast([base, twin], ref=base)


def test_lineage_without_hashes_is_flagged_not_refused(tmp_path, layers):
    base = _write(tmp_path / "base", layers, kind="base", seed=0, model={"path": "/models/base"})
    same = _write(tmp_path / "sst2_full_seed1", layers, kind="full", model={
        "path": "/models/ft1", "base": "/models/base", "training": {"seed": 1}})  # fmt: skip
    moved = _write(tmp_path / "sst2_full_seed2", layers, kind="full", seed=2, model={
        "path": "/models/ft2", "base": "/elsewhere/base", "training": {"seed": 2}})  # fmt: skip
    (group,) = pair_runs([base, same, moved])
    flags = {v.name: v.flags for v in group.variants}
    assert flags["sst2_full_seed1"] == ()
    assert any("lineage not verified" in f and "/elsewhere/base" in f
               for f in flags["sst2_full_seed2"])  # fmt: skip


def test_references_per_task_and_mistakes(tmp_path, layers):
    base = _base(tmp_path, layers)
    full = _full_without_base(tmp_path, layers, "full", _sha(1))
    mrpc = tmp_path / "mrpc"
    write_run(mrpc / "base", layers, task="mrpc", kind="base", sample_ids=IDS)
    write_run(mrpc / "lora", layers, task="mrpc", kind="lora", sample_ids=IDS,
              model={"training": {"seed": 3}})  # fmt: skip
    groups = pair_runs([base, full, mrpc / "base", mrpc / "lora"], ref=base)
    assert [(g.task, g.reference.run.path) for g in groups] == [
        ("mrpc", mrpc / "base"), ("sst2", base)]  # fmt: skip
    with pytest.raises(InputError, match="two references"):
        pair_runs([full], ref=[base, full])
    with pytest.raises(InputError, match="given twice"):
        pair_runs([full, full], ref=base)
    with pytest.raises(InputError, match=r"only the reference run .* was given"):
        pair_runs([base], ref=base)
    # group_by_task keeps its old call: one base run per task
    infos = [describe(mrpc / "base"), describe(mrpc / "lora")]
    (group,) = group_by_task(infos)
    assert group.reference.name == "base" and [v.name for v in group.variants] == ["lora"]


def test_results_json_records_the_flags(tmp_path, layers):
    base = _base(tmp_path, layers)
    full = _full_without_base(tmp_path, layers, "full", _sha(1))
    _fast([full], ref=base, out=tmp_path / "res")
    summary = json.loads((tmp_path / "res" / "results.json").read_text())
    (run,) = summary["tasks"]["sst2"]["runs"]
    assert run["flags"]


def test_runs_with_and_without_the_final_norm_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(20)]
    base = {f"layer_{i}": rng.normal(size=(20, 4)) for i in range(2)}
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=ids)
    write_run(tmp_path / "full1", base, task="toy", kind="full", sample_ids=ids,
              model={"training": {"seed": 1}})  # fmt: skip
    meta = tmp_path / "full1" / "step_000000" / "metadata.json"
    manifest = json.loads(meta.read_text())
    manifest["final_norm"] = True
    meta.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="final_norm True vs False"):
        compare([tmp_path / "base", tmp_path / "full1"], n_boot=0, n_perm=0, progress=False)


def test_the_same_weights_in_another_dtype_are_a_comparison_not_a_duplicate(tmp_path, minilm_path):
    """float32 vs bfloat16 extraction of one model: the precision's own drift is measured; the
    same model extracted twice in one dtype is still refused."""
    import repdrift

    settings = {"task": "demo-sst", "samples": 24, "device": "cpu", "progress": False}
    f32 = repdrift.extract(str(minilm_path), out=tmp_path / "f32", dtype="float32", **settings)
    bf16 = repdrift.extract(str(minilm_path), out=tmp_path / "bf16", dtype="bfloat16", **settings)
    res = compare([f32, bf16], ref=f32, labels={str(bf16): {"method": "bf16"}}, n_boot=0,
                  n_perm=0, metrics=["cka_linear"], progress=False)  # fmt: skip
    drift = res.drift.set_index("layer").drift
    assert (drift > 0).all() and (drift < 0.05).all()  # bf16 rounding: small, not zero
    again = repdrift.extract(str(minilm_path), out=tmp_path / "f32_again", dtype="float32", **settings)  # fmt: skip
    with pytest.raises(InputError, match="same weights as the reference"):
        compare([f32, again], ref=f32, n_boot=0, n_perm=0, progress=False)
