"""Which tokens moved: per-token drift (1 − cosine) by position and token type, and the
most-moved samples with their text, for token-level runs (see :mod:`repdrift.analysis.tokens`).

Token types come from the token ids stored with the run (``tokens.safetensors``, see
:mod:`repdrift.store.token_ids`): ``special`` (the tokenizer's special ids: [CLS], [SEP], BOS…),
and for the rest ``text``, or ``first text`` / ``second text`` for pairs, the second text
starting after the first separator that is not a sample's last token. Special ids, separator,
token strings and each sample's decoded text are what the extractor recorded from the run's
tokenizer beside the ids (:class:`repdrift.store.token_ids.TokenText`); the analysis never
loads a tokenizer. A run written before that was recorded has its special ids and separator
inferred from the ids alone: an id that opens every sample or closes every sample is special,
and the id that closes every sample is the separator (right for BERT-style [CLS] … [SEP] and
BOS-prefixed decoders; a run without such ids has no special tokens); its samples and tokens
are shown as ids, with a note saying why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from repdrift.store.reader import Run
from repdrift.store.token_ids import TokenIds, read_token_ids

logger = logging.getLogger(__name__)

__all__ = ["TokenLayout", "profile_rows", "sample_rows", "token_layout"]

#: Most-moved samples kept per run × layer.
TOP_SAMPLES = 5
#: Most-moved tokens listed per sample.
TOP_TOKENS = 3
#: Said beside the ids of a sample when its run recorded no token text.
NO_TEXT_NOTE = "(no token text recorded: run extracted before repdrift stored it; re-extract)"


@dataclass
class TokenLayout:
    """Per-token facts of one task's token-level runs (all arrays (total_tokens,)).

    Attributes
    ----------
    sample : int64 index of each token's sample
    position : int64 position within its sample
    kind : str token type (``special``, ``text``, ``first text``, ``second text``)
    ids : int64 token ids, or None when the run does not store them
    offsets : int64 (n + 1,) sample i is tokens offsets[i]:offsets[i + 1]
    vocabulary : token id -> string, or None when the run recorded no token text
    texts : each sample's decoded text, or None when the run recorded no token text
    source : how types were decided (``recorded``, ``inferred from ids``, ``no token ids``)
    """

    sample: np.ndarray
    position: np.ndarray
    kind: np.ndarray
    ids: np.ndarray | None
    offsets: np.ndarray
    vocabulary: dict[int, str] | None
    texts: list[str] | None
    source: str


def _inferred_specials(tids: TokenIds) -> tuple[set[int], int | None]:
    n = len(tids.offsets) - 1
    lengths = np.diff(tids.offsets)
    if n < 2 or (lengths == 0).any():
        return set(), None
    first = tids.ids[tids.offsets[:-1]]
    last = tids.ids[tids.offsets[1:] - 1]
    special = set()
    sep = None
    if (first == first[0]).all():
        special.add(int(first[0]))
    if (last == last[0]).all():
        sep = int(last[0])
        special.add(sep)
    return special, sep


def token_layout(run: Run, offsets: np.ndarray) -> TokenLayout:
    """Sample, position and type of every token of a token-level run (its default step)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    sample = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(int(offsets[-1])) - offsets[:-1][sample]
    tids = read_token_ids(run)
    if tids is None or not np.array_equal(tids.offsets, offsets):
        kind = np.full(len(sample), "token", dtype=object)
        return TokenLayout(sample, position, kind, None, offsets, None, None, "no token ids")
    text = tids.text
    if text is not None:
        special, sep, source = set(text.special_ids), text.sep_id, "recorded"
    else:
        logger.info("%s: no token text recorded (an older run); showing token ids", run.path)
        special, sep = _inferred_specials(tids)
        special |= set(tids.special_ids)
        source = "inferred from ids"
    ids = tids.ids
    is_special = np.isin(ids, list(special)) if special else np.zeros(len(ids), dtype=bool)
    second = np.zeros(len(ids), dtype=bool)
    if sep is not None:
        for i in range(len(lengths)):
            row = ids[offsets[i] : offsets[i + 1]]
            hits = np.flatnonzero(row[:-1] == sep)
            if hits.size:
                second[offsets[i] + hits[0] + 1 : offsets[i + 1]] = True
    kind = np.full(len(ids), "text", dtype=object)
    if second.any():
        kind[:] = "first text"
        kind[second] = "second text"
    kind[is_special] = "special"
    vocabulary, texts = (text.vocabulary, text.texts) if text is not None else (None, None)
    return TokenLayout(sample, position, kind, ids, offsets, vocabulary, texts, source)


def profile_rows(labels: dict[str, Any], layout: TokenLayout, drift: np.ndarray) -> list[dict]:
    """Mean per-token drift (1 − cosine) by position and by token type: table rows."""
    rows = []
    counts = np.bincount(layout.position)
    sums = np.bincount(layout.position, weights=drift)
    sq = np.bincount(layout.position, weights=drift * drift)
    for p in np.flatnonzero(counts):
        mean = sums[p] / counts[p]
        rows.append({
            **labels, "by": "position", "key": str(p), "position": int(p),
            "drift": float(mean), "drift_sd": float(np.sqrt(max(sq[p] / counts[p] - mean**2, 0))),
            "n_tokens": int(counts[p]),
        })  # fmt: skip
    for kind in sorted(set(layout.kind)):
        mask = layout.kind == kind
        part = drift[mask]
        rows.append({
            **labels, "by": "type", "key": str(kind), "position": -1,
            "drift": float(part.mean()), "drift_sd": float(part.std()),
            "n_tokens": int(mask.sum()),
        })  # fmt: skip
    return rows


def _text(layout: TokenLayout, i: int) -> str:
    if layout.ids is None:
        return ""
    if layout.texts is not None:
        return layout.texts[i]
    ids = layout.ids[layout.offsets[i] : layout.offsets[i + 1]]
    return "ids: " + " ".join(map(str, ids.tolist())) + " " + NO_TEXT_NOTE


def _token(layout: TokenLayout, t: int) -> str:
    if layout.ids is None:
        return f"@{int(layout.position[t])}"
    tid = int(layout.ids[t])
    name = (layout.vocabulary or {}).get(tid, str(tid))
    return f"{name}@{int(layout.position[t])}"


def sample_rows(
    labels: dict[str, Any], layout: TokenLayout, drift: np.ndarray, sample_ids: list[str] | None
) -> list[dict]:
    """The :data:`TOP_SAMPLES` samples of largest mean per-token drift, with their text."""
    starts = layout.offsets[:-1]
    lengths = np.diff(layout.offsets)
    per_sample = np.add.reduceat(drift, starts) / lengths
    rows = []
    for rank, i in enumerate(np.argsort(-per_sample, kind="stable")[:TOP_SAMPLES], start=1):
        seg = drift[starts[i] : starts[i] + lengths[i]]
        top = np.argsort(-seg, kind="stable")[:TOP_TOKENS] + starts[i]
        rows.append({
            **labels, "rank": rank, "sample": int(i),
            "sample_id": sample_ids[i] if sample_ids else str(i),
            "n_tokens": int(lengths[i]), "drift": float(per_sample[i]),
            "max_token_drift": float(seg.max()),
            "top_tokens": ", ".join(f"{_token(layout, t)} ({drift[t]:.3g})" for t in top),
            "text": _text(layout, int(i)),
        })  # fmt: skip
    return rows
