"""Arguments and the training record of :mod:`repdrift.training.recipe` (``repdrift_training.json``).

The record is written twice: at the start with ``complete: false`` (it marks ``out`` as a
folder repdrift may overwrite if the run dies) and, after the weights, with ``complete: true``.
Its ``arguments`` are what a rerun compares to decide whether ``out`` already holds the result.
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from repdrift.common.atomic import atomic_write_bytes
from repdrift.common.naming import checkpoint_step
from repdrift.errors import InputError
from repdrift.models.training_record import (
    TRAINED_SAMPLES,
    TRAINING_RECORD,
    read_training_record,
)
from repdrift.tasks.presets import PRESETS

logger = logging.getLogger(__name__)


RECORD_SCHEMA = 1


def positive_int(name: str, value: Any, *, allow_none: bool = True) -> None:
    """Raise InputError unless ``value`` is an integer >= 1 (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a positive integer{' or None' if allow_none else ''}, "
                         f"got {value!r}")  # fmt: skip


def _positive_float(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{name} must be a positive number or None, got {value!r}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value!r}")


def check_arguments(args: dict[str, Any]) -> None:
    """Validate :func:`repdrift.training.recipe.train`'s arguments; InputError names the bad one."""
    if args["method"] not in ("full", "lora"):
        raise InputError(f"unknown method {args['method']!r}: expected 'full' or 'lora'")
    if args["task"] not in PRESETS and args["data"] is None:
        raise InputError(
            f"unknown task {args['task']!r}: expected one of {', '.join(PRESETS)}, or pass "
            "data= (a local file or folder with a train split) for a custom task"
        )
    if isinstance(args["seed"], bool) or not isinstance(args["seed"], int):
        raise InputError(f"seed must be an integer, got {args['seed']!r}")
    for name in ("batch_size", "rank", "alpha"):
        positive_int(name, args[name], allow_none=False)
    for name in ("max_steps", "max_train_samples", "save_steps"):
        positive_int(name, args[name])
    for name in ("epochs", "lr"):
        _positive_float(name, args[name])
    dropout = args["dropout"]
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise InputError(f"dropout must be a number in [0, 1), got {dropout!r}")
    targets = args["target_modules"]
    if targets is not None and (
        isinstance(targets, str) or not targets or not all(isinstance(t, str) for t in targets)
    ):
        raise InputError(
            f"target_modules must be a non-empty list of module names or None, got {targets!r}"
        )


def weights_present(out: Path, method: str) -> bool:
    """Whether ``out`` has the weight file a ``method`` run saves."""
    name = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    return (out / name).is_file() or any(out.glob("model-*.safetensors"))


def previous_run(out: Path, arguments: dict[str, Any]) -> bool:
    """True when ``out`` already holds this exact training; prepares ``out`` otherwise.

    Raises
    ------
    InputError
        ``out`` holds something else: a finished training with other settings, or files that
        repdrift did not write (never overwritten).
    """
    if not out.exists():
        return False
    if not out.is_dir():
        raise InputError(f"out {out} is a file; expected a folder for the trained model")
    record = read_training_record(out)
    if record is None:
        if any(out.iterdir()):
            raise InputError(
                f"out {out} is not empty and holds no {TRAINING_RECORD}: refusing to overwrite "
                "files repdrift did not write; choose an empty or new folder"
            )
        return False
    if record.get("complete"):
        previous = record.get("arguments", {})
        # a setting missing from an older record had its default then: None
        changed = sorted(k for k in arguments.keys() | previous.keys()
                         if previous.get(k) != arguments.get(k))  # fmt: skip
        if not changed and weights_present(out, arguments["method"]):
            return True
        if changed:
            detail = ", ".join(
                f"{k}: {previous.get(k)!r} -> {arguments.get(k)!r}" for k in changed[:6]
            )
            raise InputError(
                f"out {out} already holds a model trained with other settings ({detail}); "
                "choose another out folder or delete this one"
            )
    # an interrupted run of ours: start over, dropping checkpoints it wrote
    logger.warning("%s holds an unfinished training: starting it again", out)
    for folder in sorted(out.iterdir()):
        if checkpoint_step(folder.name) is not None and (folder / TRAINING_RECORD).is_file():
            shutil.rmtree(folder)
    return False


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write ``repdrift_training.json`` atomically (readers never see a torn file)."""
    blob = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_bytes(folder / TRAINING_RECORD, blob.encode("utf-8"))


def write_trained_samples(folder: Path, hashes: np.ndarray) -> None:
    """Write the training samples' hashes (``repdrift_trained_samples.npy``) atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(hashes, dtype=np.uint64), allow_pickle=False)
    atomic_write_bytes(folder / TRAINED_SAMPLES, buffer.getvalue())


def loss_summary(losses: list[float]) -> dict[str, Any]:
    """Final loss (mean of the last ≤10 steps) and a ≤100-point loss curve [[step, mean]]."""
    every = max(1, math.ceil(len(losses) / 100))
    curve = [
        [
            min(i + every, len(losses)),
            round(sum(losses[i : i + every]) / len(losses[i : i + every]), 6),
        ]
        for i in range(0, len(losses), every)
    ]
    tail = losses[-10:]
    return {"final_train_loss": sum(tail) / len(tail), "loss_curve": curve}
