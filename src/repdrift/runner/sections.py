"""The sections of an experiment file other than its tasks and variants: ``train`` (the
training settings, :class:`~repdrift.training.settings.TrainingSettings`), ``analysis``,
``figures`` and ``import`` (pydantic models; unknown fields are errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repdrift.common.naming import Method
from repdrift.metrics.definitions import CROSS_LAYER_METRIC
from repdrift.metrics.registry import DEFAULT_METRICS
from repdrift.metrics.registry import names as metric_names
from repdrift.training.settings import TrainingSettings


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: The ``train`` section: the training settings themselves (defaults, checks and help text in
#: :class:`repdrift.training.settings.TrainingSettings`; ``lr`` one number or one per method).
#: ``arguments(method)`` gives the keyword arguments of one method's training.
TrainConfig = TrainingSettings


class AnalysisConfig(Section):
    """Settings of :func:`repdrift.analysis.compare_runs.compare` and the weight analysis.

    Attributes
    ----------
    metrics : list of str
        Similarity measures (``repdrift.metrics.names()``); default cka_debiased, cka_linear,
        cosine, procrustes.
    resampled : list of str
        Metrics that get intervals and permutation nulls (default: those with an exact fast
        path, the CKA family and cosine, resampled from precomputed matrices). Any other
        metric listed here is recomputed on every replicate (procrustes: an SVD each);
        not listed, it gets values only.
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
    resampled: list[str] | None = None
    n_boot: int = Field(1000, ge=0)
    n_perm: int = Field(1000, ge=0)
    level: float = Field(0.95, gt=0, lt=1)
    seed: int = 0
    cross_layer_metric: str = CROSS_LAYER_METRIC
    weights: bool = True
    device: str = "auto"

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_metric(name)
        return value

    @field_validator("resampled")
    @classmethod
    def _resampled_among_metrics(cls, value: list[str] | None, info: Any) -> list[str] | None:
        chosen = info.data.get("metrics") or []
        for name in value or []:
            if name not in chosen:
                raise ValueError(f"{name!r} is not among the metrics {chosen}")
        return value

    @field_validator("cross_layer_metric")
    @classmethod
    def _known_cross(cls, value: str) -> str:
        _check_metric(value)
        return value


def _check_metric(name: str) -> None:
    if name not in metric_names():
        raise ValueError(f"unknown metric {name!r}; expected one of {', '.join(metric_names())}")


class FiguresConfig(Section):
    """Figure output.

    Attributes
    ----------
    format : {"png", "svg", "pdf"}
        File format of the figures.
    """

    format: Literal["png", "svg", "pdf"] = "png"


class ImportConfig(Section):
    """An existing results tree in the original study's layout, imported instead of extracted.

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
    tokenizer : str
        The tokenizer the runs were extracted with (folder or hub id). The original study's
        unpooled ``(n, seq_len, d)`` layers are then pooled over real tokens, each task's
        samples (its ``data``, ``max_length``, ``text_fields``; ``samples`` and
        ``sample_seed`` as for an extraction) re-tokenised to recover the mask; without it they
        are pooled over every position, padding included, as the original analysis did
        (``mean_unmasked``). Each run is imported into ``OUTPUT/runs`` as ``repdrift import``
        does (:mod:`repdrift.original_study`), then analysed like an extracted run.
    """

    runs: Path
    base: Path | None = None
    tokenizer: str | None = None
    methods: list[Method] = Field(default_factory=lambda: ["full", "lora"], min_length=1)
