"""The study runner: plan expansion, job state, shards, resume after a kill, Ray, legacy trees."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from repdrift.demo import demo_experiment
from repdrift.errors import InputError
from repdrift.runner.experiment_file import parse_experiment
from repdrift.runner.plan import parse_shard, plan_jobs, shard_jobs
from repdrift.runner.study import execute, make_plan, run_experiment
from repdrift.store.reader import load_run
from repdrift.store.writer import write_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Plain biased linear CKA (Kornblith 2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)."""
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    return float(np.linalg.norm(Y.T @ X) ** 2 / (np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)))


def experiment(tmp_path: Path, **changes):
    raw = {
        "name": "t",
        "base_model": "org/base-model",
        "tasks": ["sst2", "mrpc"],
        "seeds": [1, 2, 3],
        "samples": 8,
        "variants": [
            {"method": "full", "path": "models/{task}_full_seed{seed}"},
            {"method": "lora", "path": "models/{task}_lora_seed{seed}"},
        ],
        "analysis": {"n_boot": 10, "n_perm": 10, "weights": False},
        **changes,
    }
    return parse_experiment(raw, root=tmp_path)


# --------------------------------------------------------------------------- plan


def test_plan_expands_tasks_methods_seeds_steps_with_base_once(tmp_path: Path) -> None:
    exp = experiment(tmp_path, train={"max_steps": 20, "save_steps": 10}, checkpoints=[10, 20])
    jobs = plan_jobs(exp)
    kinds = pd.Series([(j.kind, j.method) for j in jobs]).value_counts()
    assert kinds[("extract", "base")] == 2  # once per task, whatever the variants and seeds
    assert kinds[("train", "full")] == kinds[("train", "lora")] == 2 * 3
    # step 0 plus the two checkpoint steps per task x method x seed
    assert kinds[("extract", "full")] == kinds[("extract", "lora")] == 2 * 3 * 3
    assert len({j.id for j in jobs}) == len(jobs) == 2 + 12 + 36
    by_id = {j.id: j for j in jobs}
    step = by_id["extract:mrpc:lora:seed2:step10"]
    assert step.needs == ("train:mrpc:lora:seed2",)
    assert step.model == str(tmp_path / "models/mrpc_lora_seed2/checkpoint-10")
    assert step.out == tmp_path / "output/runs/mrpc_lora_seed2"  # the original study's names
    assert by_id["extract:sst2:base"].out == tmp_path / "output/runs/sst2_base"
    assert by_id["train:sst2:full:seed3"].out == tmp_path / "models/sst2_full_seed3"
    assert by_id["train:sst2:full:seed3"].seed == 3
    assert by_id["extract:sst2:full:seed1"].base == "org/base-model"
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)


def test_checkpoints_true_without_training_finds_the_folders(tmp_path: Path) -> None:
    for step in (5, 10):
        (tmp_path / f"models/sst2_full_seed1/checkpoint-{step}").mkdir(parents=True)
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1], checkpoints=True,
                     variants=[{"method": "full", "path": "models/{task}_full_seed{seed}"}])  # fmt: skip
    ids = [j.id for j in plan_jobs(exp)]
    assert ids == [
        "extract:sst2:base",
        "extract:sst2:full:seed1",
        "extract:sst2:full:seed1:step10",
        "extract:sst2:full:seed1:step5",
    ]


def test_missing_variant_without_training_stops_before_any_work(tmp_path: Path) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1])
    plan = make_plan(exp)
    assert plan.status["extract:sst2:full:seed1"] == "missing"
    assert plan.status["extract:sst2:base"] == "todo"  # a hub id is fetched by extract
    with pytest.raises(InputError, match=r"extract:sst2:full:seed1: model folder .*sst2_full_seed1 does not exist"):  # fmt: skip
        execute(plan, progress=False)
    assert not exp.runs_dir.exists()  # nothing was started


def test_training_with_other_settings_is_stale(tmp_path: Path) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1], train={"max_steps": 6},
                     variants=[{"method": "lora", "path": "models/{task}_lora_seed{seed}"}])  # fmt: skip
    folder = tmp_path / "models/sst2_lora_seed1"
    folder.mkdir(parents=True)
    record = {"task": "sst2", "method": "lora", "seed": 1, "complete": True,
              "arguments": {"task": "sst2", "method": "lora", "seed": 1, "max_steps": 5,
                            "batch_size": 16, "lr": 1e-3, "rank": 8, "alpha": 16}}  # fmt: skip
    (folder / "repdrift_training.json").write_text(json.dumps(record))
    plan = make_plan(exp)
    assert plan.status["train:sst2:lora:seed1"] == "stale"
    with pytest.raises(InputError, match="max_steps is 5 in its training record, the experiment asks for 6"):  # fmt: skip
        execute(plan, progress=False)
    record["arguments"]["max_steps"] = 6  # the same settings (defaults filled in): done
    (folder / "repdrift_training.json").write_text(json.dumps(record))
    assert make_plan(exp).status["train:sst2:lora:seed1"] == "done"
    record["complete"] = False
    (folder / "repdrift_training.json").write_text(json.dumps(record))
    assert make_plan(exp).status["train:sst2:lora:seed1"] == "partial"


def _write_runs(exp, rng: np.random.Generator, n: int = 12) -> dict[str, dict[str, np.ndarray]]:
    """Complete runs for every extract job of the plan (pooled arrays from ``rng``)."""
    ids = [f"s{i}" for i in range(n)]
    base = {f"layer_{i}": rng.normal(size=(n, 5)).astype(np.float32) for i in range(3)}
    arrays = {}
    for job in plan_jobs(exp):
        if job.kind != "extract":
            continue
        layers = base if job.method == "base" else {
            k: (v + rng.normal(scale=0.5, size=v.shape)).astype(np.float32) for k, v in base.items()
        }  # fmt: skip
        write_run(job.out, layers, task=job.task, kind=job.method, sample_ids=ids)
        arrays[job.id] = layers
    return arrays


def test_complete_runs_are_skipped_and_stages_reused(tmp_path: Path, caplog) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1, 2])
    arrays = _write_runs(exp, np.random.default_rng(0))
    plan = make_plan(exp)
    assert set(plan.status.values()) == {"done"} and plan.todo == []
    assert plan.stages["analysis"] == "todo"
    with caplog.at_level("INFO", logger="repdrift.runner"):
        result = execute(plan, progress=False)
    assert result.outcome.ran == [] and len(result.skipped) == 5
    assert "skip extract:sst2:full:seed1: done" in caplog.text
    assert result.stages["analysis"] == "ran" and result.stages["weights"] == "off"
    drift = pd.read_parquet(exp.results_dir / "drift.parquet")
    row = drift[(drift.run == "sst2_lora_seed2") & (drift.layer == "layer_1")
                & (drift.metric == "cka_linear")].iloc[0]  # fmt: skip
    expected = linear_cka(arrays["extract:sst2:base"]["layer_1"].astype(np.float64),
                          arrays["extract:sst2:lora:seed2"]["layer_1"].astype(np.float64))  # fmt: skip
    assert row.similarity == pytest.approx(expected, rel=1e-9)
    assert (row.task, row.method, row.seed) == ("sst2", "lora", 2)
    # a second run changes nothing
    mtime = (exp.results_dir / "drift.parquet").stat().st_mtime_ns
    again = make_plan(exp)
    assert again.stages["analysis"] == "done"
    assert execute(again, progress=False).stages["analysis"] == "up to date"
    assert (exp.results_dir / "drift.parquet").stat().st_mtime_ns == mtime


def test_damaged_and_stale_runs_are_reported_not_overwritten(tmp_path: Path) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1],
                     variants=[{"method": "full", "path": "models/{task}_full_seed{seed}"}])  # fmt: skip
    _write_runs(exp, np.random.default_rng(1))
    layer = exp.runs_dir / "sst2_full_seed1/step_000000/layer_2.safetensors"
    layer.write_bytes(layer.read_bytes()[:-8])
    # the base run was made as a fine-tuned run: complete, but not what the experiment asks
    shutil.rmtree(exp.runs_dir / "sst2_base")
    write_run(exp.runs_dir / "sst2_base", {"layer_0": np.ones((3, 2), np.float32)},
              task="sst2", kind="full", sample_ids=["a", "b", "c"])  # fmt: skip
    plan = make_plan(exp)
    assert plan.status["extract:sst2:full:seed1"] == "invalid"
    assert plan.status["extract:sst2:base"] == "stale"
    with pytest.raises(InputError) as info:
        execute(plan, progress=False)
    msg = str(info.value)
    assert "layer_2.safetensors" in msg and "delete" in msg
    assert "kind is 'full' in the run, the experiment asks for 'base'" in msg


def test_runs_with_different_samples_under_the_same_ids_are_refused(tmp_path: Path) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1],
                     variants=[{"method": "full", "path": "models/{task}_full_seed{seed}"}])  # fmt: skip
    _write_runs(exp, np.random.default_rng(7))
    # what extract records: a hash over sample ids and texts; the data changed in between
    for name, digest in (("sst2_base", "a" * 64), ("sst2_full_seed1", "b" * 64)):
        path = exp.runs_dir / name / "step_000000/metadata.json"
        manifest = json.loads(path.read_text())
        manifest["data"] = {"samples_sha256": digest}
        path.write_text(json.dumps(manifest))
    plan = make_plan(exp)
    assert set(plan.status.values()) == {"done"}
    with pytest.raises(InputError, match=r"sst2_base \(samples aaaaaaaaaaaa\); sst2_full_seed1 \(samples bbbb"):  # fmt: skip
        execute(plan, progress=False)
    assert not exp.results_dir.exists()


# --------------------------------------------------------------------------- shards


def test_shards_partition_every_job_exactly_once(tmp_path: Path) -> None:
    exp = experiment(tmp_path, train={"max_steps": 20, "save_steps": 10}, checkpoints=True)
    jobs = plan_jobs(exp)
    for count in range(1, 9):
        shards = [shard_jobs(jobs, i, count) for i in range(count)]
        ids = [j.id for shard in shards for j in shard]
        assert sorted(ids) == sorted(j.id for j in jobs)  # all, none twice
        for shard in shards:  # a variant's training and extractions stay together
            groups = {j.group for j in shard}
            mine = {j.id for j in shard}
            assert {j.id for j in jobs if j.group in groups} == mine
            assert all(n in mine for j in shard for n in j.needs)
        assert [j.id for j in shard_jobs(jobs, 0, count)] == [j.id for j in shards[0]]
    # balanced: 12 variant groups of 4 jobs and 2 base runs over 4 shards
    assert sorted(len(shard_jobs(jobs, i, 4)) for i in range(4)) == [12, 12, 13, 13]
    # the split does not depend on what is done: the same plan with finished runs
    write_run(jobs[0].out, {"layer_0": np.zeros((2, 2), np.float32)}, task=jobs[0].task,
              kind=jobs[0].method, sample_ids=["a", "b"])  # fmt: skip
    again = make_plan(exp, shard="2/5")
    assert [j.id for j in again.selected] == [j.id for j in shard_jobs(jobs, 2, 5)]


def test_shard_spec() -> None:
    assert parse_shard("3/8") == (3, 8)
    for bad in ("8/8", "1", "a/b", "-1/4", "0/0"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


def test_sharded_run_does_not_analyse(tmp_path: Path) -> None:
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1, 2])
    _write_runs(exp, np.random.default_rng(2))
    result = run_experiment(exp, shard="1/2", progress=False)
    assert result.analysis_skipped == "shard"
    assert not exp.results_dir.exists()
    assert len(result.plan.selected) < len(result.plan.jobs)


def test_ray_missing_gives_the_install_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    exp = experiment(tmp_path, tasks=["sst2"], seeds=[1],
                     variants=[{"method": "full", "path": "models/{task}_full_seed{seed}"}])  # fmt: skip
    (tmp_path / "models/sst2_full_seed1").mkdir(parents=True)
    with pytest.raises(InputError, match=r'needs Ray.*pip install "repdrift\[ray\]"'):
        execute(make_plan(exp), executor="ray", progress=False)


# --------------------------------------------------------------------------- CLI


def test_dry_run_of_the_original_study_prints_the_full_plan(monkeypatch) -> None:
    from repdrift.cli.commands import app

    def no_network(*args, **kwargs):
        raise AssertionError("the dry run tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("COLUMNS", "250")
    out = CliRunner().invoke(app, ["run", str(EXAMPLES / "tinyllama-study.yaml"), "--dry-run"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T" in text
    for needle in ("squad_v2", "mrpc", "sst2", "rte", "1337", "2024", "lora", "full"):
        assert needle in text
    # 4 tasks x (base + 2 methods x 3 seeds x (train + extract)) jobs, then 4 stages
    assert text.count(" todo ") == 4 * (1 + 2 * 3 * 2) + 4
    assert "runs/squad_v2_lora_seed2024" in text and "runs/rte_base" in text
    assert not (EXAMPLES / "results").exists()


def test_run_reports_bad_files_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntasks: [sst2]\nseeds: [1]\nvariants: [{method: full}]\nbase_model: m\n"
    )
    proc = subprocess.run([sys.executable, "-m", "repdrift.cli", "run", str(bad), "--dry-run"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert f"{bad}: variants[0].path: field required" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- legacy trees


def _legacy_tree(root: Path, rng: np.random.Generator, n: int = 20) -> dict[str, list]:
    """The original study's layout: torch.save'd (n, d) tensors, no manifests."""
    base = [rng.normal(size=(n, 6)) for _ in range(3)]
    tensors = {"base": base}
    folders = {"base": root / "base_representations/representations/base_pretrained_sst2"}
    for method, name in (("full", "full_finetune"), ("lora", "lora")):
        for seed in (42, 1337):
            key = f"{method}{seed}"
            scale = 1.0 if method == "full" else 0.2
            tensors[key] = [x + rng.normal(scale=scale, size=x.shape) for x in base]
            folders[key] = root / f"results/phase3_representations/sst2_{name}_seed{seed}"
    for key, folder in folders.items():
        step = folder / "step_000000"
        step.mkdir(parents=True)
        for i, x in enumerate(tensors[key]):
            dtype = torch.bfloat16 if key == "full42" and i == 0 else torch.float32
            torch.save(torch.tensor(x).to(dtype), step / f"layer_{i}.pt")
        (step / "metadata.json").write_text(json.dumps({"task": "sst2", "model_name": "TinyLlama"}))
    return tensors


def test_import_of_the_original_layout(tmp_path: Path) -> None:
    tensors = _legacy_tree(tmp_path, np.random.default_rng(3))
    exp = parse_experiment(
        {"name": "old", "tasks": ["sst2"], "seeds": [42, 1337],
         "import": {"runs": "results/phase3_representations",
                    "base": "base_representations/representations"},
         "analysis": {"metrics": ["cka_linear", "cosine"], "n_boot": 10, "n_perm": 10}},
        root=tmp_path,
    )  # fmt: skip
    plan = make_plan(exp)
    assert set(plan.status.values()) == {"todo"} and len(plan.jobs) == 5
    assert plan.stages["weights"] == "off"
    result = execute(plan, progress=False)
    assert result.stages["analysis"] == "ran"
    # the import step wrote standard runs into the study's runs folder, then analysed them
    imported = load_run(exp.runs_dir / "sst2_full_seed1337")
    assert imported.manifest.kind == "full" and imported.manifest.model["training"]["seed"] == 1337
    assert imported.manifest.extra["imported"]["layers"] == "pooled (n, d)"
    assert set(make_plan(exp).status.values()) == {"done"}  # importing again: nothing to do
    drift = pd.read_parquet(exp.results_dir / "drift.parquet")
    lin = drift[drift.metric == "cka_linear"]
    assert set(zip(lin.method, lin.seed, strict=True)) == {
        ("full", 42),
        ("full", 1337),
        ("lora", 42),
        ("lora", 1337),
    }
    row = lin[(lin.run == "sst2_full_seed1337") & (lin.layer == "layer_2")].iloc[0]
    base = tensors["base"][2].astype(np.float32).astype(np.float64)
    ft = tensors["full1337"][2].astype(np.float32).astype(np.float64)
    assert row.similarity == pytest.approx(linear_cka(base, ft), rel=1e-9)
    bf16 = lin[(lin.run == "sst2_full_seed42") & (lin.layer == "layer_0")].iloc[0]
    ft0 = torch.tensor(tensors["full42"][0]).to(torch.bfloat16).float().double().numpy()
    assert bf16.similarity == pytest.approx(linear_cka(tensors["base"][0].astype(np.float32).astype(np.float64), ft0), rel=1e-9)  # fmt: skip
    # LoRA's runs were made to move less: the comparison must see it
    comp = pd.read_parquet(exp.results_dir / "comparison.parquet")
    assert (comp[comp.metric == "cka_linear"].drift_diff < 0).all()


def test_import_without_a_base_run_names_the_folders_tried(tmp_path: Path) -> None:
    _legacy_tree(tmp_path, np.random.default_rng(4))
    exp = parse_experiment(
        {"tasks": ["sst2"], "seeds": [42], "import": "results/phase3_representations"},
        root=tmp_path,
    )
    with pytest.raises(
        InputError, match=r"import:sst2:base: no base run found \(tried .*sst2_base"
    ):
        run_experiment(exp, progress=False)


def test_compare_cli_on_legacy_folders(tmp_path: Path) -> None:
    """`repdrift compare` on .pt runs whose names follow {task}_{method}_seed{seed}."""
    from repdrift.cli.commands import app

    rng = np.random.default_rng(5)
    base = rng.normal(size=(16, 4))
    runs = []
    for name, scale in (("sst2_base", 0.0), ("sst2_full_seed42", 1.0), ("sst2_lora_seed42", 0.1)):  # fmt: skip
        step = tmp_path / name / "step_000000"
        step.mkdir(parents=True)
        torch.save(torch.tensor(base + rng.normal(scale=scale, size=base.shape)).float(), step / "layer_0.pt")  # fmt: skip
        runs.append(str(tmp_path / name))
    out = CliRunner().invoke(app, ["compare", *runs, "--out", str(tmp_path / "res"),
                                   "--n-boot", "0", "--n-perm", "0", "-m", "cka_linear"])  # fmt: skip
    assert out.exit_code == 0, out.output
    drift = pd.read_parquet(tmp_path / "res/drift.parquet")
    assert sorted(drift.method) == ["full", "lora"]
    assert drift.set_index("method").drift["full"] > drift.set_index("method").drift["lora"]


def test_compare_cli_on_the_original_folder_names(tmp_path: Path) -> None:
    from repdrift.cli.commands import app

    _legacy_tree(tmp_path, np.random.default_rng(6))
    runs = [tmp_path / "base_representations/representations/base_pretrained_sst2",
            *sorted((tmp_path / "results/phase3_representations").iterdir())]  # fmt: skip
    out = CliRunner().invoke(app, ["compare", *map(str, runs), "--out", str(tmp_path / "res"),
                                   "--n-boot", "0", "--n-perm", "0"])  # fmt: skip
    assert out.exit_code == 0, out.output
    drift = pd.read_parquet(tmp_path / "res/drift.parquet")
    assert set(zip(drift.task, drift.method, drift.seed, strict=True)) == {
        ("sst2", "full", 42),
        ("sst2", "full", 1337),
        ("sst2", "lora", 42),
        ("sst2", "lora", 1337),
    }


# --------------------------------------------------------------------------- kill, resume, Ray

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}  # fmt: skip
TABLES = ("drift", "comparison", "noise_floor", "cross_layer", "sample_cosine", "task_ranking")


def demo_cli(out: Path, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "repdrift.cli", "demo", "--quick", "--out", str(out), *args],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The reduced demo study, run once without interruption (one thread: reproducible)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "demo"
    proc = demo_cli(out)
    _, stderr = proc.communicate(timeout=1200)
    assert proc.returncode == 0, stderr[-3000:]
    return out


def assert_same_tables(a: Path, b: Path, **tolerance) -> None:
    for name in TABLES:
        left = pd.read_parquet(a / "results" / f"{name}.parquet")
        right = pd.read_parquet(b / "results" / f"{name}.parquet")
        pd.testing.assert_frame_equal(left, right, obj=name, **tolerance)
    w_left = pd.read_parquet(a / "results/weights.parquet")
    w_right = pd.read_parquet(b / "results/weights.parquet")
    pd.testing.assert_frame_equal(w_left, w_right, obj="weights", **tolerance)


def _complete_runs(out: Path) -> list[Path]:
    done = []
    for manifest in out.glob("runs/*/step_000000/metadata.json"):
        try:
            if json.loads(manifest.read_text()).get("status") == "complete":
                done.append(manifest)
        except (OSError, json.JSONDecodeError):
            pass  # being written
    return done


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_results(tmp_path: Path, uninterrupted: Path) -> None:
    out = tmp_path / "demo"
    proc = demo_cli(out)
    deadline = time.monotonic() + 900
    while not _complete_runs(out):
        assert proc.poll() is None, "finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    first = _complete_runs(out)
    # the base run comes first (execution order); the kill lands in a later job
    assert [p.parent.parent.name for p in first] == ["demo-sst_base"]
    assert not (out / "results").exists()
    stamp = first[0].stat().st_mtime_ns

    again = demo_cli(out)
    _, stderr = again.communicate(timeout=1200)
    assert again.returncode == 0, stderr[-3000:]
    assert "skip extract:demo-sst:base: done" in " ".join(stderr.split())
    assert first[0].stat().st_mtime_ns == stamp  # the finished run was not redone
    assert_same_tables(uninterrupted, out, check_exact=True)

    # a third run finds everything done and changes nothing
    mtime = (out / "results/drift.parquet").stat().st_mtime_ns
    third = demo_cli(out)
    stdout, _ = third.communicate(timeout=600)
    assert third.returncode == 0
    assert "jobs run: 0" in stdout and "analysis: up to date" in stdout
    assert (out / "results/drift.parquet").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path: Path, uninterrupted: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}})  # fmt: skip
    try:
        plan = make_plan(demo_experiment(tmp_path / "demo", quick=True))
        result = execute(plan, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert len(result.outcome.ran) == len(result.plan.jobs)
    assert result.stages["analysis"] == "ran"
    # training and extraction ran in Ray workers (one thread each, as the reference): the
    # models are bit-identical; the analysis ran here, so allow float64 summation order
    for run in sorted((uninterrupted / "runs").iterdir()):
        for layer in (run / "step_000000").glob("layer_*.safetensors"):
            other = tmp_path / "demo/runs" / run.name / "step_000000" / layer.name
            assert layer.read_bytes() == other.read_bytes(), layer
    assert_same_tables(uninterrupted, tmp_path / "demo", check_exact=False, rtol=1e-9, atol=1e-12)
