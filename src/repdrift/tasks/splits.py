"""Which rows are for training and which for evaluation, and which samples a model has seen.

A single local file has no splits of its own, yet ``repdrift train`` and ``repdrift extract``
both read it. So that a model's representations are never measured, unannounced, on the rows
it was trained on, one rule (:func:`file_part`) splits every single file the same way for both:

* ``validation`` (also ``dev``, ``val``, ``valid``): :data:`HELD_OUT_FRACTION` of the rows (at
  least one), drawn with ``numpy.random.default_rng(SPLIT_SEED)`` and kept in file order. It is
  what ``extract`` reads by default (every preset's default split is ``validation``) and what
  ``train`` measures its validation accuracy on;
* ``train``: every other row; what ``train`` trains on;
* ``all``: every row, named on purpose (``--split all``).

The rule and the row counts go into ``Samples.source["held_out"]``, hence into the extraction
manifest's ``data`` and the training record. ``train`` also saves a 64-bit hash of the text of
every sample it trained on (:func:`sample_hashes`, file
:data:`repdrift.models.training_record.TRAINED_SAMPLES`), so ``extract`` can count the samples a
model was trained on, whatever file, split or ids they come from (:func:`count_seen`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np

from repdrift.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_ROWS",
    "HELD_OUT_FRACTION",
    "HELD_OUT_RULE",
    "SPLIT_SEED",
    "VALIDATION_NAMES",
    "count_seen",
    "file_part",
    "sample_hashes",
]

#: Share of a single file's rows held out from training, for evaluation (the ``validation`` part).
HELD_OUT_FRACTION = 0.2
#: Seed of the held-out draw; fixed, so every command and every run splits a file the same way.
SPLIT_SEED = 0
#: The split name that reads every row of a single file.
ALL_ROWS = "all"
#: The rule in words, as recorded in manifests and training records.
HELD_OUT_RULE = (
    f"one file: {HELD_OUT_FRACTION:.0%} of its rows (at least 1, numpy seed {SPLIT_SEED}) are "
    "held out as 'validation', the rest are 'train'; 'all' is every row"
)
#: The spellings of the validation split (in a folder of files named by split, too).
VALIDATION_NAMES = ("validation", "dev", "val", "valid")
_LOGGED: set[tuple[str, str]] = set()


def _held_out(n_rows: int) -> np.ndarray:
    """Indices of the held-out rows of a file of ``n_rows`` rows, ascending."""
    k = min(n_rows - 1, max(1, round(HELD_OUT_FRACTION * n_rows)))
    rng = np.random.default_rng(SPLIT_SEED)
    return np.sort(rng.choice(n_rows, size=k, replace=False)).astype(np.int64)


def file_part(n_rows: int, split: str, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The rows of one file that make up ``split``, and the record of the rule.

    Parameters
    ----------
    n_rows
        Rows in the file.
    split
        ``train``, ``validation`` (or ``dev``, ``val``, ``valid``) or ``all``.
    where
        The file, for messages.

    Returns
    -------
    rows : numpy.ndarray
        (n_part,) int64 indices into the file, ascending.
    record : dict
        ``rule``, ``part``, ``seed``, ``fraction``, ``rows_in_file``, ``train_rows``,
        ``validation_rows``: what manifests and training records keep.

    Raises
    ------
    InputError
        Another split name, or a file of one row asked for a part.
    """
    part = "validation" if split in VALIDATION_NAMES else split
    if part not in ("train", "validation", ALL_ROWS):
        raise InputError(
            f"split {split!r} of data file {where}: one file is split by repdrift into 'train' "
            f"and 'validation' ({HELD_OUT_FRACTION:.0%} of its rows held out, seed "
            f"{SPLIT_SEED}), or read whole with 'all'; give one of these with --split "
            "(split= in Python), or a folder of files named by split"
        )
    held = _held_out(n_rows) if n_rows >= 2 else np.zeros(0, dtype=np.int64)
    record = {
        "rule": HELD_OUT_RULE, "part": part, "seed": SPLIT_SEED, "fraction": HELD_OUT_FRACTION,
        "rows_in_file": n_rows, "train_rows": n_rows - len(held), "validation_rows": len(held),
    }  # fmt: skip
    if (where, part) not in _LOGGED:  # once per file and part, however often it is read
        _LOGGED.add((where, part))
        counts = f"{record['train_rows']} train, {record['validation_rows']} validation"
        logger.info("data %s is one file of %d rows, split by repdrift (%s; seed %d): reading "
                    "%r", where, n_rows, counts, SPLIT_SEED, part)  # fmt: skip
    if part == ALL_ROWS:
        return np.arange(n_rows, dtype=np.int64), record
    if n_rows < 2:
        raise InputError(
            f"data file {where} has {n_rows} row(s): too few to hold out a 'validation' part "
            "from 'train'; read it whole with --split all (split='all' in Python)"
        )
    if part == "validation":
        return held, record
    keep = np.ones(n_rows, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep).astype(np.int64), record


def sample_hashes(texts: list[str], pairs: list[str] | None) -> np.ndarray:
    """A 64-bit hash of each sample's text (and second text): what a model saw, id-free.

    Returns
    -------
    numpy.ndarray
        (n,) uint64, one per sample, in sample order.
    """
    second = pairs if pairs is not None else [None] * len(texts)
    out = np.empty(len(texts), dtype=np.uint64)
    for i, (text, pair) in enumerate(zip(texts, second, strict=True)):
        blob = json.dumps([text, pair], ensure_ascii=False).encode("utf-8")
        out[i] = int.from_bytes(hashlib.sha256(blob).digest()[:8], "little")
    return out


def count_seen(texts: list[str], pairs: list[str] | None, trained: np.ndarray) -> int:
    """How many of these samples have the text of a sample in ``trained`` (:func:`sample_hashes`)."""
    return int(np.isin(sample_hashes(texts, pairs), trained).sum())
