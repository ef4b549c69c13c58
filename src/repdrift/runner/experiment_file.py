"""Reading experiment files: YAML parsing, validation against the schema, path resolution and
the checks that span several fields.

:func:`load_experiment` reads a file, :func:`parse_experiment` validates a mapping; the schema
itself is :mod:`repdrift.runner.experiment`. Problems are collected as ``(field, message)`` pairs
and reported with the file name, one line each.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from repdrift.errors import InputError
from repdrift.models.sources import local_or_hub
from repdrift.runner.experiment import (
    AnalysisConfig,
    Experiment,
    ExtractionConfig,
    FiguresConfig,
    ImportConfig,
    TaskConfig,
    TrainConfig,
    VariantConfig,
)


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

    Decided by :func:`repdrift.models.sources.local_or_hub` (the CLI's and the API's rule),
    relative to ``root``; a local folder that does not exist yet is kept (the plan reports it
    missing).
    """
    return str(local_or_hub(value, root=root))


def _escape(path: Path) -> str:
    return str(path).replace("{", "{{").replace("}", "}}")


def resolve_and_check(exp: Experiment, root: Path) -> list[tuple[str, str]]:
    """Resolve relative paths against ``root``; return cross-field problems as (loc, message)."""
    problems: list[tuple[str, str]] = []

    def absolute(p: Path) -> Path:
        return (root / p.expanduser()).resolve() if not p.expanduser().is_absolute() else p

    exp.output = absolute(exp.output)
    exp.tasks = [  # task entries are settings objects, frozen: rebuilt with absolute data
        t if t.data is None else t.model_copy(update={"data": absolute(t.data)})
        for t in exp.tasks
    ]
    if exp.import_ is not None:
        exp.import_.runs = absolute(exp.import_.runs)
        if exp.import_.base is not None:
            exp.import_.base = absolute(exp.import_.base)
        if exp.import_.tokenizer is not None:
            try:
                exp.import_.tokenizer = resolve_model(exp.import_.tokenizer, root)
            except ValueError as exc:
                problems.append(("import.tokenizer", str(exc)))
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


def _all_field_names() -> set[str]:
    models = (TaskConfig, VariantConfig, TrainConfig, ExtractionConfig, AnalysisConfig,
              FiguresConfig, ImportConfig, Experiment)  # fmt: skip
    names: set[str] = set()
    for model in models:
        for name, info in model.model_fields.items():
            names.add(info.alias or name)
    return names


def parse_experiment(
    raw: Any, *, root: str | Path, where: str | Path = "<experiment>"
) -> Experiment:
    """Validate an experiment given as a mapping (what the YAML file holds).

    Parameters
    ----------
    raw
        The parsed YAML document.
    root
        Folder relative paths resolve against.
    where
        Name of the source shown in error messages.

    Raises
    ------
    InputError
        One line per problem, each naming ``where`` and the field.
    """
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping of fields (name, base_model, tasks, ...)")
    try:
        exp = Experiment.model_validate(dict(raw))
    except ValidationError as exc:
        raise InputError(format_errors(where, exc, _all_field_names())) from None
    problems = resolve_and_check(exp, Path(root).expanduser().resolve())
    if problems:
        raise InputError("\n".join(f"{where}: {loc}: {msg}" for loc, msg in problems))
    return exp


def load_experiment(
    path: str | Path,
    *,
    output: str | Path | None = None,
    updates: Mapping[str, Any] | None = None,
) -> Experiment:
    """Read and validate an experiment file.

    Parameters
    ----------
    path
        The YAML file.
    output
        Replace the file's ``output`` folder (relative to the current directory).
    updates
        Fields deep-merged into the file's content before validation (e.g.
        ``{"train": {"max_steps": 5}}``).

    Raises
    ------
    InputError
        Missing or unparsable file, or invalid fields (each named, with the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such experiment file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    raw = raw if raw is not None else {}
    if isinstance(raw, Mapping):
        raw = dict(raw)
        raw.setdefault("name", path.stem)
        if updates:
            raw = deep_merge(raw, updates)
        if output is not None:
            raw["output"] = str(Path(output).expanduser().resolve())
    return parse_experiment(raw, root=path.parent, where=path)
