"""The training record that repdrift.training writes next to the weights (repdrift_training.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from repdrift.errors import IntegrityError

# Written by repdrift.training next to the weights; load_model puts it in source["training"].
TRAINING_RECORD = "repdrift_training.json"


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
