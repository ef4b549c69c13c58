"""One job of a study: train a variant, extract a model (one checkpoint step) into a run directory, or import a run of the original layout.

Run-folder names come from :func:`repdrift.common.naming.run_name` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from repdrift.common.naming import run_name  # the one run-folder rule; plan and stages use it
from repdrift.extraction.options import ExtractionOptions
from repdrift.original_study.token_counts import OriginalSamples
from repdrift.tasks.settings import SampleSettings
from repdrift.training.settings import TrainingSettings

JobKind = Literal["train", "extract", "import"]


Status = Literal["done", "partial", "todo", "missing", "stale", "invalid"]


@dataclass(frozen=True, kw_only=True)
class Job:
    """One train / extract / import job, built by keyword.

    Attributes
    ----------
    id
        Stable, unique, sortable: ``train:sst2:lora:seed42``, ``extract:sst2:base``,
        ``extract:sst2:full:seed42:step100``.
    kind
        ``train``, ``extract`` or ``import``.
    task, method, seed, step
        Labels of the run (``method`` is ``base``, ``full`` or ``lora``; ``seed`` None for
        the base run; ``step`` 0 for the final model).
    model
        What is loaded: the base model (train, base extraction), the variant folder, or a
        ``checkpoint-N`` folder.
    out
        The run directory (extract, import) or the trained model folder (train).
    group
        Shard unit: ``sst2/lora/seed42`` or ``sst2/base``.
    needs
        Ids of jobs that must finish first.
    samples
        Train and extract jobs: the task's samples (a frozen, picklable
        :class:`~repdrift.tasks.settings.SampleSettings`; train reads its columns on the
        ``train`` split).
    base
        Extract jobs of variants: the base model.
    options
        Extract jobs: the experiment's extraction settings
        (:class:`~repdrift.extraction.options.ExtractionOptions`).
    training
        Train jobs: the experiment's training settings
        (:class:`~repdrift.training.settings.TrainingSettings`).
    original
        Import jobs: how the original tokenised the task's samples (None: pool as it did).
    tried
        Import jobs: every folder looked at for the run.
    """

    id: str
    kind: JobKind
    task: str
    method: str
    seed: int | None
    step: int
    model: str
    out: Path
    group: str
    needs: tuple[str, ...] = ()
    samples: SampleSettings | None = field(default=None, compare=False)
    base: str | None = field(default=None, compare=False)
    options: ExtractionOptions | None = field(default=None, compare=False)
    training: TrainingSettings | None = field(default=None, compare=False)
    original: OriginalSamples | None = field(default=None, compare=False)
    tried: tuple[str, ...] = field(default=(), compare=False)


__all__ = ["Job", "JobKind", "Status", "run_name"]
