"""The token ids of a token-level step: ``step_XXXXXX/tokens.safetensors``.

A token-level run (``pooling == "tokens"``) stores, beside its layer files, the exact input
ids its rows came from, so the analysis can say *which* tokens moved (position, special
tokens, first or second text of a pair) and show the most-moved samples. One file per step,
listed in the manifest with its sha256 like every other file:

    token_ids   (total_tokens,) int64   sample i is token_ids[offsets[i]:offsets[i + 1]]
    offsets     (n + 1,) int64          the same offsets as every token-level layer file

Metadata (``__metadata__``, JSON strings): ``writer``; ``special_ids`` (a list; empty when the
writer did not know the tokenizer); and what the analysis shows of the tokens, so that it never
loads a tokenizer (:class:`TokenText`, written when the extractor had the run's tokenizer):
``sep_id`` (the separator id or null), ``token_text`` (id -> the tokenizer's string of that
vocabulary entry, for the ids present) and ``texts`` (each sample's ids decoded, special tokens
kept). Runs written before this file existed lack it; runs written before the token text was
recorded lack those three keys (their :attr:`TokenIds.text` is None).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open

from repdrift.errors import IntegrityError
from repdrift.store.reader import Run
from repdrift.store.tensorfile import save_safetensors

__all__ = ["TOKEN_IDS_FILE", "TokenIds", "TokenText", "read_token_ids", "token_ids_writer"]

#: File name of the token ids, relative to the step folder.
TOKEN_IDS_FILE = "tokens.safetensors"


@dataclass(frozen=True)
class TokenText:
    """What the tokenizer says of a step's token ids, recorded at extraction.

    Attributes
    ----------
    special_ids : list of int
        The tokenizer's special token ids ([CLS], [SEP], BOS…).
    sep_id : int or None
        The separator between the two texts of a pair (None: the tokenizer has none).
    vocabulary : dict
        Token id -> the tokenizer's string of that vocabulary entry, for every id present.
    texts : list of str
        Each sample's ids decoded (special tokens kept), in sample order.
    """

    special_ids: list[int]
    sep_id: int | None
    vocabulary: dict[int, str]
    texts: list[str]


class TokenIds:
    """Token ids of one step: ``ids`` (total_tokens,) int64, ``offsets`` (n + 1,) int64,
    ``special_ids`` (the tokenizer's special token ids, when recorded) and ``text`` (the
    :class:`TokenText` recorded at extraction; None for runs written before it was)."""

    def __init__(
        self,
        ids: np.ndarray,
        offsets: np.ndarray,
        special_ids: Sequence[int],
        text: TokenText | None = None,
    ) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.special_ids = [int(i) for i in special_ids]
        self.text = text

    def sample(self, i: int) -> np.ndarray:
        """Ids of sample ``i`` in position order."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def token_ids_writer(
    token_ids: Sequence[Sequence[int]],
    special_ids: Sequence[int] = (),
    text: TokenText | None = None,
) -> Callable[[Path], None]:
    """A ``write(tmp_path)`` for :meth:`repdrift.store.writer.StepWriter.add_file`, writing
    ``token_ids`` (n sequences, in sample order) as :data:`TOKEN_IDS_FILE`, with ``text``
    (whose ``special_ids`` then replace ``special_ids``) in its metadata."""
    import torch

    lengths = np.array([len(t) for t in token_ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.zeros(int(offsets[-1]), dtype=np.int64)
    for i, seq in enumerate(token_ids):
        flat[offsets[i] : offsets[i + 1]] = np.asarray(seq, dtype=np.int64)
    if text is not None:
        special_ids = text.special_ids
    meta = {"writer": "repdrift", "special_ids": json.dumps(sorted({int(i) for i in special_ids}))}
    if text is not None:
        if len(text.texts) != len(token_ids):
            raise ValueError(f"{len(text.texts)} decoded texts for {len(token_ids)} samples")
        meta |= {
            "sep_id": json.dumps(text.sep_id),
            "token_text": json.dumps({str(k): v for k, v in sorted(text.vocabulary.items())}),
            "texts": json.dumps(list(text.texts)),
        }

    def write(tmp: Path) -> None:
        tensors = {
            "token_ids": torch.from_numpy(np.ascontiguousarray(flat)),
            "offsets": torch.from_numpy(offsets),
        }
        save_safetensors(tensors, tmp, metadata=meta)

    return write


def read_token_ids(run: Run, step: int | None = None) -> TokenIds | None:
    """The token ids of a token-level step, or None when the run does not store them.

    The file was verified with the rest of the step by :func:`repdrift.store.reader.load_run`.
    """
    step_dir = run.layer_path(run.layers[0], step).parent
    path = step_dir / TOKEN_IDS_FILE
    manifest = run.manifests.get(run.step if step is None else step)
    if not path.is_file() or manifest is None or TOKEN_IDS_FILE not in manifest.files:
        return None
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            ids, offsets = f.get_tensor("token_ids"), f.get_tensor("offsets")
    except Exception as exc:  # safetensors raises a bare Exception subclass
        raise IntegrityError(f"{path}: unreadable token ids ({exc})") from None
    if offsets[-1] != len(ids) or len(offsets) != manifest.n_samples + 1:
        raise IntegrityError(
            f"{path}: offsets cover {int(offsets[-1])} ids of {len(ids)} for "
            f"{len(offsets) - 1} samples; the manifest lists {manifest.n_samples}"
        )
    special = json.loads(meta.get("special_ids", "[]"))
    text = _recorded_text(meta, special, path)
    if text is not None and len(text.texts) != manifest.n_samples:
        raise IntegrityError(
            f"{path}: {len(text.texts)} decoded texts; the manifest lists {manifest.n_samples} "
            "samples"
        )
    return TokenIds(ids, offsets, special, text)


def _recorded_text(meta: Mapping[str, str], special: list[int], path: Path) -> TokenText | None:
    """The :class:`TokenText` in the file's metadata, or None when it was not recorded."""
    if "token_text" not in meta:
        return None
    try:
        sep = json.loads(meta.get("sep_id", "null"))
        vocabulary = {int(k): str(v) for k, v in json.loads(meta["token_text"]).items()}
        texts = [str(t) for t in json.loads(meta.get("texts", "[]"))]
    except (ValueError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"{path}: unreadable token text in its metadata ({exc})") from None
    return TokenText([int(i) for i in special], None if sep is None else int(sep), vocabulary, texts)
