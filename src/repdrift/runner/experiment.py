"""Experiment files: one YAML file describes a whole study, validated by pydantic.

An experiment names a base model, the tasks, the training seeds and the fine-tuned variants
(full checkpoints and LoRA adapters, as path templates), and how to extract, analyse and
report them; this module is the schema (pydantic models), and
:func:`repdrift.runner.experiment_file.load_experiment` reads and validates a file; every problem is reported
with the file and the field, e.g. ``study.yaml: variants[1].path: field required``.

Example::

    name: demo
    base_model: bundled:minilm              # a folder, a hub id, or bundled:minilm
    tasks: [demo-sst, {name: reviews, data: data/reviews.csv}]
    samples: 200
    seeds: [42, 1337]
    variants:
      - {method: full, path: "models/{task}_full_seed{seed}"}
      - {method: lora, path: "adapters/{task}_lora_seed{seed}"}
    train: {max_steps: 60, lr: {full: 5.0e-5, lora: 1.0e-3}}   # optional: train missing variants
    analysis: {n_boot: 200, n_perm: 200}
    output: out                             # runs/, results/, figures/, report.html

Relative paths (model folders, data, templates, output, import) resolve against the YAML
file's folder. Unknown fields are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from repdrift.common.naming import Method
from repdrift.errors import InputError
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.sources import BUNDLED_MODELS  # ``base_model: bundled:NAME`` (one home)
from repdrift.runner.sections import (
    AnalysisConfig,
    FiguresConfig,
    ImportConfig,
    Section,
    TrainConfig,
)
from repdrift.tasks.settings import DEFAULT_SAMPLES, SampleColumns, SampleSettings

#: The placeholders a variant path template may use (``{output}``: the output folder, so
#: trained models can live next to the runs).
PLACEHOLDERS = ("task", "seed", "method", "output")


class TaskConfig(SampleColumns):
    """A task: a preset name, or any name with local ``data``. ``tasks: [sst2]`` is short for
    ``tasks: [{name: sst2}]``. Its other fields are the sample settings a task declares
    (:class:`~repdrift.tasks.settings.SampleColumns`); the study's ``samples`` and
    ``sample_seed`` complete them (:meth:`Experiment.sample_settings`).

    Attributes
    ----------
    name : str
        A preset (``sst2``, ``mrpc``, ``rte``, ``squad_v2``, ``demo-sst``, ``demo-pair``) or,
        with ``data``, any name.
    """

    name: str = Field(min_length=1)


class VariantConfig(Section):
    """A fine-tuned variant: its method and where its model is, for every task and seed.

    Attributes
    ----------
    method : {"full", "lora"}
        Full fine-tuning (a checkpoint folder) or a LoRA adapter folder.
    path : str
        Template of the folder with ``{task}``, ``{seed}``, ``{method}`` and ``{output}`` (the
        output folder), e.g. ``models/{task}_{method}_seed{seed}``.
    """

    method: Method
    path: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid template ({exc})") from None
        for name in fields:
            if name not in PLACEHOLDERS:
                shown = "{" + name + "}" if name else "{}"
                raise ValueError(
                    f"unknown placeholder {shown} in {value!r}; use "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
        return value

    def placeholders(self) -> set[str]:
        """The placeholder names the template uses."""
        return {f for _, f, _, _ in string.Formatter().parse(self.path) if f}


#: The ``extraction:`` section is :class:`repdrift.extraction.options.ExtractionOptions` itself:
#: the same fields, defaults and checks as :func:`repdrift.extraction.api.extract` and the CLI
#: (unknown fields are errors).
ExtractionConfig = ExtractionOptions


class Experiment(Section):
    """A validated experiment file (paths already resolved against the file's folder).

    Attributes
    ----------
    name : str
        Name of the study (default: the file's name).
    base_model : str
        The base model: a folder, a hub id, or ``bundled:minilm``.
    tasks : list
        The tasks (see ``tasks[]`` below).
    samples : int
        Validation samples per task, the same for every model.
    sample_seed : int
        Seed of the sample choice.
    seeds : list of int
        Training seeds: each variant exists once per task and seed.
    variants : list
        The fine-tuned variants (see ``variants[]`` below).
    train : mapping
        Train the variants that do not exist yet (see ``train`` below); omit to only extract.
    checkpoints : bool or list of int
        Also extract training checkpoints: ``true`` for every saved one, or a list of steps.
    extraction : mapping
        How to extract (see ``extraction`` below).
    analysis : mapping
        How to compare (see ``analysis`` below).
    figures : mapping
        Figure output (see ``figures`` below).
    output : path
        Output folder: ``runs/``, ``results/``, ``figures/`` and ``report.html``.
    import : mapping
        Import a results tree of the original study's layout (into ``runs/``) instead of extracting.
    """

    name: str | None = None
    base_model: str | None = None
    tasks: list[TaskConfig] = Field(min_length=1)
    samples: int = Field(DEFAULT_SAMPLES, ge=1)
    sample_seed: int = 0
    seeds: list[int] = Field(min_length=1)
    variants: list[VariantConfig] = Field(default_factory=list)
    train: TrainConfig | None = None
    checkpoints: bool | list[int] = False
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    figures: FiguresConfig = Field(default_factory=FiguresConfig)
    output: Path = Path("output")
    import_: ImportConfig | None = Field(None, alias="import")

    @field_validator("tasks", mode="before")
    @classmethod
    def _task_names(cls, value: Any) -> Any:
        # a bare string is a preset (or a name whose data is given elsewhere)
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("import_", mode="before")
    @classmethod
    def _import_shorthand(cls, value: Any) -> Any:
        # `import: PATH` is `import: {runs: PATH}`
        return {"runs": value} if isinstance(value, (str, Path)) else value

    @field_validator("checkpoints", mode="before")
    @classmethod
    def _checkpoint_steps(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, list):
            if not value or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
            ):
                raise ValueError(
                    f"expected true/false or a list of positive step numbers, got {value!r}"
                )
            return sorted(set(value))
        raise ValueError(f"expected true/false or a list of positive step numbers, got {value!r}")

    _base_model_label: str | None = PrivateAttr(None)

    # ------------------------------------------------------------------ derived values

    @property
    def base_model_label(self) -> str | None:
        """``base_model`` as written in the file (e.g. ``bundled:minilm``), for display."""
        return self._base_model_label or self.base_model

    @property
    def task_names(self) -> list[str]:
        """Task names in file order."""
        return [t.name for t in self.tasks]

    def task(self, name: str) -> TaskConfig:
        """The task called ``name``."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise InputError(f"experiment has no task {name!r}; tasks are {self.task_names}")

    def sample_settings(self, name: str) -> SampleSettings:
        """The samples every model of task ``name`` is extracted on (and trained on, in the
        ``train`` split): the task's data and columns, the study's number and seed."""
        t = self.task(name)
        return SampleSettings.create(
            task=name, n=self.samples, seed=self.sample_seed, **t.model_dump(exclude={"name"}),
        )  # fmt: skip

    def variant_path(self, variant: VariantConfig, task: str, seed: int) -> Path:
        """The model folder of one variant for one task and seed."""
        return Path(
            variant.path.format(task=task, seed=seed, method=variant.method, output=self.output)
        )

    @property
    def runs_dir(self) -> Path:
        return self.output / "runs"

    @property
    def results_dir(self) -> Path:
        return self.output / "results"

    @property
    def figures_dir(self) -> Path:
        return self.output / "figures"

    @property
    def report_path(self) -> Path:
        return self.output / "report.html"


__all__ = [
    "BUNDLED_MODELS",
    "PLACEHOLDERS",
    "AnalysisConfig",
    "Experiment",
    "ExtractionConfig",
    "FiguresConfig",
    "ImportConfig",
    "TaskConfig",
    "TrainConfig",
    "VariantConfig",
]
