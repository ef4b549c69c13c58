"""Planning a pass: layer selection, length-sorted chunks and batches, padding.

Everything here is a pure function of the token lengths and the options, so a resumed run
plans exactly the same chunks and batches as the interrupted one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from repdrift.common.naming import layer_name, layer_names
from repdrift.errors import InputError

_LAYER_NAME = re.compile(r"^layer_(\d+)$")


# --------------------------------------------------------------------------- layers


def resolve_layers(
    spec: Sequence[int | str] | int | str | None, n_blocks: int, *, has_embeddings: bool
) -> list[str]:
    """Turn a user's layer selection into canonical names in forward order.

    Parameters
    ----------
    spec : None, int, str or sequence of those
        ``None``: every block; ``"all"``: ``embeddings`` (when available) and every block. An int ``i``
        is block ``i`` (negative counts from the top, ``-1`` is the last block); a string is
        ``"layer_i"``, a decimal index or ``"embeddings"``.
    n_blocks : int
        Number of transformer blocks of the model.
    has_embeddings : bool
        Whether an embedding module is available to hook.

    Returns
    -------
    list[str]
        Unique names, ``embeddings`` first then ``layer_i`` by increasing ``i``.
    """
    if spec is None:
        return layer_names(n_blocks)
    if isinstance(spec, str) and spec == "all":
        return layer_names(n_blocks, embeddings=has_embeddings)
    items = [spec] if isinstance(spec, (int, str)) else list(spec)
    if not items:
        raise InputError("layers is empty; pass None for all layers or at least one layer")
    indices: set[int] = set()
    want_embeddings = False
    for item in items:
        if isinstance(item, str) and item == "embeddings":
            if not has_embeddings:
                raise InputError(
                    "layers includes 'embeddings' but the model has no embedding module to hook"
                )
            want_embeddings = True
            continue
        index: int | None = None
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            index = int(item)
        elif isinstance(item, str):
            match = _LAYER_NAME.match(item)
            if match:
                index = int(match.group(1))
            elif re.fullmatch(r"-?\d+", item.strip()):
                index = int(item.strip())
        if index is None:
            raise InputError(f"layer {item!r} is not an int, 'layer_i' or 'embeddings'")
        if index < 0:
            index += n_blocks
        if not 0 <= index < n_blocks:
            raise InputError(
                f"layer {item!r} is out of range: the model has {n_blocks} blocks (layer_0 to layer_{n_blocks - 1})"
            )
        indices.add(index)
    return (["embeddings"] if want_embeddings else []) + [layer_name(i) for i in sorted(indices)]


def layer_modules(
    names: Sequence[str], blocks: Sequence[nn.Module], embeddings: nn.Module | None
) -> list[tuple[str, nn.Module]]:
    """Pair canonical layer names with the modules whose output they are."""
    pairs = []
    for name in names:
        if name == "embeddings":
            if embeddings is None:
                raise InputError("layer 'embeddings' requested but no embedding module was given")
            pairs.append((name, embeddings))
        else:
            match = _LAYER_NAME.match(name)
            if not match or int(match.group(1)) >= len(blocks):
                raise InputError(f"layer {name!r} is not one of layer_0 .. layer_{len(blocks) - 1}")
            pairs.append((name, blocks[int(match.group(1))]))
    return pairs


# --------------------------------------------------------------------------- planning


def sorted_order(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Original indices sorted by decreasing length, ties by increasing index.

    Longest first so an out-of-memory batch fails at once rather than at the end.

    Returns
    -------
    np.ndarray
        (n,) int64 permutation.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    # lexsort sorts by the last key first; a stable order keeps it deterministic.
    return np.lexsort((np.arange(len(lengths)), -lengths)).astype(np.int64)


def plan_chunks(
    lengths: Sequence[int] | np.ndarray, chunk_size: int, *, token_level: bool
) -> list[np.ndarray]:
    """Cut the length-sorted order into chunks of at most ``chunk_size`` rows.

    A row is a sample for pooled outputs and a token for token-level outputs; a chunk
    always holds at least one sample.

    Returns
    -------
    list[np.ndarray]
        Original sample indices of each chunk, (m_k,) int64, in sorted order.
    """
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = sorted_order(lengths)
    chunks: list[np.ndarray] = []
    start, rows = 0, 0
    for pos, idx in enumerate(order):
        cost = int(lengths[idx]) if token_level else 1
        if pos > start and rows + cost > chunk_size:
            chunks.append(order[start:pos])
            start, rows = pos, 0
        rows += cost
    if start < len(order):
        chunks.append(order[start:])
    return chunks


def plan_batches(
    indices: np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    *,
    batch_size: int,
    max_tokens: int | None,
) -> list[np.ndarray]:
    """Split one chunk (already length-sorted) into batches.

    A batch holds at most ``batch_size`` samples and, when ``max_tokens`` is set, at most
    ``max_tokens`` padded tokens (samples x longest length); a sample longer than the
    budget gets a batch of its own.

    Returns
    -------
    list[np.ndarray]
        Original sample indices per batch, (b,) int64.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    lengths = np.asarray(lengths, dtype=np.int64)
    batches: list[np.ndarray] = []
    start, longest = 0, 0
    for pos in range(len(indices)):
        length = int(lengths[indices[pos]])
        count = pos - start
        new_longest = max(longest, length)
        full = count >= batch_size or (
            max_tokens is not None and count > 0 and (count + 1) * new_longest > max_tokens
        )
        if full:
            batches.append(indices[start:pos])
            start, new_longest = pos, length
        longest = new_longest
    if start < len(indices):
        batches.append(indices[start:])
    return batches


def pad_batch(
    sequences: Sequence[Sequence[int]], *, pad_id: int, padding_side: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists to the longest one.

    Returns
    -------
    tuple of torch.Tensor
        ``input_ids`` (b, t) int64 and ``attention_mask`` (b, t) int64 (1 on real tokens).
    """
    longest = max(len(s) for s in sequences)
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, seq in enumerate(sequences):
        n = len(seq)
        cols = slice(0, n) if padding_side == "right" else slice(longest - n, longest)
        ids[row, cols] = seq
        mask[row, cols] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


