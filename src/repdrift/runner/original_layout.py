"""The study file's ``import:`` section: one import job per run of the original study's tree.

Each job converts one run folder of the tree (found under the spellings of
:mod:`repdrift.original_study.layout`) into a standard run directory in the study's runs
folder (``OUTPUT/runs/{task}_{method}_seed{seed}``), as ``repdrift import`` does
(:func:`repdrift.original_study.import_run`); the analysis then reads those runs like extracted
ones. With ``import.tokenizer`` the jobs carry how each task's samples were tokenised, so
unpooled layers are pooled over real tokens.

The original layout keeps base runs apart from the fine-tuned ones; without a base run a task
cannot be analysed, and one extracted now would not hold the same samples, so the base run
must come from the same tree (``import.base``).
"""

from __future__ import annotations

from pathlib import Path

from repdrift.common.naming import BASE, run_name
from repdrift.original_study.layout import base_candidates, first_run, variant_candidates
from repdrift.original_study.token_counts import OriginalSamples
from repdrift.runner.experiment import Experiment
from repdrift.runner.job import Job


def _original(exp: Experiment, task: str) -> OriginalSamples | None:
    """How the task's samples were tokenised (``import.tokenizer``; None: pool as it did)."""
    assert exp.import_ is not None
    if exp.import_.tokenizer is None:
        return None
    return OriginalSamples(exp.sample_settings(task), exp.import_.tokenizer)


def import_jobs(exp: Experiment) -> list[Job]:
    """One ``import`` job per base run and per task × method × seed run of the tree.

    ``model`` is the original folder (the first candidate when none is found: the job's status
    is then ``missing`` and ``tried`` lists every folder looked at); ``out`` is the
    standard run it becomes.
    """
    assert exp.import_ is not None
    runs_root = exp.import_.runs
    base_roots = [exp.import_.base] if exp.import_.base is not None else []
    base_roots += [runs_root]
    jobs = []
    for task in exp.task_names:
        wanted: list[tuple[str, int | None, list[Path]]] = [
            (BASE, None, base_candidates(base_roots, task))
        ]
        wanted += [
            (method, seed, variant_candidates(runs_root, task, method, seed))
            for method in exp.import_.methods
            for seed in exp.seeds
        ]
        for method, seed, tried in wanted:
            found = first_run(tried)
            suffix = "base" if seed is None else f"{method}:seed{seed}"
            group = f"{task}/base" if seed is None else f"{task}/{method}/seed{seed}"
            jobs.append(
                Job(id=f"import:{task}:{suffix}", kind="import", task=task, method=method,
                    seed=seed, step=0, model=str(found or tried[0]),
                    out=exp.runs_dir / run_name(task, method, seed), group=group,
                    tried=tuple(str(p) for p in tried), original=_original(exp, task))
            )  # fmt: skip
    return jobs


__all__ = ["import_jobs"]
