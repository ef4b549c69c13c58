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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from repdrift.errors import InputError
from repdrift.extraction.options import ExtractionOptions
from repdrift.metrics.registry import DEFAULT_METRICS
from repdrift.metrics.registry import names as metric_names

#: The placeholders a variant path template may use (``{output}``: the output folder, so
#: trained models can live next to the runs).
PLACEHOLDERS = ("task", "seed", "method", "output")
#: ``base_model: bundled:NAME`` values and what they resolve to.
BUNDLED_MODELS = ("minilm",)

Method = Literal["full", "lora"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TaskConfig(_Section):
    """A task: a preset name, or any name with local ``data``. ``tasks: [sst2]`` is short for
    ``tasks: [{name: sst2}]``.

    Attributes
    ----------
    name : str
        A preset (``sst2``, ``mrpc``, ``rte``, ``squad_v2``, ``demo-sst``, ``demo-pair``) or,
        with ``data``, any name.
    data : path
        A local CSV / TSV / JSON(L) / parquet file, a ``save_to_disk`` folder, or a folder of
        files named by split. Without it presets load from the hub.
    split : str
        Split to draw the samples from (default: the preset's, ``validation``).
    text_fields : list of str
        One text column, or two for a pair. Default: the preset's; for your own data detected
        by their common names (``text``, ``sentence``, ``sentence1``/``sentence2``,
        ``question``/``context``, ``premise``/``hypothesis``).
    id_field : str
        Column of unique sample ids (default ``id`` or ``idx`` when present, else row numbers).
    label_field : str
        Column of labels (default ``label`` or ``labels`` when present).
    max_length : int
        Tokens per sample, special tokens included (default: the preset's; 512 for your own
        data); longer inputs are truncated with a warning that gives the count.
    """

    name: str = Field(min_length=1)
    data: Path | None = None
    split: str | None = None
    text_fields: list[str] | None = Field(None, min_length=1, max_length=2)
    id_field: str | None = None
    label_field: str | None = None
    max_length: int | None = Field(None, ge=2)

    def columns(self) -> dict[str, Any]:
        """The column roles and token budget, as keyword arguments of extract() and train()."""
        return {
            "text_fields": self.text_fields, "id_field": self.id_field,
            "label_field": self.label_field, "max_length": self.max_length,
        }  # fmt: skip


class VariantConfig(_Section):
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


class TrainConfig(_Section):
    """Settings of :func:`repdrift.training.recipe.train` for variants that do not exist yet.

    Attributes
    ----------
    max_steps : int
        Optimiser steps (wins over ``epochs``).
    epochs : float
        Training length in epochs (default 3 when neither is given).
    lr : float or {full: float, lora: float}
        Peak learning rate, one for both methods or per method (default 5e-5 full, 1e-3 LoRA).
    batch_size : int
        Examples per optimiser step.
    rank : int
        LoRA rank r.
    alpha : int
        LoRA alpha (the update is scaled by alpha / r).
    dropout : float
        LoRA dropout.
    target_modules : list of str
        LoRA target modules (default: the attention query/value projections, detected).
    max_train_samples : int
        Train on this many samples (the same subset for every seed); default the whole split.
    save_steps : int
        Also save ``checkpoint-N`` every N steps (see ``checkpoints``).
    max_eval_samples : int
        Validation samples for the recorded accuracy; 0 skips it.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    """

    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    lr: dict[Method, float] | None = None
    batch_size: int = Field(16, ge=1)
    rank: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = None
    max_train_samples: int | None = Field(None, ge=1)
    save_steps: int | None = Field(None, ge=1)
    max_eval_samples: int | None = Field(256, ge=0)
    device: str = "auto"

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_per_method(cls, value: Any) -> Any:
        # one number means the same peak rate for both methods
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"full": value, "lora": value}
        return value

    def arguments(self, method: str) -> dict[str, Any]:
        """Keyword arguments of :func:`repdrift.training.recipe.train` for one method."""
        args = self.model_dump(exclude={"lr"})
        args["lr"] = (self.lr or {}).get(method)  # type: ignore[call-overload]
        return args


#: The ``extraction:`` section is :class:`repdrift.extraction.options.ExtractionOptions` itself:
#: the same fields, defaults and checks as :func:`repdrift.extraction.api.extract` and the CLI
#: (unknown fields are errors).
ExtractionConfig = ExtractionOptions


class AnalysisConfig(_Section):
    """Settings of :func:`repdrift.analysis.compare_runs.compare` and the weight analysis.

    Attributes
    ----------
    metrics : list of str
        Similarity measures (``repdrift.metrics.names()``); default cka_debiased, cka_linear,
        cosine, procrustes.
    n_boot : int
        Half-sample replicates per layer for the intervals (0: none).
    n_perm : int
        Shuffled pairings per layer for the permutation null (0: none).
    level : float
        Confidence level of the intervals.
    seed : int
        Seed of the resampling.
    cross_layer_metric : str
        Metric of the cross-layer matrices.
    weights : bool
        Also measure weight-space drift (needs the variants' weights).
    device : str
        Where the float64 Gram/GEMM work runs: ``auto`` (a GPU with fast float64, else the
        CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    n_boot: int = Field(1000, ge=0)
    n_perm: int = Field(1000, ge=0)
    level: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    cross_layer_metric: str = "cka_debiased"
    weights: bool = True
    device: str = "auto"

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_metric(name)
        return value

    @field_validator("cross_layer_metric")
    @classmethod
    def _known_cross(cls, value: str) -> str:
        _check_metric(value)
        return value


def _check_metric(name: str) -> None:
    if name not in metric_names():
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(metric_names())}")


class FiguresConfig(_Section):
    """Figure output.

    Attributes
    ----------
    format : {"png", "svg", "pdf"}
        File format of the figures.
    """

    format: Literal["png", "svg", "pdf"] = "png"


class ImportConfig(_Section):
    """An existing results tree in the original study's layout, analysed instead of extracted.

    ``runs`` holds ``{task}_{method}_seed{seed}/step_000000/layer_i.pt`` folders (``method``
    ``full``, ``full_finetune`` or ``lora``; ``{method}_seed{seed}_{task}`` is also found);
    ``base`` holds the base run of each task as ``{task}_base``, ``base_pretrained_{task}`` or
    ``{task}`` (looked for in ``base``, then in ``runs``). ``methods``: the fine-tuning methods
    to import (default both).

    Attributes
    ----------
    runs : path
        Folder of the fine-tuned runs. ``import: PATH`` is short for ``import: {runs: PATH}``.
    base : path
        Folder of the base runs (default: looked for in ``runs``).
    methods : list of {"full", "lora"}
        Methods to import.
    """

    runs: Path
    base: Path | None = None
    methods: list[Method] = Field(default_factory=lambda: ["full", "lora"], min_length=1)


class Experiment(_Section):
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
        Analyse a results tree of the original study's layout instead of extracting.
    """

    name: str | None = None
    base_model: str | None = None
    tasks: list[TaskConfig] = Field(min_length=1)
    samples: int = Field(750, ge=1)
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
