"""The default token budget of a batch on a CUDA device, from its free memory and the model.

On the CPU there is no default budget: batches hold ``batch_size`` samples. On CUDA a batch of
long samples can exhaust the device (a 24-block model at 384 tokens), so when no
``max_tokens`` is given one is sized from ``torch.cuda.mem_get_info`` and the model's shape:

* per padded token, the activations one block holds at its peak in an inference forward
  (hidden states, the attention's query/key/value and output, the MLP's intermediate
  activations, in the model's dtype), the attention scores of an unfused kernel
  (heads × sequence length), and the float32 copies pooling makes;
* once per chunk, the pooled outputs kept on the device until the chunk is copied to the
  host: chunk rows × layers × width in float32 (twice: the parts and their concatenation).

Half of what is then free is given to a batch, so the estimate's slack (allocator
fragmentation, library workspaces) stays well clear of an out-of-memory error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Share of the free device memory (after the chunk's pooled outputs) a batch may use.
FREE_MEMORY_SHARE = 0.5


def bytes_per_token(config: object, element_size: int, longest: int) -> int:
    """Peak activation bytes of one padded token in one block of an inference forward.

    Parameters
    ----------
    config
        A transformers config (``hidden_size``, ``intermediate_size``,
        ``num_attention_heads``); missing fields are estimated (4 × width, width / 64).
    element_size : int
        Bytes per element of the model's dtype.
    longest : int
        The longest sample: unfused attention holds heads × this many scores per token.
    """
    hidden = int(getattr(config, "hidden_size", 0) or 1024)
    intermediate = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    heads = int(getattr(config, "num_attention_heads", 0) or max(1, hidden // 64))
    # residual, normed input, q, k, v, attention output, block output; gate, up and the
    # activated product of a gated MLP
    activations = element_size * (7 * hidden + 3 * intermediate)
    scores = element_size * heads * longest * 2  # scores and their softmax, unfused kernels
    pooling = 4 * 3 * hidden  # float32 upcast, masked copy, pooled row
    return activations + scores + pooling


def default_max_tokens(
    model: nn.Module,
    *,
    n_layers: int,
    chunk_rows: int,
    longest: int,
    devices: Sequence[torch.device] | None = None,
) -> int | None:
    """A ``max_tokens`` for ``model`` on its CUDA device(s); None off CUDA (no budget).

    Parameters
    ----------
    model : nn.Module
        The model (its ``config`` gives the width; its parameters the dtype and devices).
    n_layers : int
        Layers extracted: their pooled outputs stay on the device for a chunk.
    chunk_rows : int
        Rows per chunk (samples, or tokens for token-level pooling).
    longest : int
        Length of the longest sample; the budget is never below it.
    devices : sequence of torch.device, optional
        The devices the model runs on (default: those of its parameters). With several
        CUDA devices the one with the least free memory decides.

    Returns
    -------
    int or None
        Padded tokens per batch.
    """
    if devices is None:
        devices = list({p.device for p in model.parameters()})
    cuda = sorted({d for d in devices if d.type == "cuda"}, key=str)
    if not cuda or not torch.cuda.is_available():
        return None
    free = min(int(torch.cuda.mem_get_info(d)[0]) for d in cuda)
    config = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 0) or 1024)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    element_size = torch.empty((), dtype=dtype).element_size()
    kept = 2 * chunk_rows * n_layers * hidden * 4
    per_token = bytes_per_token(config, element_size, longest)
    budget = int(FREE_MEMORY_SHARE * max(0, free - kept) / per_token)
    max_tokens = max(longest, budget)
    logger.info(
        "token budget %d per batch (%.1f GiB free on %s, ~%d bytes per token)",
        max_tokens,
        free / 2**30,
        ", ".join(str(d) for d in cuda),
        per_token,
    )
    return max_tokens
