"""Running one job: the thin bridge from a :class:`~repdrift.runner.plan.Job` to a stage API.

:func:`run_job` is what every executor calls (in this process, in a Ray worker, in a Slurm
array task); it only uses the stages' public functions: :func:`repdrift.training.recipe.train`,
:func:`repdrift.extraction.api.extract` (step 0, resumable, a no-op on a complete run), for one
``checkpoint-N`` folder :func:`repdrift.extraction.api.extract_loaded` into ``step_N``, and for
one run of the original study's tree :func:`repdrift.original_study.import_run`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from repdrift.errors import InputError
from repdrift.extraction.api import extract, extract_loaded
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.load import load_model
from repdrift.models.sources import local_or_hub
from repdrift.original_study.importer import import_run
from repdrift.original_study.layout import OriginalRun
from repdrift.runner.job import Job
from repdrift.runner.original_layout import job_samples
from repdrift.store.manifest import step_dir_name
from repdrift.tasks.samples import load_samples
from repdrift.training.recipe import train

logger = logging.getLogger(__name__)


def run_job(job: Job, *, progress: bool = True) -> str:
    """Run one job to completion; returns its id.

    Raises
    ------
    InputError, IntegrityError
        From the stage (bad settings, missing model, a run made with other settings, ...).
    """
    logger.info("running %s", job.id)
    if job.kind == "train":
        train(model=job.model, out=job.out, progress=progress, **job.kwargs)
    elif job.kind == "extract":
        source = local_or_hub(job.model)
        if not job.needs and isinstance(source, Path) and not source.exists():
            raise InputError(f"{job.id}: model folder {source} does not exist")
        if job.step == 0:
            extract(job.model, out=job.out, options=job.options, progress=progress, **job.kwargs)
        else:
            _extract_checkpoint(job, progress=progress)
    elif job.kind == "import":
        run = OriginalRun(Path(job.model), job.task, job.method, job.seed)
        import_run(run, job.out, samples=job_samples(job))
    else:  # pragma: no cover - Job.kind is a Literal
        raise InputError(f"unknown job kind {job.kind!r}")
    return job.id


def _extract_checkpoint(job: Job, *, progress: bool) -> None:
    """Extract one ``checkpoint-N`` folder into ``RUN/step_N`` (same samples as step 0)."""
    kw, options = job.kwargs, job.options or ExtractionOptions()
    folder = Path(job.model)
    if not folder.is_dir():
        raise InputError(
            f"{job.id}: checkpoint folder {folder} does not exist (train with save_steps "
            "dividing the step, or remove the step from checkpoints)"
        )
    loaded = load_model(folder, base=kw["base"], placement=options)
    samples = load_samples(
        kw["task"], data=kw["data"], split=kw["split"], n=kw["samples"], seed=kw["seed"],
        text_fields=kw.get("text_fields"), id_field=kw.get("id_field"),
        label_field=kw.get("label_field"), max_length=kw.get("max_length"),
    )  # fmt: skip
    extract_loaded(
        loaded,
        samples,
        job.out / step_dir_name(job.step),
        options=options,
        step=job.step,
        progress=progress,
    )


def run_job_quietly(job: Job, *_upstream: object) -> str:
    """:func:`run_job` without progress bars, for remote workers (upstream results ignored)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return run_job(job, progress=False)


__all__ = ["run_job", "run_job_quietly"]
