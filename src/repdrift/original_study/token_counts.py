"""The mask the original study did not save: each sample's real token count, by re-tokenising.

Its phase-3 extractor saved each layer as a bare ``(n, seq_len, d)`` tensor without the
attention mask, and its analysis mean-pooled over every position, padding included. The mean
over real tokens needs each sample's token count, which only the samples and the tokenizer can
give: :class:`OriginalSamples` names them and :func:`token_counts` re-tokenises. The counts are
checked against each file's shape as it is pooled (:mod:`repdrift.original_study.pooling`): a
sample longer than its row, a batch width no sample reaches; samples, order, tokenizer or max
length other than the original's are refused, not silently mis-pooled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repdrift.errors import InputError
from repdrift.models.sources import local_or_hub
from repdrift.models.tokenizer import load_tokenizer
from repdrift.tasks.encoding import encode
from repdrift.tasks.samples import Samples, load_samples
from repdrift.tasks.settings import SampleSettings
from repdrift.tasks.splits import ALL_ROWS

__all__ = ["OriginalSamples", "TokenCounts", "token_counts"]


@dataclass(frozen=True)
class OriginalSamples:
    """How the original extractor tokenised one task's samples.

    Attributes
    ----------
    samples : SampleSettings
        The samples, as :func:`repdrift.tasks.samples.load_samples` reads them (task, data,
        split, seed, max length, text fields; their number ``n`` is the runs'; a single file
        without a split: every row, split ``all``). They must be the original's samples in the
        file's row order: when it took the first rows of a split, give ``data`` holding
        exactly those rows. The runs it applies to are those of its task.
    tokenizer : str or Path
        Folder or hub id of the tokenizer the runs were extracted with.
    padding_side : {"right", "left"} or None
        Within a batch (default: the tokenizer's).
    trust_remote_code : bool
        Allow custom tokenizer code from its folder.
    """

    samples: SampleSettings
    tokenizer: str | Path
    padding_side: str | None = None
    trust_remote_code: bool = False

    @property
    def task(self) -> str:
        """The task whose runs these samples are."""
        return self.samples.task


@dataclass(frozen=True)
class TokenCounts:
    """Each sample's real token count and what the import records about how it was found.

    Attributes
    ----------
    lengths : (n,) int64
    padding_side : "right" or "left"
    samples : Samples
        The re-read samples (ids, source, max length, truncation) in row order.
    tokenizer : dict
        The tokenizer's info (``tokenizer_path``, ``tokenizer_sha256``, ...).
    """

    lengths: np.ndarray
    padding_side: str
    samples: Samples
    tokenizer: dict[str, Any]


def token_counts(spec: OriginalSamples, n: int) -> TokenCounts:
    """Each of the ``n`` samples' token count and the padding side, by re-tokenising.

    Raises
    ------
    InputError
        Fewer than ``n`` samples in the data, or an unknown padding side.
    """
    # one file is read whole (split 'all'), not the validation part repdrift holds out of it
    given = spec.samples
    one_file = given.data is not None and given.data.is_file()
    samples = load_samples(given, n=n, split=given.split or (ALL_ROWS if one_file else None))
    if len(samples) != n:
        raise InputError(
            f"task {spec.task!r}: the unpooled runs hold {n} samples, the data only "
            f"{len(samples)}; give the data the runs were extracted from"
        )
    tokenizer, info = load_tokenizer(
        local_or_hub(spec.tokenizer), trust_remote_code=spec.trust_remote_code
    )
    side = spec.padding_side or info["padding_side"]
    if side not in ("right", "left"):
        raise InputError(f"padding_side must be 'right' or 'left', got {side!r}")
    lengths = np.array([len(ids) for ids in encode(samples, tokenizer)], dtype=np.int64)
    return TokenCounts(lengths, side, samples, info)
