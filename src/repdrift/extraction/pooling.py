"""Pooling of one block's hidden states over the real (non-padding) tokens.

These functions run on the model's device inside the forward hooks, so only the pooled
vectors (or the real tokens) ever leave the device. They work for left and right padding:
positions are found from the attention mask, never assumed.
"""

from __future__ import annotations

import torch

from repdrift.common.naming import POOLINGS, Pooling
from repdrift.errors import InputError


def first_real_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the first real token of each row.

    Parameters
    ----------
    mask : torch.Tensor
        (batch, seq) bool, True on real tokens; each row has at least one True.

    Returns
    -------
    torch.Tensor
        (batch,) int64.
    """
    # argmax returns the first maximal position, i.e. the first True.
    return mask.to(torch.int8).argmax(dim=1)


def last_real_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row; see :func:`first_real_index` for shapes."""
    seq = mask.shape[1]
    return (seq - 1) - mask.flip(1).to(torch.int8).argmax(dim=1)


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Pool one layer's hidden states over the real tokens, in float32.

    Parameters
    ----------
    hidden : torch.Tensor
        (batch, seq, d) block output in any floating dtype; upcast to float32 first so that
        bf16/fp16 models are pooled with float32 accumulation.
    mask : torch.Tensor
        (batch, seq) bool, True on real tokens (left or right padding).
    pooling : {"mean", "first", "last", "max", "tokens"}
        ``tokens`` returns the real tokens' vectors with the padding dropped.

    Returns
    -------
    torch.Tensor
        (batch, d) float32, or for ``tokens`` (sum of real lengths, d) float32 with the
        samples' tokens concatenated in batch-row order, each in position order.
    """
    hidden = hidden.float()
    if pooling == "mean":
        # where() instead of a multiply: padded positions may hold NaN/inf (fully masked
        # attention rows under left padding) and NaN * 0 is NaN.
        kept = torch.where(mask.unsqueeze(-1), hidden, 0.0)
        counts = mask.sum(dim=1, keepdim=True).to(torch.float32)
        return kept.sum(dim=1) / counts
    if pooling == "max":
        kept = torch.where(mask.unsqueeze(-1), hidden, float("-inf"))
        return kept.amax(dim=1)
    if pooling == "first":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, first_real_index(mask)]
    if pooling == "last":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_real_index(mask)]
    if pooling == "tokens":
        return hidden[mask]
    raise InputError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
