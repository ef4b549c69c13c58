"""Thin full / LoRA fine-tuning recipes that produce the variants repdrift compares.

:func:`train` fine-tunes a base model on a task preset (or local data) and saves it in the
standard formats :func:`repdrift.models.load.load_model` reads: a full fine-tune with
``save_pretrained`` (safetensors) plus the tokenizer, a LoRA fine-tune as a peft adapter
(``adapter_config.json`` + ``adapter_model.safetensors``) plus the tokenizer. Next to the
weights, ``repdrift_training.json`` records the settings and results; ``load_model`` puts it in
``LoadedModel.source["training"]`` so every extraction manifest carries the training seed.

The recipe is a short explicit loop rather than ``transformers.Trainer``: AdamW, a linear
schedule with 6 % warmup, gradient clipping at 1.0, shuffling from a ``torch.Generator``
seeded with ``seed``. The head initialization, LoRA initialization and dropout draw from torch's
global RNG, which is seeded with ``seed`` inside ``torch.random.fork_rng`` so the caller's RNG
state is left untouched. The same seed on the same device therefore gives bit-identical weights
on CPU. The loop has none of Trainer's start-up and per-step bookkeeping, which dominates tiny
demo runs on a laptop CPU.

Tasks: classification presets (``sst2``, ``mrpc``, ``rte``, ``demo-sst``, ``demo-pair``) and
custom labelled data train ``AutoModelForSequenceClassification`` with one class per distinct
label value (:func:`repdrift.training.data.label_values`; the mapping is in the record and the
config's ``label2id``); ``squad_v2`` (and data with SQuAD ``answers``) trains
``AutoModelForQuestionAnswering``. Training reads the ``train`` split through
:func:`repdrift.tasks.samples.load_samples`, the same path extraction uses for validation
samples; a single file's ``train`` part leaves out the rows extraction reads as ``validation``
(:mod:`repdrift.tasks.splits`), and the hashes of the samples trained on are saved beside the
weights so extraction can count any it is asked to measure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repdrift.common.devices import resolve_device
from repdrift.common.naming import Method, checkpoint_name
from repdrift.common.progress import progress_bar
from repdrift.common.version import __version__
from repdrift.models.inputs import segment_sep_id, takes_position_ids
from repdrift.models.loaded import inner_model
from repdrift.models.sources import normalize_source
from repdrift.models.tokenizer import load_tokenizer
from repdrift.models.training_record import TRAINED_SAMPLES
from repdrift.tasks.samples import load_samples
from repdrift.tasks.settings import SampleSettings
from repdrift.tasks.splits import sample_hashes
from repdrift.training import data as data_mod
from repdrift.training import model as setup
from repdrift.training import record as rec
from repdrift.training.data import SUBSET_SEED
from repdrift.training.evaluation import accuracy, validation_examples
from repdrift.training.model import detect_target_modules
from repdrift.training.settings import DEFAULT_SEED, TrainingSettings

logger = logging.getLogger(__name__)

__all__ = ["detect_target_modules", "train"]

WARMUP_FRACTION = 0.06
MAX_GRAD_NORM = 1.0


# --------------------------------------------------------------------------------------------
# Loop, evaluation, saving
# --------------------------------------------------------------------------------------------


def _adamw(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """AdamW without weight decay; the fused kernel where available (10x faster on CPU)."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    except (RuntimeError, ValueError, TypeError):  # a device or torch without fused AdamW
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def _batches(n: int, batch_size: int, total_steps: int, generator: torch.Generator) -> Iterator:
    """Row indices of each step: reshuffled every epoch, the last batch of an epoch partial."""
    step = 0
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for start in range(0, n, batch_size):
            if step == total_steps:
                return
            yield order[start : start + batch_size]
            step += 1


def _save(model: Any, job: _Job, folder: Path, record: dict[str, Any]) -> None:
    """Weights (full: ``save_pretrained``; LoRA: the adapter), tokenizer, the hashes of the
    training samples, then the record."""
    folder.mkdir(parents=True, exist_ok=True)
    with setup.quiet():
        model.save_pretrained(str(folder))
    job.tokenizer.save_pretrained(str(folder))
    rec.write_trained_samples(folder, job.trained)
    rec.write_record(folder, record)  # last: its presence marks a complete folder


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def train(
    *,
    task: str,
    method: Method,
    model: str | Path,
    out: str | Path,
    seed: int = DEFAULT_SEED,
    data: str | Path | None = None,
    text_fields: Sequence[str] | None = None,
    id_field: str | None = None,
    label_field: str | None = None,
    max_length: int | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    lr: float | dict[str, float] | None = None,
    batch_size: int | None = None,
    rank: int | None = None,
    alpha: int | None = None,
    dropout: float | None = None,
    target_modules: Sequence[str] | str | None = None,
    max_train_samples: int | None = None,
    save_steps: int | None = None,
    max_eval_samples: int | None = None,
    device: str | None = None,
    settings: TrainingSettings | None = None,
    progress: bool = True,
) -> Path:
    """Fine-tune ``model`` on ``task`` (full or LoRA) and save it to ``out``.

    Parameters
    ----------
    task
        A preset (``sst2``, ``mrpc``, ``rte``, ``squad_v2``, ``demo-sst``, ``demo-pair``) or,
        with ``data``, any name. The ``train`` split is used.
    method
        ``"full"`` (every weight trained) or ``"lora"`` (adapters on the attention projections
        plus the task head).
    model
        Local folder or hub id of the base model.
    out
        Folder to write; must be new, empty, or a previous :func:`train` output.
    seed
        Seeds head/LoRA initialization, dropout and the shuffling order.
    data, text_fields, id_field, label_field, max_length
        The samples trained on, as in :func:`repdrift.extract`
        (:class:`~repdrift.tasks.settings.SampleSettings`, ``train`` split): a local file or
        folder, the data's columns and the token budget (default: the preset's, or the columns
        detected by their common names and 512 tokens).
    epochs, max_steps, lr, batch_size, rank, alpha, dropout, target_modules, max_train_samples, save_steps, max_eval_samples, device
        The training settings, see :class:`~repdrift.training.settings.TrainingSettings`
        (defaults: 3 epochs, unless ``max_steps``, which wins; a peak learning rate of 5e-5
        for full, 1e-3 for LoRA; 16 examples per step; LoRA rank 8, alpha 16, dropout 0.05 on
        the attention query/value projections detected; the whole split; no checkpoints; 256
        validation samples for the recorded accuracy (0: none); device ``auto``). Each one
        given (not None) replaces the same field of ``settings``.
    settings
        The training settings as one object (default: every default).
    progress
        Show a progress bar.

    Returns
    -------
    Path
        ``out``, holding the weights, the tokenizer and ``repdrift_training.json``. When
        ``out`` already holds a complete training with the same settings it is returned as is.

    Raises
    ------
    InputError
        Bad method, task, setting or data; ``out`` holds something else.
    """
    chosen = TrainingSettings.build(
        settings, epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, rank=rank,
        alpha=alpha, dropout=dropout, target_modules=target_modules,
        max_train_samples=max_train_samples, save_steps=save_steps,
        max_eval_samples=max_eval_samples, device=device,
    )  # fmt: skip
    samples = SampleSettings.create(
        task=task, data=data, split="train", n=chosen.max_train_samples, seed=SUBSET_SEED,
        text_fields=text_fields, id_field=id_field, label_field=label_field,
        max_length=max_length,
    )  # fmt: skip
    rec.check_variant(samples, method, seed)
    run = _Run(samples, method, seed, chosen, normalize_source(model, "model"))
    return _train(run, Path(out).expanduser().resolve(), progress)


# --------------------------------------------------------------------------------------------
# The steps of train()
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    """One training: the samples, the variant (method, seed), the settings and the base model."""

    samples: SampleSettings
    method: Method
    seed: int
    settings: TrainingSettings
    src: Path | str


@dataclass
class _Job:
    """What a training run works on: tokenized examples, labels, the step count."""

    samples: Any
    tokenizer: Any
    examples: data_mod.Examples
    values: list[Any] | None  # class labels by index; None for question answering
    total_steps: int
    trained: np.ndarray  # (n,) uint64 text hashes of the training samples (tasks.splits)
    sep_id: int | None = None  # segment and position ids: repdrift.models.inputs
    positions: bool = False


def _train(run: _Run, out: Path, progress: bool) -> Path:
    """:func:`train` once its settings are built and checked."""
    started = time.perf_counter()
    torch_device = resolve_device(run.settings.device)
    arguments = rec.arguments(run.samples, run.method, run.seed, run.settings, run.src)
    if rec.previous_run(out, arguments):
        logger.info("%s already holds this training (%s %s seed %d): reusing it",
                    out, run.method, run.samples.task, run.seed)  # fmt: skip
        return out

    job = _prepare(run)
    out.mkdir(parents=True, exist_ok=True)
    record = _start_record(arguments, run.src)
    rec.write_record(out, record)  # marks out as ours while training runs
    with setup.seeded(run.seed, torch_device):
        net, targets = _task_model(run, job)
        net.to(torch_device)
        trainable = [p for p in net.parameters() if p.requires_grad]
        record.update(_settings(arguments, job, targets, trainable, torch_device))
        losses = _optimize(net, trainable, job, run, torch_device, progress,
                           on_save=lambda step, losses: _save(
                               net, job, out / checkpoint_name(step),
                               {**record, **rec.loss_summary(losses), "complete": True,
                                "step": step, "checkpoint": True, "validation_accuracy": None,
                                "seconds": round(time.perf_counter() - started, 3)}))  # fmt: skip

    val_accuracy = None
    limit = run.settings.max_eval_samples
    if job.values is not None and limit:
        evaluation = validation_examples(run.samples, job.tokenizer, job.values, limit)
        if evaluation is not None:
            val_accuracy = accuracy(inner_model(net), evaluation, job, torch_device)
            record["validation_samples"] = len(evaluation)
    total = len(losses)
    final = {**record, **rec.loss_summary(losses), "complete": True, "step": total,
             "checkpoint": False, "validation_accuracy": val_accuracy,
             "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    save_steps = run.settings.save_steps
    if save_steps and total % save_steps == 0:
        _save(net, job, out / checkpoint_name(total), {**final, "checkpoint": True})
    _save(net, job, out, final)
    logger.info(
        "trained %s %s seed %d: %d steps, final loss %.4f, validation accuracy %s, %.1f s -> %s",
        run.method, run.samples.task, run.seed, total, final["final_train_loss"],
        "n/a" if val_accuracy is None else f"{val_accuracy:.3f}", final["seconds"], out,
    )  # fmt: skip
    return out


def _prepare(run: _Run) -> _Job:
    """Training samples (train split), tokenizer, encoded examples and the number of steps."""
    samples = load_samples(run.samples)
    qa = samples.source.get("label_field") == "answers" or run.samples.task == "squad_v2"
    tokenizer, _ = load_tokenizer(run.src)
    if qa:
        values = None
        examples = data_mod.qa_examples(samples, tokenizer)
    else:
        values = data_mod.label_values(samples.labels, samples.source["location"])
        examples, _ = data_mod.classification_examples(samples, tokenizer, values)
    total = run.settings.total_steps(math.ceil(len(examples) / run.settings.batch_size))
    trained = sample_hashes(samples.texts, samples.text_pairs)
    return _Job(samples, tokenizer, examples, values, total, trained)


def _start_record(arguments: dict[str, Any], src: Path | str) -> dict[str, Any]:
    return {
        "schema": rec.RECORD_SCHEMA, "complete": False, "repdrift_version": __version__,
        "task": arguments["task"], "method": arguments["method"], "seed": arguments["seed"],
        "base_model": str(src), "arguments": arguments,
    }  # fmt: skip


def _task_model(run: _Run, job: _Job) -> tuple[Any, list[str] | None]:
    """The task model (with LoRA injected for ``lora``), initialized from the seeded RNG."""
    net = setup.build_model(run.src, job.values is None, job.values, job.tokenizer)
    targets = None
    if run.method == "lora":
        net, targets = setup.add_lora(net, job.values is None, run.settings)
    job.sep_id = segment_sep_id(inner_model(net), job.tokenizer)
    job.positions = takes_position_ids(inner_model(net))
    return net, targets


def _settings(
    arguments: dict[str, Any], job: _Job, targets: list[str] | None, trainable: list, device
) -> dict[str, Any]:
    """The effective settings recorded in ``repdrift_training.json``."""
    return {
        "lr": arguments["lr"],
        "epochs": arguments["epochs"] if arguments["max_steps"] is None else None,
        "max_steps": arguments["max_steps"],
        "total_steps": job.total_steps,
        "batch_size": arguments["batch_size"],
        "rank": arguments["rank"],
        "alpha": arguments["alpha"],
        "dropout": arguments["dropout"],
        "target_modules": targets,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "train_samples": len(job.examples),
        "train_samples_sha256": job.samples.source["samples_sha256"],
        "subset_seed": SUBSET_SEED,
        "labels": [str(v) for v in job.values] if job.values is not None else None,
        # the class index of each label value of the data (also the model config's label2id)
        "label2id": {str(v): i for i, v in enumerate(job.values)} if job.values else None,
        "label_field": job.samples.source.get("label_field"),
        "held_out": job.samples.source.get("held_out"),  # one file: its train/validation rule
        "trained_samples_file": TRAINED_SAMPLES,
        "head": "sequence_classification" if job.values is not None else "question_answering",
        "device": str(device),
        "torch_version": torch.__version__,
    }


def _optimize(
    net: Any, trainable: list, job: _Job, run: _Run, device, progress: bool, on_save: Any
) -> list[float]:
    """The training loop; returns the loss of every step. Calls ``on_save(step, losses)`` at
    every multiple of ``save_steps`` before the last step."""
    from transformers import get_linear_schedule_with_warmup

    total, save_steps = job.total_steps, run.settings.save_steps
    optimizer = _adamw(trainable, run.settings.learning_rate(run.method))
    schedule = get_linear_schedule_with_warmup(optimizer, round(WARMUP_FRACTION * total), total)
    generator = torch.Generator().manual_seed(run.seed)
    # the injected transformers model, not peft's wrapper (its QA wrapper drops token_type_ids)
    forward = inner_model(net)
    losses: list[float] = []
    pad_id = job.tokenizer.pad_token_id
    description = f"{run.method} {run.samples.task}"
    net.train()
    with progress_bar(total, enabled=progress, description=description) as bar:
        batches = _batches(len(job.examples), run.settings.batch_size, total, generator)
        for step, rows in enumerate(batches, start=1):
            batch = data_mod.collate(job.examples, rows, pad_id, job.sep_id, job.positions)
            loss = forward(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar(1)
            if save_steps and step % save_steps == 0 and step < total:
                on_save(step, losses)
                net.train()
    return losses
