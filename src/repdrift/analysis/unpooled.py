"""The original study's unpooled layers, pooled over real tokens: the mask recovered.

Its phase-3 extractor saved each layer as a bare ``(n, seq_len, d)`` tensor without the
attention mask, and its analysis mean-pooled over every position, padding included. Read as
they are, such runs are pooled that way (``mean_unmasked``, see
:mod:`repdrift.store.legacy_pt`), which reproduces its published numbers. The mean over real
tokens needs each sample's token count, which only the samples and the tokenizer can give:
:class:`UnpooledMask` names them, :func:`real_token_counts` re-tokenises, and
:func:`apply_masks` hands the counts to every unpooled run of the task. The counts are checked
against each file's shape as it is pooled (a sample longer than its row, a batch width no
sample reaches): samples, order, tokenizer or max length other than the original's are refused,
not silently mis-pooled.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repdrift.analysis.pairing import RunInfo, TaskGroup
from repdrift.errors import InputError
from repdrift.models.sources import local_or_hub
from repdrift.models.tokenizer import load_tokenizer
from repdrift.store.legacy_pt import load_pt_mmap
from repdrift.tasks.encoding import encode
from repdrift.tasks.samples import load_samples
from repdrift.tasks.splits import ALL_ROWS

logger = logging.getLogger(__name__)

__all__ = ["UnpooledMask", "apply_masks", "real_token_counts"]

#: What the warning for unmasked runs tells a CLI user to pass.
MASK_OPTIONS = "--task, --tokenizer and --max-length (unpooled_mask= in Python)"


@dataclass(frozen=True)
class UnpooledMask:
    """How the original extractor tokenised one task's samples.

    Attributes
    ----------
    task
        Task preset or name (with ``data``); the runs it applies to are this task's.
    tokenizer
        Folder or hub id of the tokenizer the runs were extracted with.
    data, split, seed
        The samples, as :func:`repdrift.tasks.samples.load_samples` reads them (a single file
        without a split: every row, split ``all``); their number is the file's. They must be the original's samples in the file's row order: when it
        took the first rows of a split, give ``data`` holding exactly those rows.
    max_length, text_fields
        Token budget per sample and text column(s) (default: the task's).
    padding_side
        ``"right"`` or ``"left"`` within a batch (default: the tokenizer's).
    """

    task: str
    tokenizer: str | Path
    data: str | Path | None = None
    split: str | None = None
    seed: int = 0
    max_length: int | None = None
    padding_side: str | None = None
    text_fields: Sequence[str] | None = None
    trust_remote_code: bool = False


def real_token_counts(mask: UnpooledMask, n: int) -> tuple[np.ndarray, str]:
    """Each of the ``n`` samples' token count and the padding side, by re-tokenising.

    Raises
    ------
    InputError
        Fewer than ``n`` samples in the data, or an unknown padding side.
    """
    # one file is read whole (split 'all'), not the validation part repdrift holds out of it
    one_file = mask.data is not None and Path(mask.data).expanduser().is_file()
    samples = load_samples(
        mask.task, data=mask.data, split=mask.split or (ALL_ROWS if one_file else None), n=n,
        seed=mask.seed, max_length=mask.max_length, text_fields=mask.text_fields,
    )  # fmt: skip
    if len(samples) != n:
        raise InputError(
            f"task {mask.task!r}: the unpooled runs hold {n} samples, the data only "
            f"{len(samples)}; give the data the runs were extracted from"
        )
    tokenizer, info = load_tokenizer(
        local_or_hub(mask.tokenizer), trust_remote_code=mask.trust_remote_code
    )
    side = mask.padding_side or info["padding_side"]
    if side not in ("right", "left"):
        raise InputError(f"padding_side must be 'right' or 'left', got {side!r}")
    lengths = np.array([len(ids) for ids in encode(samples, tokenizer)], dtype=np.int64)
    return lengths, side


def apply_masks(
    groups: list[TaskGroup], masks: UnpooledMask | Sequence[UnpooledMask] | None
) -> list[TaskGroup]:
    """Every unpooled run of a masked task pooled over its real tokens; a warning for the rest.

    Raises
    ------
    InputError
        A mask for a task that is not among the runs, two masks for one task, or masks given
        when no run is unpooled.
    """
    masks = [] if masks is None else [masks] if isinstance(masks, UnpooledMask) else list(masks)
    by_task = {m.task: m for m in masks}
    if len(by_task) != len(masks):
        raise InputError("two unpooled masks for one task: give one per task")
    tasks = {g.task for g in groups}
    if unknown := sorted(set(by_task) - tasks):
        raise InputError(
            f"unpooled mask for task(s) {unknown}, not among the runs' {sorted(tasks)}"
        )
    unpooled = {g.task for g in groups if any(r.run.unpooled for r in (g.reference, *g.variants))}
    if masks and not unpooled:
        raise InputError(
            "the token counts (--task/--tokenizer) apply only to the original study's unpooled "
            "(n, seq_len, d) layer files, and none of the runs holds such files"
        )
    out = []
    for group in groups:
        if group.task not in unpooled:
            out.append(group)
        elif group.task in by_task:
            out.append(_masked(group, by_task[group.task]))
        else:
            logger.warning(
                "task %s: unpooled layers pooled over every position, padding included, as the "
                "original analysis did (pooling mean_unmasked); for the mean over real tokens "
                "give %s",
                group.task, MASK_OPTIONS,
            )  # fmt: skip
            out.append(group)
    return out


def _masked(group: TaskGroup, mask: UnpooledMask) -> TaskGroup:
    """The group with its unpooled runs pooled over real tokens (pooled runs as they are)."""
    infos = [i for i in (group.reference, *group.variants) if i.run.unpooled]
    n = _rows(infos[0])
    lengths, side = real_token_counts(mask, n)

    def with_mask(info: RunInfo) -> RunInfo:
        if not info.run.unpooled:
            return info
        if (rows := _rows(info)) != n:
            raise InputError(
                f"{info.run.path}: {rows} samples, {infos[0].run.path}: {n}; unpooled runs of "
                "one task hold the same samples"
            )
        return dataclasses.replace(info, run=info.run.with_token_lengths(lengths, side))

    return TaskGroup(group.task, with_mask(group.reference), [with_mask(v) for v in group.variants])


def _rows(info: RunInfo) -> int:
    """Samples in an unpooled run (from its first layer file's header; nothing is read)."""
    return int(load_pt_mmap(info.run.layer_path(info.run.layers[0])).shape[0])
