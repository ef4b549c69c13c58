"""The local executor: whole variants in order, a failed job stops only the jobs that need it,
and errors are reported by job id. Jobs here are real import jobs (the original study's
folders converted into runs) and extract jobs whose model is missing, so nothing is trained or
extracted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repdrift.errors import InputError
from repdrift.runner.executors import execution_order, import_ray, run_local
from repdrift.runner.job import Job


def _job(kind: str, group: str, *, step: int = 0, out: Path, model: str = "", needs=()) -> Job:
    task, method = group.split("/")[:2]
    suffix = f":step{step}" if step else ""
    return Job(
        id=f"{kind}:{group.replace('/', ':')}{suffix}", kind=kind, task=task, method=method,
        seed=None, step=step, model=model, out=out, group=group, needs=tuple(needs),
    )  # fmt: skip


def _original(path: Path, seed: int) -> Path:
    """A run folder of the original study's layout: pooled ``step_000000/layer_i.pt``."""
    rng = np.random.default_rng(seed)
    step = path / "step_000000"
    step.mkdir(parents=True)
    for i in range(2):
        torch.save(
            torch.from_numpy(rng.normal(size=(6, 4)).astype(np.float32)), step / f"layer_{i}.pt"
        )
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
    original = tmp_path / "original"
    good = _job("import", "sst2/base", model=str(_original(original / "sst2_base", 0)),
                out=tmp_path / "runs" / "sst2_base")  # fmt: skip
    bad_run = _original(original / "sst2_full", 1)
    layer = bad_run / "step_000000" / "layer_0.pt"
    layer.write_bytes(layer.read_bytes()[:-8])  # truncated after it was written
    bad = _job("import", "sst2/full", model=str(bad_run), out=tmp_path / "runs" / "sst2_full")
    missing = _job("extract", "mrpc/lora", out=tmp_path / "mrpc_lora",
                   model=str(tmp_path / "no_such_model"))  # fmt: skip
    after = _job("extract", "mrpc/lora", step=10, out=tmp_path / "mrpc_lora",
                 model=str(tmp_path / "no_such_model"), needs=[missing.id])  # fmt: skip

    outcome = run_local([after, missing, bad, good], progress=False)

    assert outcome.ran == [good.id]
    assert set(outcome.failed) == {bad.id, missing.id, after.id}
    assert "layer_0.pt" in outcome.failed[bad.id]
    assert (tmp_path / "runs" / "sst2_base" / "step_000000" / "layer_1.safetensors").is_file()
    assert "no_such_model does not exist" in outcome.failed[missing.id]
    assert outcome.failed[after.id] == f"not started: {missing.id} failed"
    assert not (tmp_path / "mrpc_lora").exists()


def test_ray_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # "import ray" raises ImportError
    with pytest.raises(
        InputError, match=r'--executor ray needs Ray.*pip install "repdrift\[ray\]"'
    ):
        import_ray()
