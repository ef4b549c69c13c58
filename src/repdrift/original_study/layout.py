"""Where the original study's runs are in its results trees, and what their folder names say.

The original phase-3 scripts wrote one folder per model::

    results/phase3_representations/
        {task}_{method}_seed{seed}/step_000000/layer_{i}.pt      method: full_finetune | lora
    base_representations/representations/
        base_pretrained_{task}/step_000000/layer_{i}.pt

(an older variant named fine-tuned folders ``{method}_seed{seed}_{task}``). The folder names
are the only record of task, method and seed (the spellings of
:mod:`repdrift.common.naming`); the import writes them into each run's manifest.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from repdrift.common.naming import base_folder_names, parse_run_name, variant_folder_names
from repdrift.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["OriginalRun", "base_candidates", "find_runs", "first_run", "variant_candidates"]


@dataclass(frozen=True)
class OriginalRun:
    """One run folder of an original tree and the labels its name gives."""

    folder: Path
    task: str
    method: str  # "base", "full" or "lora"
    seed: int | None


def variant_candidates(root: Path, task: str, method: str, seed: int) -> list[Path]:
    """Folders that may hold a task/method/seed run, in the order they are tried (the
    spellings of :func:`repdrift.common.naming.variant_folder_names`)."""
    return [root / n for n in variant_folder_names(task, method, seed)]


def base_candidates(roots: list[Path], task: str) -> list[Path]:
    """Folders that may hold a task's base run, in the order they are tried (the spellings of
    :func:`repdrift.common.naming.base_folder_names` in each root)."""
    return [r / n for r in roots for n in base_folder_names(task)]


def _is_run(path: Path) -> bool:
    return path.is_dir() and any(p.name.startswith("step_") and p.is_dir() for p in path.iterdir())


def first_run(candidates: list[Path]) -> Path | None:
    """The first candidate folder that holds ``step_*`` folders."""
    return next((p for p in candidates if _is_run(p)), None)


def find_runs(tree: str | Path, *, task: str | None = None) -> list[OriginalRun]:
    """Every run folder under ``tree`` whose name says its task, method and seed.

    Parameters
    ----------
    tree
        The original results tree (or any folder holding run folders, or one run folder).
    task
        Only this task's runs.

    Raises
    ------
    InputError
        No such folder, or no run folder with a known name under it.
    """
    tree = Path(tree)
    if not tree.is_dir():
        raise InputError(f"{tree}: no such folder (expected the original study's results tree)")
    found: list[OriginalRun] = []
    unnamed: list[str] = []
    for root, dirs, _files in os.walk(tree):
        here = Path(root)
        if any(d.startswith("step_") for d in dirs):
            dirs.clear()  # a run folder: its steps are not searched for runs
            labels = parse_run_name(here.name)
            if labels is None:
                unnamed.append(str(here))
            elif task is None or labels.task == task:
                found.append(OriginalRun(here, labels.task, labels.method, labels.seed))
        dirs.sort()
    if unnamed:
        logger.warning(
            "skipped run folder(s) whose name says no task, method and seed "
            "({task}_{method}_seed{seed}, base_pretrained_{task}, {task}_base): %s",
            ", ".join(unnamed),
        )
    if not found:
        which = f" of task {task!r}" if task else ""
        raise InputError(
            f"{tree}: no run folder{which} found (folders holding step_* folders named "
            "{task}_{method}_seed{seed} or base_pretrained_{task})"
        )
    return sorted(found, key=lambda r: (r.task, r.method != "base", r.method, r.seed or 0))
