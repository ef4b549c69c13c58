"""The study runner: an experiment file in, runs, results, figures and a report out.

:func:`make_plan` expands an :class:`~repdrift.runner.experiment.Experiment` into jobs (train missing
variants, extract the base once per task, extract every variant × seed × checkpoint step, or
import an existing tree) and reads their state from disk. :func:`execute` runs what is not
done yet (locally or on Ray), then the study-wide stages (analysis, weights, figures,
report). Everything is resumable: complete runs are skipped, partial runs resume, and a
stage whose inputs did not change is not redone, so a killed study re-run finishes with the
same results as an uninterrupted one.

Modules: :mod:`.plan` (jobs, state, shards), :mod:`.jobs` (one job → stage API),
:mod:`.executors` (local, Ray), :mod:`.stages` (analysis, weights, figures, report),
:mod:`.legacy` (the original study's folder layout), :mod:`.summary` (headline numbers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from repdrift.errors import InputError, RepdriftError
from repdrift.runner.executors import Outcome, execution_order, run_local, run_ray
from repdrift.runner.experiment import Experiment
from repdrift.runner.experiment_file import load_experiment
from repdrift.runner.job import Job, Status
from repdrift.runner.plan import parse_shard, plan_jobs, shard_jobs
from repdrift.runner.stages import (
    output_fingerprint,
    run_analysis,
    run_figures,
    run_report,
    run_weights,
    stage_status,
    stage_statuses,
)
from repdrift.runner.status import job_status, stale_reason
from repdrift.store.manifest import step_dir_name
from repdrift.store.steps import verify_run

logger = logging.getLogger(__name__)

Executor = Literal["local", "ray"]


@dataclass
class Plan:
    """The jobs of a study, their state on disk, and which of them this invocation runs.

    Attributes
    ----------
    experiment : Experiment
    jobs : list of Job
        Every job of the study, sorted by id.
    selected : list of Job
        The jobs this invocation is responsible for (all, or one shard's).
    status : dict
        Job id → ``done``, ``partial``, ``todo``, ``missing``, ``stale`` or ``invalid``.
    stages : dict
        ``analysis``, ``weights``, ``figures``, ``report`` → ``done``, ``todo`` or ``off``.
    shard : (int, int) or None
    """

    experiment: Experiment
    jobs: list[Job]
    selected: list[Job]
    status: dict[str, Status]
    stages: dict[str, str]
    shard: tuple[int, int] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One row per job in execution order: job id, kind, task, method, seed, step,
        model, output, status, and whether this invocation (shard) runs it."""
        chosen = {j.id for j in self.selected}
        return [
            {
                "job": j.id,
                "kind": j.kind,
                "task": j.task,
                "method": j.method,
                "seed": j.seed,
                "step": j.step,
                "model": j.model,
                "output": str(j.out),
                "status": self.status[j.id],
                "selected": j.id in chosen,
            }
            for j in execution_order(self.jobs)
        ]

    @property
    def todo(self) -> list[Job]:
        """Selected jobs that are not done."""
        return [j for j in self.selected if self.status[j.id] != "done"]

    def problems(self) -> list[str]:
        """Why the selected jobs cannot run (missing models or runs, stale or invalid runs)."""
        out = []
        for job in self.selected:
            state = self.status[job.id]
            if state == "missing" and job.kind == "import":
                tried = ", ".join(job.tried or (str(job.out),))
                what = "base run" if job.method == "base" else "run"
                out.append(f"{job.id}: no {what} found (tried {tried})")
            elif state == "missing":
                out.append(
                    f"{job.id}: model folder {job.model} does not exist; fix the variant's "
                    "path template or add a train section to train it"
                )
            elif state == "stale" and job.kind == "train":
                out.append(
                    f"{job.id}: {job.out} holds a model trained with other settings "
                    f"({stale_reason(job)}); delete it or change the variant's path template"
                )
            elif state == "stale":
                out.append(
                    f"{job.id}: {job.out} is a complete run made with other settings "
                    f"({stale_reason(job)}); delete it or choose another output folder"
                )
            elif state == "invalid":

                where = job.out if job.kind == "import" else job.out / step_dir_name(job.step)
                fix = "" if job.kind == "import" else f"; delete {where} to extract it again"
                out.append(f"{job.id}: {verify_run(where)[0]}{fix}")
        return out


def _train_status(job: Job, jobs: list[Job], status: dict[str, Status]) -> Status:
    """A training is not needed when its model exists without a record (trained elsewhere)
    or when every extraction that needs it is already done."""
    own = status[job.id]
    if own in ("done", "stale"):
        return own
    dependents = [j for j in jobs if job.id in j.needs]
    if dependents and all(status[j.id] == "done" for j in dependents):
        return "done"
    if own == "todo" and any(
        (job.out / f).is_file() for f in ("config.json", "adapter_config.json")
    ):
        logger.info("%s: %s exists without a training record; using it as is", job.id, job.out)
        return "done"
    return own


def make_plan(experiment: Experiment, *, shard: tuple[int, int] | str | None = None) -> Plan:
    """Expand an experiment into jobs and read their state (no model is loaded).

    Parameters
    ----------
    experiment
        A validated experiment (:func:`repdrift.runner.experiment_file.load_experiment`).
    shard
        ``(i, n)`` or ``"i/n"``: select shard ``i`` (0-based) of ``n`` (see
        :func:`repdrift.runner.plan.shard_jobs`).
    """
    if isinstance(shard, str):
        shard = parse_shard(shard)
    jobs = plan_jobs(experiment)
    status: dict[str, Status] = {j.id: job_status(j) for j in jobs if j.kind != "train"}
    for j in jobs:
        if j.kind == "train":
            status[j.id] = job_status(j)
    for j in jobs:
        if j.kind == "train":
            status[j.id] = _train_status(j, jobs, status)
    selected = shard_jobs(jobs, *shard) if shard else list(jobs)
    stages = stage_statuses(experiment, jobs)
    return Plan(experiment, jobs, selected, {j.id: status[j.id] for j in jobs}, stages, shard)


@dataclass
class RunResult:
    """What :func:`execute` did.

    Attributes
    ----------
    plan : Plan
        The plan as it was before running.
    outcome : Outcome
        Jobs run (ids) and failures.
    skipped : list of str
        Selected jobs that were already done.
    stages : dict
        Stage → ``ran``, ``up to date``, ``skipped`` (not available) or ``off``.
    analysis_skipped : str or None
        Why the study-wide stages did not run (``"shard"``), else None.
    """

    plan: Plan
    outcome: Outcome
    skipped: list[str] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)
    analysis_skipped: str | None = None

    @property
    def results(self) -> Path:
        return self.plan.experiment.results_dir

    @property
    def report(self) -> Path | None:
        path = self.plan.experiment.report_path
        return path if path.exists() else None


def execute(
    plan: Plan,
    *,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    progress: bool = True,
) -> RunResult:
    """Run the plan's unfinished jobs, then (unless sharded) analysis, weights, figures, report.

    Raises
    ------
    InputError
        A selected job cannot run (missing model or run, a complete run made with other
        settings): nothing is started.
    RepdriftError
        Some jobs failed (the others finished and are kept); the analysis did not run.
    """
    problems = plan.problems()
    if problems:
        raise InputError("\n".join(problems))
    if executor not in ("local", "ray"):
        raise InputError(f"executor {executor!r}: expected 'local' or 'ray'")
    todo = plan.todo
    skipped = [j.id for j in plan.selected if plan.status[j.id] == "done"]
    for job_id in skipped:
        logger.info("skip %s: done", job_id)
    if executor == "ray" and todo:
        outcome = run_ray(todo, address=ray_address, num_cpus=ray_num_cpus)
    else:
        outcome = run_local(todo, progress=progress)
    result = RunResult(plan, outcome, skipped)
    if outcome.failed:
        lines = [f"{k}: {v}" for k, v in outcome.failed.items()]
        raise RepdriftError(
            f"{len(outcome.failed)} job(s) failed (finished jobs are kept; fix and re-run):\n"
            + "\n".join(lines)
        )
    if plan.shard is not None:
        result.analysis_skipped = "shard"
        return result
    exp, jobs = plan.experiment, plan.jobs
    result.stages["analysis"] = (
        "ran" if run_analysis(exp, jobs, progress=progress) else "up to date"
    )
    if exp.analysis.weights and exp.import_ is None:
        result.stages["weights"] = (
            "ran" if run_weights(exp, jobs, progress=progress) else "up to date"
        )
    else:
        result.stages["weights"] = "off"
    for stage, fn in (("figures", run_figures), ("report", run_report)):
        result.stages[stage] = "ran" if fn(exp) else _why_not(exp, stage)
    return result


def _why_not(exp: Experiment, stage: str) -> str:

    done = stage_status(exp, stage, output_fingerprint(exp, stage)) == "done"
    return "up to date" if done else "skipped (not available)"


def run_experiment(
    experiment: str | Path | Experiment,
    *,
    output: str | Path | None = None,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_num_cpus: int | None = None,
    shard: tuple[int, int] | str | None = None,
    progress: bool = True,
) -> RunResult:
    """Load (if a path), plan and execute a study; see :func:`make_plan` and :func:`execute`."""
    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment, output=output)
    elif output is not None:
        experiment = experiment.model_copy(update={"output": Path(output).resolve()})
    plan = make_plan(experiment, shard=shard)
    return execute(
        plan, executor=executor, ray_address=ray_address, ray_num_cpus=ray_num_cpus,
        progress=progress,
    )  # fmt: skip


__all__ = [
    "Executor",
    "Job",
    "Outcome",
    "Plan",
    "RunResult",
    "execute",
    "make_plan",
    "parse_shard",
    "run_experiment",
]
