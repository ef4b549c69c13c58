"""The sample settings: which fixed samples a command reads, in one typed object.

:class:`SampleSettings` names a task, where its data are, the split, how many samples with
which seed, the data's column roles and the token budget. :func:`repdrift.tasks.samples.load_samples`
reads it, :func:`repdrift.extract` and :func:`repdrift.training.recipe.train` build it from their
keyword arguments, the CLI's ``extract`` and ``train`` read its defaults and help text, and a
study's jobs carry it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from repdrift.common.settings import Settings, comma_list, refuse_bool
from repdrift.tasks.splits import HELD_OUT_FRACTION

#: The samples drawn per task unless said otherwise (the original study's 750).
DEFAULT_SAMPLES = 750


class SampleColumns(Settings):
    """Where a task's samples are and how to read them: data, split, column roles, token budget.

    The part of the sample settings a task declares (the experiment file's task entries,
    :class:`repdrift.runner.experiment.TaskConfig`, extend it with the task's name).

    Attributes
    ----------
    data : path
        A local CSV / TSV / JSON(L) / parquet file, a ``save_to_disk`` folder, or a folder of
        files named by split. Without it presets load from the hub.
    split : str
        Split to draw the samples from (default: the preset's, ``validation``). A single
        ``data`` file is split by repdrift: ``validation`` is a seeded 20 % of its rows held
        out from training, ``train`` the rest, ``all`` every row.
    text_fields : list of str
        One text column, or two for a pair. Default: the preset's; for your own data detected
        by their common names (``text``, ``sentence``, ``sentence1``/``sentence2``,
        ``question``/``context``, ``premise``/``hypothesis``).
    id_field : str
        Column of unique sample ids (default ``id`` or ``idx`` when present, else row numbers).
    label_field : str
        Column of labels (default ``label`` or ``labels`` when present); each distinct value
        is a class (1-5 is five classes), the mapping recorded in the training record.
    max_length : int
        Tokens per sample, special tokens included (default: the preset's; 512 for your own
        data); longer inputs are truncated with a warning that gives the count.
    """

    KIND: ClassVar[str] = "sample setting"

    data: Path | None = Field(None, description="Local CSV / JSONL / parquet / saved dataset.")
    split: str | None = Field(
        None,
        description="Dataset split (default: the preset's, validation). One --data file is "
        f"split by repdrift: validation is a seeded {HELD_OUT_FRACTION:.0%} held out from what "
        "train trains on, train the rest, all every row.",
    )
    text_fields: tuple[str, ...] | None = Field(
        None,
        description="Text column, or two comma-separated for pairs (default: detected by name).",
    )
    id_field: str | None = Field(None, description="Column of unique sample ids.")
    label_field: str | None = Field(
        None,
        description="Column of labels (default: label or labels); each distinct value is a "
        "class.",
    )
    max_length: int | None = Field(
        None,
        ge=2,
        description="Tokens per sample (default: the preset's; 512 for your own data; at most "
        "the model's own limit).",
    )

    _numbers = field_validator("max_length", mode="before")(refuse_bool)

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, value: Any) -> Any:
        return None if value is None else Path(value).expanduser()

    @field_validator("text_fields", mode="before")
    @classmethod
    def _text_fields(cls, value: Any) -> Any:
        value = comma_list(value)  # the CLI's "question,context"
        if isinstance(value, Sequence) and not value:
            return None
        if isinstance(value, Sequence) and len(value) not in (1, 2):
            raise ValueError(f"text_fields must name 1 or 2 columns, got {list(value)}")
        return value

    def columns(self) -> dict[str, Any]:
        """The column roles and token budget."""
        return self.model_dump(include={"text_fields", "id_field", "label_field", "max_length"})


class SampleSettings(SampleColumns):
    """Which fixed samples to read: task, data, split, how many, their columns and token budget.

    The same (task, data, split, n, seed) always gives the same samples with the same ids,
    whichever model reads them (:func:`repdrift.tasks.samples.load_samples`).
    """

    task: str = Field(
        min_length=1,
        description="Task preset (sst2, mrpc, rte, squad_v2, demo-sst, demo-pair) or a name "
        "for --data.",
    )
    n: int | None = Field(
        DEFAULT_SAMPLES, ge=1, description="Samples to draw (fewer available: all)."
    )
    seed: int = Field(0, description="Seed of the sample choice.")

    _integers = field_validator("n", "seed", mode="before")(refuse_bool)


__all__ = ["DEFAULT_SAMPLES", "SampleColumns", "SampleSettings"]
