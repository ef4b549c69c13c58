"""Describe and pair run directories for analysis: which reference run each other run meets.

The reference of a task is the run the caller names (``ref=``; on the command line the first
run or ``--ref``); every other run of that task is compared with it, whatever kind its
manifest records. A task without a named reference takes its one run recorded as a base run
(manifest kind ``base``).

Task, method and training seed come from the manifests (the ``kind`` and ``model.training``
fields written at extraction), with explicit overrides. What the manifest lacks is read from
the folder name by :func:`repdrift.common.naming.parse_run_name` (the original study's
spellings included: ``{task}_{method}_seed{seed}`` with method ``full``, ``full_finetune``,
``full_ft`` or ``lora``; ``base_pretrained_{task}`` or ``{task}_base``), and the run is
flagged (:attr:`RunInfo.flags`, logged as a warning and written to results.json).

Lineage is checked from the manifests' weight hashes: a run whose recorded base weights
differ from the reference's weights is refused (unless ``allow_foreign_reference``), and two
runs of identical weights are refused rather than counted as two seeds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repdrift.analysis.comparability import check_comparable
from repdrift.common.naming import BASE, canonical_method, parse_run_name
from repdrift.errors import InputError
from repdrift.store.manifest import TRAINED_SAMPLES_KEY
from repdrift.store.reader import Run, load_run

logger = logging.getLogger(__name__)

_CLI_REF = "ref= (CLI: give the reference first, or --ref)"
_ESCAPE = "allow_foreign_reference=True (CLI: --allow-foreign-reference)"


@dataclass(frozen=True)
class RunInfo:
    """One run directory with the labels analysis groups by."""

    run: Run
    name: str
    task: str
    method: str  # "base", "full", "lora" (or a user label)
    seed: int | None  # training seed; None when unknown
    #: What the reader should know about these labels or this run's lineage (empty: nothing).
    flags: tuple[str, ...] = ()
    #: Labels the caller gave explicitly (never replaced by what the folder name says).
    given: frozenset[str] = frozenset()

    @property
    def is_reference(self) -> bool:
        return self.method == BASE


def _training(run: Run) -> Mapping[str, Any]:
    return (run.manifest.model.get("training") or {}) if run.manifest is not None else {}


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
    named = parse_run_name(Path(path).name)
    labels: dict[str, Any] = {}
    flags: list[str] = []
    if run.manifest is not None:
        training = _training(run)
        labels = {"task": run.manifest.task, "method": run.manifest.kind}
        if training.get("seed") is not None:
            labels["seed"] = training["seed"]
        elif named is not None and named.seed is not None and "seed" not in over:
            labels["seed"] = named.seed
            flags.append(f"no training record: seed {named.seed} read from the folder name")
    elif named is not None:
        labels = {"task": named.task, "method": named.method, "seed": named.seed}
    labels.update(over)
    seen = (run.manifest.extra or {}).get(TRAINED_SAMPLES_KEY) if run.manifest else None
    if isinstance(seen, dict) and seen.get("seen"):
        flags.append(
            f"{seen['seen']} of its {seen.get('of', '?')} samples are samples its model was "
            "trained on (counted at extraction): its drift is partly of training data"
        )
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
        tuple(flags),
        frozenset(over),
    )


@dataclass(frozen=True)
class TaskGroup:
    """The reference run of one task and the runs compared with it."""

    task: str
    reference: RunInfo
    variants: list[RunInfo]


def pair_runs(
    runs: Iterable[str | Path],
    *,
    ref: str | Path | Sequence[str | Path] | None = None,
    labels: Mapping[str, Mapping[str, Any]] | None = None,
    verify: bool = True,
    allow_foreign_reference: bool = False,
    allow_different_inputs: bool = False,
) -> list[TaskGroup]:
    """Open run directories and pair each with the reference of its task (see the module doc).

    Parameters
    ----------
    runs
        Run directories.
    ref
        Reference run(s), at most one per task; they may also appear in ``runs``. Every other
        run of a reference's task is compared with it, whatever its manifest kind.
    labels
        Per run path, overrides for ``task``, ``method`` and ``seed``.
    verify
        Check file hashes while opening.
    allow_foreign_reference
        Compare runs whose recorded base weights differ from the reference's (flagged).
    allow_different_inputs
        Compare runs tokenised differently from the reference (flagged; see
        :mod:`repdrift.analysis.comparability`).
    """
    refs = [] if ref is None else [ref] if isinstance(ref, (str, os.PathLike)) else list(ref)
    given = {str(Path(k)): v for k, v in (labels or {}).items()}
    opened: dict[Path, RunInfo] = {}
    ref_keys: list[Path] = []
    for i, p in enumerate([*refs, *runs]):
        key = Path(p).resolve()
        if key in opened:
            if i < len(refs) or key not in ref_keys:
                raise InputError(f"run {p} is given twice")
            continue  # the reference, also listed among the runs
        opened[key] = describe(p, given.get(str(Path(p))), verify=verify)
        if i < len(refs):
            ref_keys.append(key)
    return group_by_task(
        opened.values(),
        [opened[k] for k in ref_keys],
        allow_foreign_reference=allow_foreign_reference,
        allow_different_inputs=allow_different_inputs,
    )


def group_by_task(
    runs: Iterable[RunInfo],
    references: Iterable[RunInfo] = (),
    *,
    allow_foreign_reference: bool = False,
    allow_different_inputs: bool = False,
) -> list[TaskGroup]:
    """Pair every run with the reference of its task, checking they are comparable.

    Parameters
    ----------
    runs
        The runs (references among them or not).
    references
        Runs named as references (at most one per task); a task without one takes its one
        run labelled ``base``.
    allow_foreign_reference
        See :func:`check_lineage`.
    allow_different_inputs
        See :func:`repdrift.analysis.comparability.check_inputs`.

    Raises
    ------
    InputError
        A task without a reference, two references of one task, runs whose sample ids, order,
        tokenisation, pooling or layers differ from the reference's (the message names both
        runs and the field), a run fine-tuned from other weights than the reference's, or two
        runs of identical weights.
    """
    explicit: dict[str, RunInfo] = {}
    for r in references:
        if r.task in explicit:
            raise InputError(
                f"task {r.task!r} has two references, {explicit[r.task].run.path} and "
                f"{r.run.path}; give one reference per task"
            )
        explicit[r.task] = r
    by_task: dict[str, list[RunInfo]] = {}
    for info in [*explicit.values(), *runs]:
        bucket = by_task.setdefault(info.task, [])
        if all(i.run.path != info.run.path for i in bucket):
            bucket.append(info)
    _check_every_reference_has_runs(explicit, by_task)
    groups = []
    for task, infos in sorted(by_task.items()):
        if task in explicit:
            ref = explicit[task]
        else:
            bases = [i for i in infos if i.is_reference]
            if len(bases) != 1:
                found = ", ".join(str(r.run.path) for r in bases) or "none"
                raise InputError(
                    f"task {task!r} needs exactly one base run (manifest kind 'base') or a "
                    f"reference named with {_CLI_REF}; found {found}"
                )
            ref = bases[0]
        variants = [as_variant(i) for i in infos if i.run.path != ref.run.path]
        if not variants:
            raise InputError(
                f"task {task!r}: its base run {ref.run.path} is the only run of the task, so "
                "there is nothing to compare with it; give the runs of that task's fine-tuned "
                "models too"
            )
        checked = []
        for v in variants:
            inputs = check_comparable(ref, v, allow_different_inputs=allow_different_inputs)
            lineage = check_lineage(ref, v, allow_foreign_reference=allow_foreign_reference)
            checked.append(replace(v, flags=v.flags + tuple(inputs) + tuple(lineage)))
        check_distinct(ref, checked)
        names = [v.name for v in checked]
        if len(set(names)) != len(names):
            raise InputError(
                f"task {task!r}: two runs share the folder name; rename one of {names}"
            )
        for v in checked:
            if v.flags:
                logger.warning("%s (task %r): %s", v.run.path, task, "; ".join(v.flags))
        groups.append(
            TaskGroup(task, ref, sorted(checked, key=lambda v: (v.method, v.seed or 0, v.name)))
        )
    return groups


def _check_every_reference_has_runs(
    explicit: Mapping[str, RunInfo], by_task: Mapping[str, list[RunInfo]]
) -> None:
    """Refuse a named reference with no run of its task beside it, saying where the runs went."""
    for task, ref in sorted(explicit.items()):
        if len(by_task[task]) > 1:
            continue
        others = {t: infos for t, infos in by_task.items() if t != task}
        if not others:
            raise InputError(
                f"only the reference run {ref.run.path} was given: name the runs to compare "
                "with it after it (repdrift compare REF RUN...)"
            )
        listed = "; ".join(
            f"task {t!r}: {', '.join(str(i.run.path) for i in infos)}"
            for t, infos in sorted(others.items())
        )
        raise InputError(
            f"the reference run {ref.run.path} is of task {task!r}, but no other run is: a run "
            f"is compared only with the reference of its own task (its manifest's task), and "
            f"the others are of {listed}; give a reference of their task (or, if they are the same "
            "task under another name, set it in Python: compare(labels={path: {'task': ...}}))"
        )


def as_variant(info: RunInfo) -> RunInfo:
    """A run's labels as a run compared with a reference.

    A run recorded as a base run (extracted without ``--base``) gets the method of its
    training record, else of its folder name, else its folder name itself; a run without a
    training seed keeps seed None. Both are flagged.
    """
    method, seed, flags = info.method, info.seed, list(info.flags)
    if method == BASE and "method" not in info.given:
        named = parse_run_name(info.name)
        recorded = _training(info.run).get("method")
        if recorded:
            method, source = canonical_method(str(recorded)), "its training record"
        elif named is not None and named.method != BASE:
            method, source = named.method, "its folder name"
        else:
            method, source = info.name, "its folder name (no method recorded)"
        flags.append(
            f"recorded as a base run (manifest kind 'base', no --base at extraction); compared "
            f"with the reference and labelled method {method!r} from {source}"
        )
    if seed is None and "seed" not in info.given:
        flags.append(
            "no training seed recorded (no training record, folder name not "
            "'{task}_{method}_seed{seed}'): seed left empty; rename the folder so, or pass "
            "compare(labels={path: {'seed': ...}})"
        )
    return replace(info, method=method, seed=seed, flags=tuple(flags))


def _short(sha: str) -> str:
    return sha[:12]


def _hashed(sha: str | None) -> str:
    return f"weights sha256 {_short(sha)}" if sha else "no weights hash"


def check_lineage(
    ref: RunInfo, other: RunInfo, *, allow_foreign_reference: bool = False
) -> list[str]:
    """Check that ``other`` was fine-tuned from the reference's weights; return flags.

    The base weights hash that ``other``'s manifest records (``model.base_weights_sha256``,
    written at extraction of a LoRA adapter or of a full fine-tune given ``--base``) must equal
    the reference's ``model.weights_sha256``.

    Raises
    ------
    InputError
        The hashes differ (unless ``allow_foreign_reference``: then a flag says so).
    """
    if other.run.manifest is None:
        return ["legacy run without a manifest: its base is not recorded, lineage not checked"]
    model = other.run.manifest.model
    base, base_sha = model.get("base"), model.get("base_weights_sha256")
    ref_model = ref.run.manifest.model if ref.run.manifest is not None else {}
    ref_path, ref_sha = ref_model.get("path"), ref_model.get("weights_sha256")
    if base is None and base_sha is None:
        return ["no base model recorded (extracted without --base): lineage not checked"]
    if base_sha and ref_sha:
        if base_sha == ref_sha:
            return []
        mismatch = (
            f"{other.run.path} was fine-tuned from {base} (weights sha256 {_short(base_sha)}), "
            f"but the reference {ref.run.path} holds other weights: {ref_path} (weights sha256 "
            f"{_short(ref_sha)})"
        )
        if not allow_foreign_reference:
            raise InputError(
                f"{mismatch}; give the run of its base model as the reference, or pass "
                f"{_ESCAPE} to compare anyway"
            )
        return [f"foreign reference: {mismatch}"]
    if base is not None and ref_path is not None and str(base) == str(ref_path):
        return []
    return [
        f"lineage not verified: base {base} recorded ({_hashed(base_sha)}), reference model "
        f"{ref_path} ({_hashed(ref_sha)})"
    ]


def check_distinct(ref: RunInfo, variants: Sequence[RunInfo]) -> None:
    """Refuse two runs of identical weights (``model.weights_sha256``) and dtype in one task.

    Two such runs are one model extracted twice: counted as two seeds they would shrink every
    seed-level interval; compared with the reference their drift is zero. The same weights run
    in another dtype (e.g. bfloat16 against float32) are a comparison of their own and pass.
    """
    seen: dict[tuple[str, str | None], RunInfo] = {}
    for info in (ref, *variants):
        m = info.run.manifest
        sha = m.model.get("weights_sha256") if m is not None else None
        if not sha:
            continue
        key = (sha, m.dtype if m is not None else None)
        if key in seen:
            first = seen[key]
            if first is ref:
                raise InputError(
                    f"{info.run.path} holds the same weights as the reference {ref.run.path} "
                    f"(weights sha256 {_short(sha)}): the model would be compared with itself; "
                    "drop it, or give the run of its base model as the reference"
                )
            raise InputError(
                f"{first.run.path} and {info.run.path} hold the same weights (weights sha256 "
                f"{_short(sha)}): duplicate runs of one model would count as two seeds; drop one"
            )
        seen[key] = info
