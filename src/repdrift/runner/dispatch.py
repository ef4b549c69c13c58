"""Running one job: the thin bridge from a :class:`~repdrift.runner.plan.Job` to a stage API.

:func:`run_job` is what every executor calls (in this process, in a Ray worker, in a Slurm
array task); it only uses the stages' public functions: :func:`repdrift.training.recipe.train`,
:func:`repdrift.extraction.api.extract_request` (step 0, resumable, a no-op on a complete run), for one
``checkpoint-N`` folder :func:`repdrift.extraction.api.extract_loaded` into ``step_N``, and for
one run of the original study's tree :func:`repdrift.original_study.import_run`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from repdrift.errors import InputError
from repdrift.extraction.api import extract_loaded, extract_request
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.request import check_request
from repdrift.models.load import load_model
from repdrift.models.sources import local_or_hub
from repdrift.original_study.importer import import_run
from repdrift.original_study.layout import OriginalRun
from repdrift.runner.job import Job
from repdrift.store.manifest import step_dir_name
from repdrift.tasks.samples import load_samples
from repdrift.tasks.settings import SampleSettings
from repdrift.training.recipe import train
from repdrift.training.settings import DEFAULT_SEED

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
        samples = _given(job.samples, job)
        train(
            task=job.task, method=job.method, model=job.model, out=job.out,
            seed=job.seed if job.seed is not None else DEFAULT_SEED, data=samples.data,
            **samples.columns(), settings=job.training, progress=progress,
        )  # fmt: skip
    elif job.kind == "extract":
        source = local_or_hub(job.model)
        if not job.needs and isinstance(source, Path) and not source.exists():
            raise InputError(f"{job.id}: model folder {source} does not exist")
        if job.step == 0:
            request = check_request(
                job.model, out=job.out, samples=_given(job.samples, job),
                options=job.options or ExtractionOptions(), base=job.base,
            )  # fmt: skip
            extract_request(request, progress=progress)
        else:
            _extract_checkpoint(job, progress=progress)
    elif job.kind == "import":
        run = OriginalRun(Path(job.model), job.task, job.method, job.seed)
        import_run(run, job.out, samples=job.original)
    else:  # pragma: no cover - Job.kind is a Literal
        raise InputError(f"unknown job kind {job.kind!r}")
    return job.id


def _extract_checkpoint(job: Job, *, progress: bool) -> None:
    """Extract one ``checkpoint-N`` folder into ``RUN/step_N`` (same samples as step 0)."""
    options = job.options or ExtractionOptions()
    folder = Path(job.model)
    if not folder.is_dir():
        raise InputError(
            f"{job.id}: checkpoint folder {folder} does not exist (train with save_steps "
            "dividing the step, or remove the step from checkpoints)"
        )
    samples = load_samples(_given(job.samples, job))  # read before the model loads
    loaded = load_model(folder, base=job.base, placement=options)
    extract_loaded(
        loaded,
        samples,
        job.out / step_dir_name(job.step),
        options=options,
        step=job.step,
        progress=progress,
    )


def _given(samples: SampleSettings | None, job: Job) -> SampleSettings:
    if samples is None:  # pragma: no cover - plan_jobs gives train and extract jobs samples
        raise InputError(f"{job.id}: the job carries no samples")
    return samples


def run_job_quietly(job: Job, *_upstream: object) -> str:
    """:func:`run_job` without progress bars, for remote workers (upstream results ignored)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    return run_job(job, progress=False)


__all__ = ["run_job", "run_job_quietly"]
