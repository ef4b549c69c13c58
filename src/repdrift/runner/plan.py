"""The experiment matrix: which jobs a study needs, what state each is in, and shards.

A :class:`Job` is one unit of work an executor can run anywhere the output folder is
visible: train one variant, extract one model (one checkpoint step) into a run directory,
or check one imported run. Jobs carry everything they need as plain values, so the same
job runs in this process, in a Ray worker, or in another Slurm array task.

Jobs of one variant (its training and all its extraction steps) share a ``group``; shards
split groups, never a group, so a shard never waits for another shard's training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from repdrift.config import Experiment
from repdrift.errors import InputError

logger = logging.getLogger(__name__)

JobKind = Literal["train", "extract", "import"]
Status = Literal["done", "partial", "todo", "missing", "stale", "invalid"]


@dataclass(frozen=True)
class Job:
    """One train / extract / import job.

    Attributes
    ----------
    id
        Stable, unique, sortable: ``train:sst2:lora:seed42``, ``extract:sst2:base``,
        ``extract:sst2:full:seed42:step100``.
    kind
        ``train``, ``extract`` or ``import``.
    task, method, seed, step
        Labels of the run (``method`` is ``base``, ``full`` or ``lora``; ``seed`` None for
        the base run; ``step`` 0 for the final model).
    model
        What is loaded: the base model (train, base extraction), the variant folder, or a
        ``checkpoint-N`` folder.
    out
        The run directory (extract, import) or the trained model folder (train).
    group
        Shard unit: ``sst2/lora/seed42`` or ``sst2/base``.
    needs
        Ids of jobs that must finish first.
    kwargs
        Keyword arguments of the stage function (picklable plain values).
    """

    id: str
    kind: JobKind
    task: str
    method: str
    seed: int | None
    step: int
    model: str
    out: Path
    group: str
    needs: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict, compare=False)


def run_name(task: str, method: str, seed: int | None) -> str:
    """The original study's run folder name: ``{task}_{method}_seed{seed}`` or ``{task}_base``."""
    return f"{task}_base" if method == "base" else f"{task}_{method}_seed{seed}"


def _extract_kwargs(exp: Experiment, task: str) -> dict[str, Any]:
    t = exp.task(task)
    e = exp.extraction
    return {
        "task": task, "data": str(t.data) if t.data else None, "split": t.split,
        "samples": exp.samples, "seed": exp.sample_seed, "pooling": e.pooling,
        "layers": e.layers, "batch_size": e.batch_size, "max_tokens": e.max_tokens,
        "dtype": e.dtype, "device": e.device, "format": e.format,
        "trust_remote_code": e.trust_remote_code,
    }  # fmt: skip


def checkpoint_steps(exp: Experiment, model: Path) -> list[int]:
    """Checkpoint steps to extract for one variant (besides the final model, step 0).

    A list in the experiment is taken as is. ``checkpoints: true`` means every step the
    training saves (``save_steps`` multiples up to ``max_steps``) when the experiment trains,
    else every ``checkpoint-N`` folder found in or beside the variant folder now.
    """
    if exp.checkpoints is False:
        return []
    if isinstance(exp.checkpoints, list):
        return list(exp.checkpoints)
    if exp.train is not None:
        assert exp.train.save_steps and exp.train.max_steps  # checked by the config
        return list(range(exp.train.save_steps, exp.train.max_steps + 1, exp.train.save_steps))
    from repdrift.extract import find_checkpoints

    found = [s for s in find_checkpoints(model) if s > 0]
    if not found:
        logger.warning("checkpoints: true but %s has no checkpoint-N folder (yet)", model)
    return found


def checkpoint_folder(model: Path, step: int) -> Path:
    """``checkpoint-{step}`` inside the variant folder (where training saves it), else beside it."""
    inside = model / f"checkpoint-{step}"
    beside = model.parent / f"checkpoint-{step}"
    return beside if not inside.exists() and beside.exists() else inside


def plan_jobs(exp: Experiment) -> list[Job]:
    """Every job of the study, sorted by id (the order is stable across invocations)."""
    if exp.import_ is not None:
        from repdrift.runner.legacy import import_jobs

        return sorted(import_jobs(exp), key=lambda j: j.id)
    assert exp.base_model is not None
    jobs: list[Job] = []
    for task in exp.task_names:
        kwargs = _extract_kwargs(exp, task)
        jobs.append(
            Job(f"extract:{task}:base", "extract", task, "base", None, 0, exp.base_model,
                exp.runs_dir / run_name(task, "base", None), f"{task}/base", (), kwargs)
        )  # fmt: skip
        for variant in exp.variants:
            for seed in exp.seeds:
                method = variant.method
                model = exp.variant_path(variant, task, seed)
                group = f"{task}/{method}/seed{seed}"
                needs: tuple[str, ...] = ()
                if exp.train is not None:
                    t = exp.task(task)
                    train_id = f"train:{task}:{method}:seed{seed}"
                    train_kwargs = {
                        "task": task, "method": method, "seed": seed,
                        "data": str(t.data) if t.data else None,
                        **exp.train.arguments(method),
                    }  # fmt: skip
                    jobs.append(
                        Job(train_id, "train", task, method, seed, 0, exp.base_model, model,
                            group, (), train_kwargs)
                    )  # fmt: skip
                    needs = (train_id,)
                out = exp.runs_dir / run_name(task, method, seed)
                ekw = {**kwargs, "base": exp.base_model}
                jobs.append(
                    Job(f"extract:{task}:{method}:seed{seed}", "extract", task, method, seed, 0,
                        str(model), out, group, needs, ekw)
                )  # fmt: skip
                for step in checkpoint_steps(exp, model):
                    jobs.append(
                        Job(f"extract:{task}:{method}:seed{seed}:step{step}", "extract", task,
                            method, seed, step, str(checkpoint_folder(model, step)), out, group,
                            needs, ekw)
                    )  # fmt: skip
    ids = [j.id for j in jobs]
    assert len(set(ids)) == len(ids), "job ids must be unique"
    return sorted(jobs, key=lambda j: j.id)


# ------------------------------------------------------------------------------- sharding


def parse_shard(spec: str) -> tuple[int, int]:
    """``"2/8"`` → ``(2, 8)``: shard index ``i`` (0-based) of ``n``.

    Raises
    ------
    InputError
        Not ``i/n`` with integers ``0 <= i < n``.
    """
    try:
        index_s, count_s = spec.split("/")
        index, count = int(index_s), int(count_s)
    except ValueError:
        raise InputError(f"--shard {spec!r}: expected i/n, e.g. 0/4 (i from 0 to n-1)") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {spec!r}: need 0 <= i < n (i counts from 0, like Slurm arrays)")
    return index, count


def shard_jobs(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard ``index`` of ``count``: whole groups, balanced by job count.

    Groups (a variant's training and extractions; a task's base run) are taken largest
    first, ties by name, and each goes to the shard with the fewest jobs so far (ties: the
    lowest index). Every job lands in exactly one shard, and the split depends only on the
    plan, not on what is already done, so every array task computes the same split.
    """
    if count < 1 or not 0 <= index < count:
        raise InputError(f"shard {index}/{count}: need 0 <= index < count")
    sizes: dict[str, int] = {}
    for job in jobs:
        sizes[job.group] = sizes.get(job.group, 0) + 1
    load = [0] * count
    owner: dict[str, int] = {}
    for group in sorted(sizes, key=lambda g: (-sizes[g], g)):
        target = min(range(count), key=lambda k: (load[k], k))
        owner[group] = target
        load[target] += sizes[group]
    return [j for j in jobs if owner[j.group] == index]


# ------------------------------------------------------------------------------- status


def job_status(job: Job) -> Status:
    """State of a job on disk (cheap: no model is loaded).

    ``done``: train — a complete training record; extract/import — the step verifies
    (:func:`repdrift.runs.verify_run` finds no problem) and matches the experiment's
    samples and extraction settings. ``partial``: started, resumable. ``todo``: not started.
    ``missing``: the model to extract (or the run to import) does not exist and nothing in
    the plan creates it. ``stale``: complete but made with other settings (never
    overwritten: the runner stops and says so). ``invalid``: a complete run (or an
    imported one) that fails verification: a file was edited, truncated or removed.
    """
    if job.kind == "train":
        from repdrift.models import read_training_record

        record = read_training_record(job.out) if job.out.is_dir() else None
        if record is None:
            return "todo"
        if not record.get("complete"):
            return "partial"
        return "stale" if train_stale_reason(job, record) else "done"
    from repdrift.manifest import MANIFEST_NAME, step_dir_name
    from repdrift.runs import run_summary, verify_run

    if job.kind == "import":
        if not job.out.exists():
            return "missing"
        return "done" if not verify_run(job.out) else "invalid"
    step_dir = job.out / step_dir_name(job.step)
    if not verify_run(step_dir):
        return "stale" if stale_reason(job) else "done"
    if step_dir.exists() and (step_dir / MANIFEST_NAME).exists():
        # a partial manifest resumes; a complete one that fails verification was damaged
        return "invalid" if run_summary(step_dir)["status"] == "complete" else "partial"
    if not job.needs and not Path(job.model).exists() and _looks_local(job.model):
        return "missing"
    return "todo"


def _looks_local(model: str) -> bool:
    # a hub id (org/name) of a base model is fetched by extract; a variant folder is local
    return model.startswith(("/", ".", "~"))


def train_stale_reason(job: Job, record: dict[str, Any]) -> str | None:
    """Why a finished training does not match the experiment's ``train`` settings (or None).

    Compares the settings that define the model (as recorded by :func:`repdrift.train.train`,
    defaults filled in); ``train`` itself refuses to overwrite such a folder.
    """
    from repdrift.train import DEFAULT_LR

    have = record.get("arguments") or {}
    kw = job.kwargs
    lora = job.method == "lora"
    want = {
        "task": kw["task"], "method": kw["method"], "seed": kw["seed"],
        "max_steps": kw["max_steps"], "batch_size": kw["batch_size"],
        "max_train_samples": kw["max_train_samples"], "save_steps": kw["save_steps"],
        "lr": float(kw["lr"] if kw["lr"] is not None else DEFAULT_LR[job.method]),
        "epochs": float(kw["epochs"]) if kw["epochs"] is not None else None,
        "rank": kw["rank"] if lora else None, "alpha": kw["alpha"] if lora else None,
    }  # fmt: skip
    for name, value in want.items():
        if name in have and have[name] != value:
            return f"{name} is {have[name]!r} in its training record, the experiment asks for {value!r}"  # fmt: skip
    return None


def stale_reason(job: Job) -> str | None:
    """Why a complete run or training does not match its job's settings (None when it does)."""
    if job.kind == "train":
        from repdrift.models import read_training_record

        record = read_training_record(job.out)
        return train_stale_reason(job, record) if record else None
    from repdrift.manifest import step_dir_name
    from repdrift.runs import load_run

    manifest = load_run(job.out / step_dir_name(job.step), verify=False).manifest
    if manifest is None:
        return None
    kw = job.kwargs
    expected = {
        "task": (manifest.task, kw["task"]),
        "samples": (manifest.data.get("n_requested"), kw["samples"]),
        "sample_seed": (manifest.data.get("seed"), kw["seed"]),
        "pooling": (manifest.pooling, kw["pooling"]),
        "dtype": (manifest.dtype, kw["dtype"]),
        "format": (manifest.format, kw["format"]),
        "kind": (manifest.kind, job.method),
    }
    for name, (have, want) in expected.items():
        if have is not None and have != want:  # runs written elsewhere may not record it
            return f"{name} is {have!r} in the run, the experiment asks for {want!r}"
    return None


def statuses(jobs: Sequence[Job]) -> dict[str, Status]:
    """Status of every job, by id."""
    return {job.id: job_status(job) for job in jobs}


__all__ = [
    "Job",
    "JobKind",
    "Status",
    "checkpoint_folder",
    "checkpoint_steps",
    "job_status",
    "parse_shard",
    "plan_jobs",
    "run_name",
    "shard_jobs",
    "stale_reason",
    "statuses",
    "train_stale_reason",
]
