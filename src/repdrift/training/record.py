"""The training record of :mod:`repdrift.training.recipe` (``repdrift_training.json``): its
arguments, the checks of the variant, resume.

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
from repdrift.common.naming import Method, checkpoint_step
from repdrift.errors import InputError
from repdrift.models.training_record import (
    TRAINED_SAMPLES,
    TRAINING_RECORD,
    read_training_record,
)
from repdrift.tasks.presets import PRESETS
from repdrift.tasks.settings import SampleSettings
from repdrift.tasks.splits import HELD_OUT_RULE
from repdrift.training.settings import TrainingSettings, check_method

logger = logging.getLogger(__name__)


RECORD_SCHEMA = 1


def check_variant(samples: SampleSettings, method: Any, seed: Any) -> None:
    """Check what the training settings do not: the method, the seed, and that the task is a
    preset or has data. InputError names the bad one."""
    check_method(method)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    if samples.task not in PRESETS and samples.data is None:
        raise InputError(
            f"unknown task {samples.task!r}: expected one of {', '.join(PRESETS)}, or pass "
            "data= (a local file or folder with a train split) for a custom task"
        )


def arguments(
    samples: SampleSettings, method: Method, seed: int, settings: TrainingSettings, src: Path | str
) -> dict[str, Any]:
    """The record's ``arguments``: what defines the result, defaults filled in, compared on
    resume (:func:`previous_run`) and by the runner. Its keys and values are those of every
    record written so far, so older trained folders stay readable and resumable."""
    lora = method == "lora"
    data = samples.data
    return {
        "task": samples.task, "method": method, "seed": seed,
        "data": str(data.resolve()) if data else None,
        "epochs": float(settings.epochs) if settings.epochs is not None else None,
        "max_steps": settings.max_steps, "lr": settings.learning_rate(method),
        "batch_size": settings.batch_size,
        "rank": settings.rank if lora else None, "alpha": settings.alpha if lora else None,
        "dropout": float(settings.dropout) if lora else None,
        "target_modules": sorted(settings.target_modules)
        if lora and settings.target_modules else None,
        "max_train_samples": settings.max_train_samples, "save_steps": settings.save_steps,
        "text_fields": list(samples.text_fields) if samples.text_fields else None,
        "id_field": samples.id_field, "label_field": samples.label_field,
        "max_length": samples.max_length,
        "model": str(src),
        # one file: trained on its 'train' part only (a record without this trained on all rows)
        "held_out": HELD_OUT_RULE if data and data.is_file() else None,
    }  # fmt: skip


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
