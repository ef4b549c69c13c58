"""The training record that repdrift.training writes next to the weights (repdrift_training.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from repdrift.errors import InputError, IntegrityError
from repdrift.models.sources import Source, source_in_folder

# Written by repdrift.training next to the weights; load_model puts it in source["training"].
TRAINING_RECORD = "repdrift_training.json"
# Beside it: a uint64 hash of each training sample's text (repdrift.tasks.splits.sample_hashes),
# so extraction can count the samples a model was trained on without reading its training data.
TRAINED_SAMPLES = "repdrift_trained_samples.npy"
# The peak learning rate per method when none is given: the record's ``arguments.lr`` then holds
# it. Read through repdrift.training.settings.TrainingSettings.learning_rate (the training
# settings' one home of their defaults), which the recipe and the runner's stale check use.
DEFAULT_LR: dict[str, float] = {"full": 5e-5, "lora": 1e-3}


def read_training_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The training record (``repdrift_training.json``) of a model folder, or None.

    :func:`repdrift.training.recipe.train` writes it next to the weights it saves (also in each
    ``checkpoint-N``); it holds at least ``task``, ``method`` and ``seed``.

    Raises
    ------
    IntegrityError
        The file exists but is not a JSON object with ``task``, ``method`` and ``seed``.
    """
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"cannot read training record {path}: {exc}") from exc
    if not isinstance(record, dict) or not {"task", "method", "seed"} <= set(record):
        raise IntegrityError(
            f"training record {path} is not a JSON object with task, method and seed"
        )
    return record


def read_trained_samples(folder: str | os.PathLike[str]) -> np.ndarray | None:
    """The hashes of the samples a model was trained on (``repdrift_trained_samples.npy``), or
    None when the folder has none (not trained by repdrift, or by a version before the file).

    Raises
    ------
    IntegrityError
        The file exists but is not a one-dimensional uint64 array.
    """
    path = Path(folder) / TRAINED_SAMPLES
    if not path.is_file():
        return None
    try:
        hashes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read the trained-samples file {path}: {exc}") from exc
    if hashes.ndim != 1 or hashes.dtype != np.uint64:
        raise IntegrityError(
            f"trained-samples file {path} holds a {hashes.dtype} array of shape {hashes.shape}; "
            "expected one uint64 hash per training sample"
        )
    return hashes


def recorded_base(folder: Path, record: dict[str, Any]) -> Source:
    """The base model a training record names (``base_model``), as a source.

    A relative path is read relative to ``folder`` (the fine-tuned model's), then to the
    working directory (:func:`repdrift.models.sources.source_in_folder`).

    Raises
    ------
    InputError
        The record names no base, or a base that cannot be found; the message names the record,
        the base and ``--base``.
    """
    path = folder / TRAINING_RECORD
    value = record.get("base_model")
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"{folder} is a fine-tuned model (training record {path}) but the record names no "
            "base_model; give its base model with --base (base= in Python)"
        )
    try:
        return source_in_folder(value, folder, f"base_model of training record {path}")
    except InputError as exc:
        given = Path(value).expanduser()
        tried = [given] if given.is_absolute() else [(folder / given).resolve(), given.resolve()]
        raise InputError(
            f"{folder} is a fine-tune of {value!r} (the base_model of its training record "
            f"{path}), but there is no folder {' or '.join(map(str, dict.fromkeys(tried)))}; "
            "give the base model with --base (base= in Python)"
        ) from exc
