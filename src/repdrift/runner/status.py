"""The on-disk state of a job: done, partial, todo, missing, stale or invalid, and why a finished job is stale."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repdrift.models.sources import local_or_hub
from repdrift.models.training_record import read_training_record
from repdrift.runner.job import Job, Status
from repdrift.store.manifest import MANIFEST_NAME, step_dir_name
from repdrift.store.reader import load_run, run_summary
from repdrift.store.steps import verify_run
from repdrift.training.settings import TrainingSettings


def job_status(job: Job) -> Status:
    """State of a job on disk (cheap: no model is loaded).

    ``done``: train — a complete training record; extract/import — the step verifies
    (:func:`repdrift.store.steps.verify_run` finds no problem) and matches the experiment's
    samples and extraction settings. ``partial``: started, resumable. ``todo``: not started.
    ``missing``: the model to extract (or the run to import) does not exist and nothing in
    the plan creates it. ``stale``: complete but made with other settings (never
    overwritten: the runner stops and says so). ``invalid``: a complete run (or an
    imported one) that fails verification: a file was edited, truncated or removed.
    """
    if job.kind == "train":

        record = read_training_record(job.out) if job.out.is_dir() else None
        if record is None:
            return "todo"
        if not record.get("complete"):
            return "partial"
        return "stale" if train_stale_reason(job, record) else "done"

    if job.kind == "import":
        if not Path(job.model).is_dir():
            return "missing"
        if not verify_run(job.out):
            return "done"
        if not job.out.exists():
            return "todo"
        return "invalid" if run_summary(job.out)["status"] == "complete" else "partial"
    step_dir = job.out / step_dir_name(job.step)
    if not verify_run(step_dir):
        return "stale" if stale_reason(job) else "done"
    if step_dir.exists() and (step_dir / MANIFEST_NAME).exists():
        # a partial manifest resumes; a complete one that fails verification was damaged
        return "invalid" if run_summary(step_dir)["status"] == "complete" else "partial"
    # a hub id is fetched by extract; a local folder (by the one path-or-hub rule) must exist
    if not job.needs and _missing_folder(job.model):
        return "missing"
    return "todo"


def _missing_folder(model: str) -> bool:
    src = local_or_hub(model)
    return isinstance(src, Path) and not src.exists()


def train_stale_reason(job: Job, record: dict[str, Any]) -> str | None:
    """Why a finished training does not match the experiment's ``train`` settings (or None).

    Compares the settings that define the model (as recorded by :func:`repdrift.training.recipe.train`,
    defaults filled in); ``train`` itself refuses to overwrite such a folder.
    """

    have = record.get("arguments") or {}
    t = job.training or TrainingSettings()
    lora = job.method == "lora"
    want = {
        "task": job.task, "method": job.method, "seed": job.seed,
        "max_steps": t.max_steps, "batch_size": t.batch_size,
        "max_train_samples": t.max_train_samples, "save_steps": t.save_steps,
        "lr": t.learning_rate(job.method),
        "epochs": float(t.epochs) if t.epochs is not None else None,
        "rank": t.rank if lora else None, "alpha": t.alpha if lora else None,
    }  # fmt: skip
    for name, value in want.items():
        if name in have and have[name] != value:
            return f"{name} is {have[name]!r} in its training record, the experiment asks for {value!r}"  # fmt: skip
    return None


def stale_reason(job: Job) -> str | None:
    """Why a complete run or training does not match its job's settings (None when it does)."""
    if job.kind == "train":

        record = read_training_record(job.out)
        return train_stale_reason(job, record) if record else None

    manifest = load_run(job.out / step_dir_name(job.step), verify=False).manifest
    if manifest is None:
        return None
    samples, options = job.samples, job.options
    # plan_jobs gives every extract job the study's samples and extraction options
    assert samples is not None and options is not None
    expected = {
        "task": (manifest.task, job.task),
        "samples": (manifest.data.get("n_requested"), samples.n),
        "sample_seed": (manifest.data.get("seed"), samples.seed),
        "pooling": (manifest.pooling, options.pooling),
        # dtype auto is what the extracting machine resolved it to (bf16 on a GPU, else fp32)
        "dtype": (None if options.dtype == "auto" else manifest.dtype, options.dtype),
        "format": (manifest.format, options.format),
        "kind": (manifest.kind, job.method),
    }
    for name, (have, want) in expected.items():
        if have is not None and have != want:  # runs written elsewhere may not record it
            return f"{name} is {have!r} in the run, the experiment asks for {want!r}"
    return None


def statuses(jobs: Sequence[Job]) -> dict[str, Status]:
    """Status of every job, by id."""
    return {job.id: job_status(job) for job in jobs}
