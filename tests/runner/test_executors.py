"""The local executor: whole variants in order, a failed job stops only the jobs that need it,
and errors are reported by job id. Jobs here are real import jobs (verifying run folders on
disk) and extract jobs whose model is missing, so nothing is trained or extracted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from repdrift.errors import InputError
from repdrift.runner.executors import execution_order, import_ray, run_local
from repdrift.runner.job import Job
from repdrift.store.writer import write_run


def _job(kind: str, group: str, *, step: int = 0, out: Path, model: str = "", needs=()) -> Job:
    task, method = group.split("/")[:2]
    suffix = f":step{step}" if step else ""
    return Job(
        id=f"{kind}:{group.replace('/', ':')}{suffix}", kind=kind, task=task, method=method,
        seed=None, step=step, model=model, out=out, group=group, needs=tuple(needs),
    )  # fmt: skip


def _run(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    layers = {f"layer_{i}": rng.normal(size=(6, 4)) for i in range(2)}
    write_run(path, layers, task="sst2", kind="base", sample_ids=[f"s{i}" for i in range(6)])
    return path


def test_execution_order_finishes_a_variant_before_the_next(tmp_path: Path) -> None:
    jobs = [
        _job("extract", "sst2/lora/seed2", step=200, out=tmp_path),
        _job("extract", "sst2/lora/seed2", out=tmp_path),
        _job("train", "sst2/lora/seed2", out=tmp_path),
        _job("extract", "sst2/base", out=tmp_path),
        _job("extract", "sst2/lora/seed2", step=100, out=tmp_path),
        _job("import", "mrpc/full", out=tmp_path),
    ]
    got = [j.id for j in execution_order(jobs)]
    assert got == [
        "import:mrpc:full",
        "extract:sst2:base",
        "train:sst2:lora:seed2",
        "extract:sst2:lora:seed2",  # the final model (step 0) first, then the checkpoints
        "extract:sst2:lora:seed2:step100",
        "extract:sst2:lora:seed2:step200",
    ]


def test_a_failure_blocks_only_the_jobs_that_need_it(tmp_path: Path) -> None:
    good = _job("import", "sst2/base", out=_run(tmp_path / "sst2_base", 0))
    bad_run = _run(tmp_path / "sst2_full", 1)
    layer = next(bad_run.glob("step_*/layer_0.safetensors"))
    layer.write_bytes(layer.read_bytes()[:-8])  # truncated after it was written
    bad = _job("import", "sst2/full", out=bad_run)
    missing = _job("extract", "mrpc/lora", out=tmp_path / "mrpc_lora",
                   model=str(tmp_path / "no_such_model"))  # fmt: skip
    after = _job("extract", "mrpc/lora", step=10, out=tmp_path / "mrpc_lora",
                 model=str(tmp_path / "no_such_model"), needs=[missing.id])  # fmt: skip

    outcome = run_local([after, missing, bad, good], progress=False)

    assert outcome.ran == [good.id]
    assert set(outcome.failed) == {bad.id, missing.id, after.id}
    assert bad.id in outcome.failed[bad.id] and "layer_0" in outcome.failed[bad.id]
    assert "no_such_model does not exist" in outcome.failed[missing.id]
    assert outcome.failed[after.id] == f"not started: {missing.id} failed"
    assert not (tmp_path / "mrpc_lora").exists()


def test_ray_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises ImportError
    with pytest.raises(InputError, match=r'--executor ray needs Ray.*pip install "repdrift\[ray\]"'):
        import_ray()
