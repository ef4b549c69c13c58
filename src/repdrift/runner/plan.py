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
from pathlib import Path

from repdrift.common.naming import checkpoint_folder, find_checkpoints
from repdrift.errors import InputError
from repdrift.runner.experiment import Experiment
from repdrift.runner.job import Job, run_name
from repdrift.runner.original_layout import import_jobs

logger = logging.getLogger(__name__)


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

    found = [s for s in find_checkpoints(model) if s > 0]
    if not found:
        logger.warning("checkpoints: true but %s has no checkpoint-N folder (yet)", model)
    return found


def plan_jobs(exp: Experiment) -> list[Job]:
    """Every job of the study, sorted by id (the order is stable across invocations)."""
    if exp.import_ is not None:

        return sorted(import_jobs(exp), key=lambda j: j.id)
    assert exp.base_model is not None
    jobs: list[Job] = []
    options = exp.extraction
    for task in exp.task_names:
        samples = exp.sample_settings(task)
        jobs.append(
            Job(id=f"extract:{task}:base", kind="extract", task=task, method="base", seed=None,
                step=0, model=exp.base_model, out=exp.runs_dir / run_name(task, "base", None),
                group=f"{task}/base", samples=samples, options=options)
        )  # fmt: skip
        for variant in exp.variants:
            for seed in exp.seeds:
                method = variant.method
                model = exp.variant_path(variant, task, seed)
                labels = {"task": task, "method": method, "seed": seed}
                group = f"{task}/{method}/seed{seed}"
                needs: tuple[str, ...] = ()
                if exp.train is not None:
                    train_id = f"train:{task}:{method}:seed{seed}"
                    jobs.append(
                        Job(id=train_id, kind="train", **labels, step=0, model=exp.base_model,
                            out=model, group=group, samples=samples,
                            training=exp.train.for_method(method))
                    )  # fmt: skip
                    needs = (train_id,)
                out = exp.runs_dir / run_name(task, method, seed)
                extract = {"samples": samples, "base": exp.base_model, "options": options}
                jobs.append(
                    Job(id=f"extract:{task}:{method}:seed{seed}", kind="extract", **labels,
                        step=0, model=str(model), out=out, group=group, needs=needs, **extract)
                )  # fmt: skip
                for step in checkpoint_steps(exp, model):
                    jobs.append(
                        Job(id=f"extract:{task}:{method}:seed{seed}:step{step}", kind="extract",
                            **labels, step=step, model=str(checkpoint_folder(model, step)),
                            out=out, group=group, needs=needs, **extract)
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


__all__ = [
    "checkpoint_folder",
    "checkpoint_steps",
    "parse_shard",
    "plan_jobs",
    "shard_jobs",
]
