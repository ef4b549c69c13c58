"""Task presets (GLUE, SQuAD v2, the bundled demo tasks) and the bundled data folders."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from repdrift.errors import InputError, IntegrityError


@dataclass(frozen=True)
class TaskSpec:
    """Where a task's samples come from and how they are tokenized.

    Attributes
    ----------
    dataset, config
        Hub dataset name and configuration (``None`` for a custom task read from a file).
    split
        Default split.
    text_fields
        One column (single sentence) or two (a pair: first, second).
    id_field, label_field
        Columns holding a stable sample id and the label, or None.
    max_length
        Token budget per sample, special tokens included.
    truncation
        ``"longest_first"`` (GLUE pairs) or ``"only_second"`` (SQuAD: cut the context only).
    """

    name: str
    dataset: str | None
    config: str | None
    split: str
    text_fields: tuple[str, ...]
    id_field: str | None
    label_field: str | None
    max_length: int
    truncation: str


PRESETS: dict[str, TaskSpec] = {
    "sst2": TaskSpec(
        "sst2", "nyu-mll/glue", "sst2", "validation", ("sentence",), "idx", "label", 128,
        "longest_first",
    ),
    "mrpc": TaskSpec(
        "mrpc", "nyu-mll/glue", "mrpc", "validation", ("sentence1", "sentence2"), "idx", "label",
        128, "longest_first",
    ),
    "rte": TaskSpec(
        "rte", "nyu-mll/glue", "rte", "validation", ("sentence1", "sentence2"), "idx", "label",
        128, "longest_first",
    ),
    "squad_v2": TaskSpec(
        "squad_v2", "rajpurkar/squad_v2", None, "validation", ("question", "context"), "id",
        "answers", 384, "only_second",
    ),
    # small tasks bundled as package data (scripts/make_demo_data.py): no hub, no data= needed
    "demo-sst": TaskSpec(
        "demo-sst", None, None, "validation", ("sentence",), "idx", "label", 128,
        "longest_first",
    ),
    "demo-pair": TaskSpec(
        "demo-pair", None, None, "validation", ("sentence1", "sentence2"), "idx", "label", 128,
        "longest_first",
    ),
}  # fmt: skip


# Presets whose data ships with repdrift: folder under repdrift/data with train/validation.jsonl
BUNDLED_DATA = {"demo-sst": "demo_sst", "demo-pair": "demo_pair"}


def bundled_data(task: str) -> Path:
    """The package-data folder of a bundled preset (``demo-sst``, ``demo-pair``).

    Raises
    ------
    InputError
        ``task`` has no bundled data.
    IntegrityError
        The installed package lacks the folder (a broken install).
    """
    if task not in BUNDLED_DATA:
        raise InputError(
            f"task {task!r} has no bundled data; bundled tasks: {', '.join(BUNDLED_DATA)}"
        )
    folder = files("repdrift.tasks").joinpath("data", BUNDLED_DATA[task])
    # an installed wheel or editable install is a plain folder; a zipped install is not
    if not isinstance(folder, Path) or not folder.is_dir():
        raise IntegrityError(
            f"bundled data of task {task!r} not found at {folder}: reinstall repdrift"
        )
    return folder
