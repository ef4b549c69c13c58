"""Describe and pair run directories for analysis: which base run each fine-tuned run meets.

Task, method and training seed come from the manifests (the ``kind`` and ``model.training``
fields written at extraction), with explicit overrides. Only legacy runs without a manifest
fall back to the folder name, read by :func:`repdrift.common.naming.parse_run_name` (the
original study's spellings included: ``{task}_{method}_seed{seed}`` with method ``full``,
``full_finetune``, ``full_ft`` or ``lora``; ``base_pretrained_{task}`` or ``{task}_base``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repdrift.common.naming import parse_run_name
from repdrift.errors import InputError
from repdrift.store.reader import Run, load_run


@dataclass(frozen=True)
class RunInfo:
    """One run directory with the labels analysis groups by."""

    run: Run
    name: str
    task: str
    method: str  # "base", "full", "lora" (or a user label)
    seed: int | None  # training seed; None when unknown

    @property
    def is_reference(self) -> bool:
        return self.method == "base"


def describe(
    path: str | Path, overrides: Mapping[str, Any] | None = None, *, verify: bool = True
) -> RunInfo:
    """Open a run and read its labels.

    Parameters
    ----------
    path
        Run directory.
    overrides
        ``task``, ``method`` and/or ``seed`` to use instead of what the manifest says.
    verify
        Check file hashes while opening (see :func:`repdrift.store.reader.load_run`).
    """
    run = load_run(path, verify=verify)
    over = dict(overrides or {})
    unknown = set(over) - {"task", "method", "seed"}
    if unknown:
        raise InputError(f"{path}: unknown label(s) {sorted(unknown)}; expected task, method, seed")
    labels: dict[str, Any] = {}
    if run.manifest is not None:
        training = run.manifest.model.get("training") or {}
        labels = {
            "task": run.manifest.task,
            "method": run.manifest.kind,
            "seed": training.get("seed"),
        }
    else:
        if named := parse_run_name(Path(path).name):
            labels = {"task": named.task, "method": named.method, "seed": named.seed}
    labels.update(over)
    for field in ("task", "method"):
        if not labels.get(field):
            raise InputError(
                f"{path}: no {field} recorded (legacy run whose folder name is not "
                f"'{{task}}_{{method}}_seed{{seed}}'); pass it explicitly"
            )
    seed = labels.get("seed")
    return RunInfo(
        run,
        Path(path).name,
        str(labels["task"]),
        str(labels["method"]),
        None if seed is None else int(seed),
    )


@dataclass(frozen=True)
class TaskGroup:
    """The base run of one task and the fine-tuned runs compared with it."""

    task: str
    reference: RunInfo
    variants: list[RunInfo]


def group_by_task(runs: Iterable[RunInfo]) -> list[TaskGroup]:
    """Pair every fine-tuned run with the base run of its task, checking they are comparable.

    Raises
    ------
    InputError
        A task without a base run or with several, or a run whose sample ids, order, pooling
        or layers differ from its base run's (the message names both runs and the field).
    """
    by_task: dict[str, list[RunInfo]] = {}
    for info in runs:
        by_task.setdefault(info.task, []).append(info)
    groups = []
    for task, infos in sorted(by_task.items()):
        refs = [i for i in infos if i.is_reference]
        variants = [i for i in infos if not i.is_reference]
        if len(refs) != 1:
            found = ", ".join(str(r.run.path) for r in refs) or "none"
            raise InputError(
                f"task {task!r} needs exactly one base run (manifest kind 'base'); found {found}"
            )
        if not variants:
            raise InputError(f"task {task!r} has a base run but no fine-tuned run to compare")
        for v in variants:
            check_comparable(refs[0], v)
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise InputError(
                f"task {task!r}: two runs share the folder name; rename one of {names}"
            )
        groups.append(
            TaskGroup(
                task, refs[0], sorted(variants, key=lambda v: (v.method, v.seed or 0, v.name))
            )
        )
    return groups


def check_comparable(ref: RunInfo, other: RunInfo) -> None:
    """Refuse runs that do not hold the same samples, in the same order, pooled the same way."""
    a, b = ref.run, other.run
    where = f"{b.path} vs base run {a.path}"
    ids_a, ids_b = a.sample_ids, b.sample_ids
    if ids_a is not None and ids_b is not None and ids_a != ids_b:
        if sorted(ids_a) == sorted(ids_b):
            raise InputError(
                f"{where}: same sample ids in a different order; re-extract one of them"
            )
        raise InputError(
            f"{where}: different sample ids ({len(ids_b)} vs {len(ids_a)} samples, "
            f"{len(set(ids_a) ^ set(ids_b))} not shared); extract both with the same task, "
            "--samples and --seed"
        )
    texts_a, texts_b = (
        r.manifest.data.get("samples_sha256") if r.manifest else None for r in (a, b)
    )
    if texts_a and texts_b and texts_a != texts_b:
        raise InputError(
            f"{where}: same sample ids but different texts (samples_sha256 differs); the data "
            "changed between extractions, re-extract one of them"
        )
    if (ids_a is None) != (ids_b is None):
        raise InputError(f"{where}: one run records its sample ids and the other does not")
    if a.pooling and b.pooling and a.pooling != b.pooling:
        raise InputError(f"{where}: pooling {b.pooling!r} vs {a.pooling!r}")
    if a.pooling == "tokens" or b.pooling == "tokens":
        raise InputError(
            f"{where}: token-level runs are not compared per sample; use "
            "repdrift.metrics.StreamingLinearCKA on Run.tokens()"
        )
    if len(a.layers) != len(b.layers) or a.layers != b.layers:
        raise InputError(f"{where}: layers {b.layers} vs {a.layers}")
