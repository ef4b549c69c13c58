"""Validation accuracy of a trained classifier, recorded with the training (length-sorted batches)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from repdrift.errors import InputError
from repdrift.tasks.samples import load_samples
from repdrift.tasks.settings import SampleSettings
from repdrift.training import data as data_mod

logger = logging.getLogger(__name__)


EVAL_BATCH = 64


def accuracy(model: torch.nn.Module, examples: data_mod.Examples, job: Any, device) -> float:
    """Fraction of examples whose arg-max class is the label (length-sorted batches)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples.input_ids[i]))
    correct = 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), EVAL_BATCH):
            rows = order[start : start + EVAL_BATCH]
            batch = data_mod.collate(
                examples, rows, job.tokenizer.pad_token_id, job.sep_id, job.positions
            )
            labels = batch.pop("labels")
            logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
            correct += int((logits.argmax(-1).cpu() == labels).sum())
    return correct / len(examples)


def validation_examples(
    train_samples: SampleSettings, tokenizer: Any, values: list[Any], limit: int
) -> data_mod.Examples | None:
    """Labelled validation examples for accuracy (at most ``limit``), or None when there is no
    validation split.

    They are the training samples' task, data and columns, ``validation`` split; a single
    file's ``validation`` part is the rows held out from training (:mod:`repdrift.tasks.splits`).
    """
    try:
        samples = load_samples(train_samples, split="validation", n=limit)
    except InputError as exc:
        logger.info("no validation accuracy: %s", exc)
        return None
    if not samples.labels:
        return None
    examples, dropped = data_mod.classification_examples(samples, tokenizer, values)
    if dropped:
        logger.info("validation: %d sample(s) with labels unseen in training skipped", dropped)
    return examples if len(examples) else None
