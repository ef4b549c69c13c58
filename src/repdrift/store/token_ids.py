"""The token ids of a token-level step: ``step_XXXXXX/tokens.safetensors``.

A token-level run (``pooling == "tokens"``) stores, beside its layer files, the exact input
ids its rows came from, so the analysis can say *which* tokens moved (position, special
tokens, first or second text of a pair) and show the most-moved samples. One file per step,
listed in the manifest with its sha256 like every other file:

    token_ids   (total_tokens,) int64   sample i is token_ids[offsets[i]:offsets[i + 1]]
    offsets     (n + 1,) int64          the same offsets as every token-level layer file

Metadata (``__metadata__``): ``special_ids`` (JSON list; empty when the writer did not know
the tokenizer) and ``writer``. Runs written before this file existed simply lack it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from safetensors import safe_open

from repdrift.errors import IntegrityError
from repdrift.store.reader import Run
from repdrift.store.tensorfile import save_safetensors

__all__ = ["TOKEN_IDS_FILE", "TokenIds", "read_token_ids", "token_ids_writer"]

#: File name of the token ids, relative to the step folder.
TOKEN_IDS_FILE = "tokens.safetensors"


class TokenIds:
    """Token ids of one step: ``ids`` (total_tokens,) int64, ``offsets`` (n + 1,) int64 and
    ``special_ids`` (the tokenizer's special token ids, when recorded)."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, special_ids: Sequence[int]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.special_ids = [int(i) for i in special_ids]

    def sample(self, i: int) -> np.ndarray:
        """Ids of sample ``i`` in position order."""
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def token_ids_writer(
    token_ids: Sequence[Sequence[int]], special_ids: Sequence[int] = ()
) -> Callable[[Path], None]:
    """A ``write(tmp_path)`` for :meth:`repdrift.store.writer.StepWriter.add_file`, writing
    ``token_ids`` (n sequences, in sample order) as :data:`TOKEN_IDS_FILE`."""
    import torch

    lengths = np.array([len(t) for t in token_ids], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.zeros(int(offsets[-1]), dtype=np.int64)
    for i, seq in enumerate(token_ids):
        flat[offsets[i] : offsets[i + 1]] = np.asarray(seq, dtype=np.int64)
    meta = {"writer": "repdrift", "special_ids": json.dumps(sorted({int(i) for i in special_ids}))}

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
    return TokenIds(ids, offsets, json.loads(meta.get("special_ids", "[]")))
