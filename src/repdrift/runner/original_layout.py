"""Find the runs of an existing results tree in the original study's layout.

The original phase-3 scripts wrote one folder per fine-tuned model::

    results/phase3_representations/
        {task}_{method}_seed{seed}/step_000000/layer_{i}.pt      method: full_finetune | lora
    base_representations/representations/
        base_pretrained_{task}/step_000000/layer_{i}.pt

(an older variant named fine-tuned folders ``{method}_seed{seed}_{task}``). The layer files
are ``torch.save`` tensors without checksums; :func:`repdrift.store.reader.load_run` reads them with
``torch.load(weights_only=True)``. The folder names are the only record of task, method and
seed, so the runner passes them to the analysis as explicit labels.

The original layout keeps base runs apart from the fine-tuned ones; without a base run a task
cannot be analysed, and one extracted now would not hold the same samples, so the base run
must come from the same tree (``import.base``).
"""

from __future__ import annotations

from pathlib import Path

from repdrift.common.naming import base_folder_names, variant_folder_names
from repdrift.runner.experiment import Experiment
from repdrift.runner.job import Job


def variant_candidates(root: Path, task: str, method: str, seed: int) -> list[Path]:
    """Folders that may hold a task/method/seed run, in the order they are tried (the
    spellings of :func:`repdrift.common.naming.variant_folder_names`)."""
    return [root / n for n in variant_folder_names(task, method, seed)]


def base_candidates(roots: list[Path], task: str) -> list[Path]:
    """Folders that may hold a task's base run, in the order they are tried (the spellings of
    :func:`repdrift.common.naming.base_folder_names` in each root)."""
    return [r / n for r in roots for n in base_folder_names(task)]


def _first(candidates: list[Path]) -> Path | None:
    for path in candidates:
        if path.is_dir() and any(p.name.startswith("step_") for p in path.iterdir()):
            return path
    return None


def import_jobs(exp: Experiment) -> list[Job]:
    """One ``import`` job per base run and per task × method × seed run of the tree.

    A run that is not found becomes a job with its first candidate folder as ``out``; its
    status is then ``missing`` and ``kwargs["tried"]`` lists every folder looked at.
    """
    assert exp.import_ is not None
    runs_root = exp.import_.runs
    base_roots = [exp.import_.base] if exp.import_.base is not None else []
    base_roots += [runs_root]
    jobs = []
    for task in exp.task_names:
        tried = base_candidates(base_roots, task)
        found = _first(tried)
        jobs.append(
            Job(id=f"import:{task}:base", kind="import", task=task, method="base", seed=None,
                step=0, model=str(found or tried[0]), out=found or tried[0],
                group=f"{task}/base", kwargs={"tried": [str(p) for p in tried]})
        )  # fmt: skip
        for method in exp.import_.methods:
            for seed in exp.seeds:
                tried = variant_candidates(runs_root, task, method, seed)
                found = _first(tried)
                jobs.append(
                    Job(id=f"import:{task}:{method}:seed{seed}", kind="import", task=task,
                        method=method, seed=seed, step=0, model=str(found or tried[0]),
                        out=found or tried[0], group=f"{task}/{method}/seed{seed}",
                        kwargs={"tried": [str(p) for p in tried]})
                )  # fmt: skip
    return jobs


__all__ = ["base_candidates", "import_jobs", "variant_candidates"]
