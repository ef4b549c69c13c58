"""The original study's unpooled layer files, mean-pooled in bounded memory.

Its phase-3 extractor saved each layer as a bare ``(n, seq_len, d)`` tensor: batches padded to
their longest input and concatenated with zero padding to the longest of all, no attention
mask. Its analysis mean-pooled over axis 1 including the padded positions.
:func:`pool_unpooled` reads such a file (or a range of its rows) through a memory map, a block
of rows at a time (never the whole tensor), and pools it either that way (``mean_unmasked``, so published numbers can be
reproduced) or over the real tokens only, given each sample's token count
(:mod:`repdrift.original_study.token_counts`); counts that cannot have produced the file are
refused, naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from repdrift.errors import IntegrityError
from repdrift.store.legacy_pt import load_pt_mmap

__all__ = ["check_batch_widths", "check_file", "open_unpooled", "pool_unpooled", "real_token_spans"]

_BLOCK_BYTES = 64 << 20  # rows of an unpooled file converted to float64 per step


def pool_unpooled(
    path: str | Path,
    *,
    lengths: np.ndarray | None = None,
    padding_side: str = "right",
    rows: slice | None = None,
    mapped: torch.Tensor | None = None,
) -> np.ndarray:
    """Mean-pool an unpooled ``(n, seq_len, d)`` layer file in bounded memory.

    Parameters
    ----------
    path
        The ``.pt`` file.
    lengths : (n,) int, optional
        Real token count per sample. None pools over all ``seq_len`` positions, padding
        included, as the original analysis did (``mean_unmasked``).
    padding_side
        Where each batch put its padding (with ``lengths`` only). The zero padding that joined
        batches of different lengths is found from the data: trailing all-zero positions.
    rows
        Only these rows (``slice(start, stop)``), for an import that writes a block of samples
        at a time; the check of the batch widths against ``lengths``, which needs every row, is
        then :func:`check_file`'s. None: every row, checked.
    mapped
        The file's memory map when the caller already opened it (:func:`open_unpooled`), so a
        file pooled a block of rows at a time is opened once.

    Returns
    -------
    np.ndarray
        (rows, d) float32, accumulated in float64.
    """
    path = Path(path)
    tensor = mapped if mapped is not None else open_unpooled(path)
    n, seq_len, d = tensor.shape
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (n,):
            raise IntegrityError(
                f"{path}: {lengths.size} token counts given for a file of {n} samples"
            )
    start, stop, _ = (rows or slice(0, n)).indices(n)
    out = np.empty((stop - start, d), dtype=np.float32)
    widths = np.empty(stop - start, dtype=np.int64)
    step = max(1, _BLOCK_BYTES // max(1, seq_len * d * 8))
    positions = torch.arange(seq_len)
    for first_row in range(start, stop, step):
        last_row = min(stop, first_row + step)
        at = slice(first_row - start, last_row - start)
        raw = tensor[first_row:last_row]
        block = raw.to(torch.float64)
        if lengths is None:
            out[at] = block.mean(dim=1).numpy()
            continue
        padded = _widths(raw, positions)
        widths[at] = padded
        first, end = real_token_spans(lengths[first_row:last_row], padded, padding_side, str(path))
        mask = (positions >= torch.from_numpy(first)[:, None]) & (
            positions < torch.from_numpy(end)[:, None]
        )
        summed = torch.bmm(mask[:, None, :].to(torch.float64), block)[:, 0]  # (m, d)
        out[at] = (summed / mask.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
    if lengths is not None and rows is None:
        check_batch_widths(lengths, widths, str(path))
    return out


def check_file(path: str | Path, lengths: np.ndarray, padding_side: str = "right") -> None:
    """Refuse token counts that cannot have produced an unpooled file, reading only its zero
    pattern a block of rows at a time (what :func:`pool_unpooled` checks on the way)."""
    path = Path(path)
    tensor = open_unpooled(path)
    n, seq_len, d = tensor.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (n,):
        raise IntegrityError(f"{path}: {lengths.size} token counts given for a file of {n} samples")
    widths = np.empty(n, dtype=np.int64)
    step = max(1, _BLOCK_BYTES // max(1, seq_len * d * 4))
    positions = torch.arange(seq_len)
    for start in range(0, n, step):
        widths[start : start + step] = _widths(tensor[start : start + step], positions)
    real_token_spans(lengths, widths, padding_side, str(path))
    check_batch_widths(lengths, widths, str(path))


def open_unpooled(path: Path) -> torch.Tensor:
    """An unpooled layer file's ``(n, seq_len, d)`` tensor, memory-mapped (nothing read yet)."""
    tensor = load_pt_mmap(path)
    if not torch.is_tensor(tensor) or tensor.ndim != 3:
        raise IntegrityError(f"{path}: expected an unpooled (n, seq_len, d) tensor")
    return tensor


def _widths(raw: torch.Tensor, positions: torch.Tensor) -> np.ndarray:
    """Positions before each row's trailing all-zero padding, on the stored values."""
    nonzero = (raw != 0).any(dim=2)  # (m, seq_len)
    last = torch.where(nonzero, positions, torch.full_like(positions, -1)).amax(dim=1)
    return (last + 1).numpy()


def real_token_spans(
    lengths: np.ndarray, padded: np.ndarray, padding_side: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """First and last + 1 real position of each row of an unpooled layer.

    Parameters
    ----------
    lengths : (m,)
        Real token count of each sample (from re-tokenising it).
    padded : (m,)
        Positions before the zero padding that joined the batches (the batch's longest input).
    padding_side : "right" or "left"
        The tokenizer's padding side within a batch.
    """
    if padding_side not in ("right", "left"):
        raise IntegrityError(
            f"{where}: padding_side must be 'right' or 'left', got {padding_side!r}"
        )
    too_long = np.flatnonzero(lengths > padded)
    if too_long.size:
        i = int(too_long[0])
        raise IntegrityError(
            f"{where}: {too_long.size} sample(s) have more tokens than the file has real "
            f"positions (row {i}: {int(lengths[i])} tokens, {int(padded[i])} positions): the "
            "samples, tokenizer or max length do not match the ones the file was written with"
        )
    if padding_side == "right":
        return np.zeros_like(lengths), lengths
    return padded - lengths, padded


def check_batch_widths(lengths: np.ndarray, widths: np.ndarray, where: str) -> None:
    """Refuse token counts that cannot have produced the file's zero-joined batches.

    Each batch was padded to its longest input and then zero-extended to the longest of all,
    so every width (positions before the zeros) shared by a zero-extended batch must be the
    token count of one of its rows. With a single width (one batch, or inputs padded to a
    fixed length) nothing beyond :func:`real_token_spans`' check can be said.
    """
    distinct = np.unique(widths)
    if distinct.size < 2:
        return
    unmatched = [int(w) for w in distinct if not np.any(lengths[widths == w] == w)]
    if unmatched:
        w = unmatched[0]
        raise IntegrityError(
            f"{where}: the rows {int(w)} positions wide (a batch padded to its longest input) "
            f"hold no sample of {w} tokens (their counts: "
            f"{sorted(set(lengths[widths == w].tolist()))[:8]}): the samples, their order, the "
            "tokenizer or the max length differ from the ones the file was written with"
        )
