"""Training examples for :mod:`repdrift.training.recipe`: labels, token ids and padded batches.

Classification examples are tokenized with :func:`repdrift.tasks.encoding.encode`, the same function
extraction uses, so a fine-tune sees its inputs exactly as they are later measured. Question
answering uses the standard SQuAD labelling: the tokenizer's offset mapping locates the answer's
first and last token inside the (possibly truncated) context; an unanswerable question, or an
answer cut away by truncation, points at position 0 (``[CLS]``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from repdrift.errors import InputError
from repdrift.models.inputs import derived_inputs
from repdrift.tasks.encoding import encode
from repdrift.tasks.samples import LABEL_FIELDS, Samples

logger = logging.getLogger(__name__)


@dataclass
class Examples:
    """Token ids and targets of the training (or evaluation) examples, unpadded.

    ``targets`` is a dict of per-example integer lists: ``labels`` (classification) or
    ``start_positions`` and ``end_positions`` (question answering).
    """

    input_ids: list[list[int]]
    targets: dict[str, list[int]]

    def __len__(self) -> int:
        return len(self.input_ids)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def label_values(labels: Sequence[Any] | None, where: str) -> list[Any]:
    """The label value of each class index: the distinct values, sorted, as they are.

    Stars 1-5 are five classes (index 0 is 1 star), GLUE's 0/1 two; integers sort as numbers,
    anything else as strings. A single value gets a second class ``"<other>"`` (a head needs
    two), with a warning. The mapping is recorded in the training record (``label2id``) and the
    model config's ``id2label`` / ``label2id``.

    Raises
    ------
    InputError
        No labels (the message names ``--label-field``), or a missing label.
    """
    if not labels:
        raise InputError(
            f"{where} has no label column (none named {' or '.join(LABEL_FIELDS)}): training "
            "needs labels; name the column that holds them with --label-field (label_field= "
            "in Python)"
        )
    missing = sum(v is None for v in labels)
    if missing:
        raise InputError(f"{where}: {missing} of {len(labels)} samples have no label")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        distinct: list[Any] = sorted(set(labels))
        if distinct == [-1]:
            raise InputError(
                f"{where}: every label is -1, which marks unlabelled rows (a GLUE test split?); "
                "training needs labelled data"
            )
        if -1 in distinct and 0 in distinct:
            logger.warning(
                "%s: label -1 (unlabelled in GLUE / SNLI files) is trained as a class of its "
                "own, like %s", where, ", ".join(map(str, distinct[1:])),
            )  # fmt: skip
    else:
        distinct = sorted({str(v) for v in labels})
    if len(distinct) < 2:
        logger.warning(
            "%s: every one of the %d training samples has label %r; the head gets a second "
            "class '<other>' that no sample has", where, len(labels), distinct[0],
        )  # fmt: skip
        return [*distinct, "<other>"]
    return distinct


def _label_key(value: Any) -> Any:
    """Integers stay integers (GLUE class ids); anything else compares as its string."""
    return value if isinstance(value, int) and not isinstance(value, bool) else str(value)


def classification_examples(
    samples: Samples, tokenizer: Any, values: list[Any]
) -> tuple[Examples, int]:
    """Encoded samples with class indices; samples whose label is not in ``values`` are dropped.

    Returns the examples and the number of dropped samples.
    """
    index = {_label_key(v): i for i, v in enumerate(values)}
    ids = encode(samples, tokenizer)
    labels = [_label_key(v) for v in (samples.labels or [])]
    keep = [i for i, label in enumerate(labels) if label in index]
    examples = Examples([ids[i] for i in keep], {"labels": [index[labels[i]] for i in keep]})
    return examples, len(ids) - len(keep)


# --------------------------------------------------------------------------------------------
# Question answering
# --------------------------------------------------------------------------------------------


def _answer_span(answer: Any, where: str, sample_id: str) -> tuple[int, int] | None:
    """Character span [start, end) of a SQuAD ``answers`` value's first answer, or None."""
    if not isinstance(answer, dict) or not {"text", "answer_start"} <= set(answer):
        raise InputError(
            f"{where}: answers of sample {sample_id} must be a dict with 'text' and "
            f"'answer_start' lists (SQuAD format), got {answer!r}"
        )
    texts, starts = answer["text"], answer["answer_start"]
    if not texts:
        return None
    return int(starts[0]), int(starts[0]) + len(texts[0])


def _token_span(
    offsets: Sequence[tuple[int, int]], sequence_ids: Sequence[int | None], span: tuple[int, int]
) -> tuple[int, int]:
    """First and last token of a character span inside the context (sequence 1), else (0, 0)."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    if not context:
        return 0, 0
    first, last = context[0], context[-1]
    start_char, end_char = span
    # the answer was truncated away (or lies outside the kept context)
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def qa_examples(samples: Samples, tokenizer: Any) -> Examples:
    """Question/context token ids with answer start/end token positions.

    The context alone is truncated (``only_second``) to ``samples.max_length``; a question too
    long for that falls back to ``longest_first`` for its sample.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(
            f"question answering needs a fast tokenizer (offset mapping); "
            f"{type(tokenizer).__name__} is not one"
        )
    if samples.text_pairs is None:
        raise InputError(f"task {samples.task}: question answering needs question and context")
    where = str(samples.source.get("location", samples.task))
    kwargs = {"max_length": samples.max_length, "return_offsets_mapping": True}
    input_ids: list[list[int]] = []
    starts: list[int] = []
    ends: list[int] = []
    for i, (question, context) in enumerate(zip(samples.texts, samples.text_pairs, strict=True)):
        try:
            enc = tokenizer(question, context, truncation="only_second", **kwargs)
        except Exception:  # the question alone is over budget
            enc = tokenizer(question, context, truncation="longest_first", **kwargs)
        span = _answer_span((samples.labels or [None])[i], where, samples.ids[i])
        start, end = (0, 0) if span is None else _token_span(
            enc["offset_mapping"], enc.sequence_ids(), span
        )  # fmt: skip
        input_ids.append(list(enc["input_ids"]))
        starts.append(start)
        ends.append(end)
    return Examples(input_ids, {"start_positions": starts, "end_positions": ends})


# --------------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------------


def collate(
    examples: Examples,
    rows: Sequence[int],
    pad_id: int,
    sep_id: int | None,
    positions: bool = False,
) -> dict[str, torch.Tensor]:
    """A right-padded batch of the given example rows.

    ``sep_id`` (:func:`repdrift.models.inputs.segment_sep_id`) and ``positions``
    (:func:`repdrift.models.inputs.takes_position_ids`) add segment and position ids by the rule
    extraction uses (:func:`repdrift.models.inputs.derived_inputs`), so training and measurement
    see identical inputs.

    Returns
    -------
    dict
        ``input_ids`` and ``attention_mask`` (batch, seq) int64, ``token_type_ids`` when
        ``sep_id`` is set, ``position_ids`` when ``positions``, and each target as a (batch,)
        int64 tensor.
    """
    seqs = [examples.input_ids[r] for r in rows]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    batch.update(derived_inputs(ids, mask, sep_id=sep_id, positions=positions))
    for name, values in examples.targets.items():
        batch[name] = torch.tensor([values[r] for r in rows], dtype=torch.long)
    return batch


# The training subset (max_train_samples) is drawn with a fixed seed so that runs with
# different training seeds see the same examples and differ only in initialization and order.
SUBSET_SEED = 0
