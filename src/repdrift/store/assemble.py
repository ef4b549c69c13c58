"""Chunks of pooled rows (:class:`PooledChunk`) and assembling layer files from the chunk files
of a partial step.

Chunks hold all layers of consecutive samples of the length-sorted order; a layer file holds
one layer of all samples in original order. Assembly reads one layer of every chunk at a
time, so memory is about one layer file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from safetensors import safe_open

from repdrift.errors import IntegrityError
from repdrift.store.tensorfile import save_safetensors

if TYPE_CHECKING:  # torch is imported where tensors are made, so reading runs stays light
    import torch



def plan_from_chunks(paths: list[Path], n: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Original indices and token lengths of all chunks concatenated (sorted order), sizes."""
    indices, lengths = [], []
    for path in paths:
        with safe_open(path, framework="numpy") as f:
            indices.append(f.get_tensor("index"))
            lengths.append(f.get_tensor("lengths"))
    index, length = np.concatenate(indices), np.concatenate(lengths)
    if len(index) != n or not np.array_equal(np.sort(index), np.arange(n)):
        raise IntegrityError(
            f"{paths[0].parent}: chunks do not cover samples 0..{n - 1} exactly once"
        )
    return index, length, [len(i) for i in indices]


def assemble_layer(
    paths: list[Path],
    sizes: list[int],
    name: str,
    token_level: bool,
    index: np.ndarray,
    lengths: np.ndarray,
) -> dict[str, torch.Tensor]:
    """One layer in original sample order: ``{"pooled": (n, d)}`` or tokens + offsets."""
    import torch

    n = len(index)
    per_sample = np.empty(n, dtype=np.int64)
    per_sample[index] = lengths
    offsets = token_offsets(per_sample)
    out: torch.Tensor | None = None
    pos = 0  # position in the concatenated sorted order
    for path, m in zip(paths, sizes, strict=True):
        with safe_open(path, framework="pt") as f:
            values = f.get_tensor(f"layer/{name}")
        if out is None:
            rows = int(offsets[-1]) if token_level else n
            out = torch.empty((rows, values.shape[1]), dtype=torch.float32)
        chunk_index = index[pos : pos + m]
        if token_level:
            row = 0
            for idx in chunk_index:
                k = int(per_sample[idx])
                out[int(offsets[idx]) : int(offsets[idx]) + k] = values[row : row + k]
                row += k
        else:
            out[torch.from_numpy(chunk_index)] = values
        pos += m
    assert out is not None
    if token_level:
        return {"tokens": out, "offsets": torch.from_numpy(offsets)}
    return {"pooled": out}


def layer_writer(
    tensors: dict[str, torch.Tensor], fmt: str, name: str, pooling: str
) -> Callable[[Path], None]:
    import torch

    def write(tmp: Path) -> None:
        if fmt == "pt":
            # Old scripts expect a bare (n, d) tensor; token-level files hold a dict.
            torch.save(tensors["pooled"] if "pooled" in tensors else tensors, tmp)
        else:
            meta = {"layer": name, "pooling": pooling, "writer": "repdrift"}
            save_safetensors(tensors, tmp, metadata=meta)

    return write


def token_offsets(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """(n + 1,) int64 offsets of samples in a token-level layer, from (n,) lengths."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


@dataclass
class PooledChunk:
    """Outputs of one chunk of the length-sorted order.

    Attributes
    ----------
    index : int
        Chunk number in the plan.
    sample_indices : np.ndarray
        (m,) int64 original indices of the chunk's samples, in the rows' order.
    lengths : np.ndarray
        (m,) int64 real token counts of those samples.
    layers : dict[str, torch.Tensor]
        Per layer, on CPU, float32: (m, d) pooled, or (lengths.sum(), d) for ``tokens``
        (each sample's tokens in position order, samples in ``sample_indices`` order).
    """

    index: int
    sample_indices: np.ndarray
    lengths: np.ndarray
    layers: dict[str, torch.Tensor]
