"""Executors: run a list of jobs here (``local``) or as Ray tasks (``ray``).

Both run every job through :func:`repdrift.runner.dispatch.run_job` and return the same
:class:`Outcome`; a failed job does not stop independent jobs, and the jobs that need it
are not started. Ray is optional (``pip install "repdrift[ray]"``) and imported only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from repdrift.errors import InputError, RepdriftError
from repdrift.runner.dispatch import run_job, run_job_quietly
from repdrift.runner.job import Job

logger = logging.getLogger(__name__)

RAY_INSTALL = 'pip install "repdrift[ray]"  (or: pip install "ray[default]")'


@dataclass
class Outcome:
    """What an executor did: job ids run, and failures by id (the error message)."""

    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def execution_order(jobs: Sequence[Job]) -> list[Job]:
    """Group by group (sorted), and within a group training before extraction by step.

    Finishing a whole variant before starting the next means an interrupted study leaves
    complete runs behind, not many half-done ones.
    """
    rank = {"import": 0, "train": 1, "extract": 2}
    return sorted(jobs, key=lambda j: (j.group, rank[j.kind], j.step, j.id))


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, RepdriftError) else f"{type(exc).__name__}: {exc}"


def run_local(jobs: Sequence[Job], *, progress: bool = True) -> Outcome:
    """Run the jobs one after another in this process."""

    outcome = Outcome()
    for job in execution_order(jobs):
        blocked = [n for n in job.needs if n in outcome.failed]
        if blocked:
            outcome.failed[job.id] = f"not started: {blocked[0]} failed"
            continue
        try:
            run_job(job, progress=progress)
        except Exception as exc:  # one job's failure must not stop independent jobs
            logger.error("%s failed: %s", job.id, _describe(exc),
                         exc_info=not isinstance(exc, RepdriftError))  # fmt: skip
            outcome.failed[job.id] = _describe(exc)
        else:
            outcome.ran.append(job.id)
    return outcome


def import_ray():
    """``import ray`` with an install hint when it is missing."""
    try:
        import ray
    except ImportError:
        raise InputError(
            f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
        ) from None
    return ray


def run_ray(
    jobs: Sequence[Job],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
) -> Outcome:
    """Run each job as a Ray task; a job waits for the jobs it needs (training).

    Parameters
    ----------
    jobs
        The jobs to run.
    address
        A running cluster (``ray start --head`` prints it; ``"auto"`` finds a local one).
        None: use the Ray already initialised in this process, else start a local one.
    num_cpus
        CPUs of a local cluster started here (default: all).

    Each task asks for one GPU when the cluster has any (else one CPU) and writes to the
    experiment's output folder, which must be visible at the same path on every node.
    """
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False)
        else:
            ray.init(address=address)
        started_here = True
    elif address is not None:
        logger.warning("Ray is already initialised in this process; ignoring address %s", address)
    try:
        return _submit_all(ray, jobs)
    finally:
        if started_here:
            ray.shutdown()


def _submit_all(ray, jobs: Sequence[Job]) -> Outcome:

    gpus = float(ray.cluster_resources().get("GPU", 0))
    options = {"num_gpus": 1, "num_cpus": 1} if gpus >= 1 else {"num_cpus": 1}
    logger.info("Ray cluster: %s; each job asks for %s", ray.cluster_resources(), options)
    remote = ray.remote(max_retries=0, **options)(run_job_quietly)
    refs = {}
    for job in execution_order(jobs):
        upstream = [refs[n] for n in job.needs if n in refs]  # Ray starts it after these
        refs[job.id] = remote.remote(job, *upstream)
    outcome = Outcome()
    for job_id, ref in refs.items():
        try:
            ray.get(ref)
        except Exception as exc:  # RayTaskError wraps the job's exception
            cause = getattr(exc, "cause", None) or exc
            logger.error("%s failed: %s", job_id, _describe(cause))
            outcome.failed[job_id] = _describe(cause)
        else:
            outcome.ran.append(job_id)
    return outcome


__all__ = ["RAY_INSTALL", "Outcome", "execution_order", "import_ray", "run_local", "run_ray"]
