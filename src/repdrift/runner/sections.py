"""The sections of an experiment file other than its tasks and variants: ``train`` (the
training settings, :class:`~repdrift.training.settings.TrainingSettings`), ``analysis``,
``figures`` and ``import`` (pydantic models; unknown fields are errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from repdrift.analysis.settings import AnalysisSettings
from repdrift.common.naming import Method
from repdrift.training.settings import TrainingSettings


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


#: The ``train`` section: the training settings themselves (defaults, checks and help text in
#: :class:`repdrift.training.settings.TrainingSettings`; ``lr`` one number or one per method).
#: ``for_method(method)`` is what one method's train jobs carry.
TrainConfig = TrainingSettings


class AnalysisConfig(AnalysisSettings):
    """The ``analysis:`` section: every setting of :func:`repdrift.compare`
    (:class:`~repdrift.analysis.settings.AnalysisSettings`: its fields, defaults and checks)
    and whether to measure weight-space drift too.

    Attributes
    ----------
    weights : bool
        Also measure weight-space drift (needs the variants' weights).
    """

    weights: bool = Field(
        True, description="Also measure weight-space drift (needs the variants' weights)."
    )


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
