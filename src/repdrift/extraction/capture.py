"""The extraction core: length-sorted batches, forward hooks, pooling on the device.

This module knows nothing about files, tasks or how a model was loaded: it takes a torch
model, the list of its transformer blocks (block ``i`` is the layer called ``layer_i``),
optionally the embedding module (``embeddings``), and unpadded token-id lists.

How a pass works
----------------
* Samples are sorted by length (longest first, ties by original index) so each batch is
  padded only to its own longest sample. The sorted order is cut into *chunks* of at most
  ``chunk_size`` rows (samples, or tokens for token-level pooling); batches never cross a
  chunk boundary. Chunking depends only on the lengths and ``chunk_size`` - not on the batch
  size - so a resumed run recomputes exactly the chunks it lacks.
* A forward hook on each requested block pools the block's output on the block's own device
  (a model placed by a device map runs its blocks on several devices, with the attention mask
  copied once per batch to each) as soon as it is produced, in float32. The hook of the last
  requested layer raises a private exception that stops the forward pass, so the layers above
  it are never computed.
* Given the model's final norm, the last block's hook applies it before pooling (the last
  layer is then transformers' ``hidden_states[-1]``).
* Pooled outputs stay on the device for the whole chunk and are copied to the host once per
  chunk (one transfer per device and layer width, asynchronous into pinned memory on CUDA); a
  chunk is handed over only after the next chunk's first batch is under way, so writing it
  to disk overlaps the device's work.
* Results are yielded per chunk (:func:`iter_pooled_chunks`, constant memory) or collected
  in original sample order (:func:`extract_pooled`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from repdrift.common.naming import Pooling, check_pooling, layer_name
from repdrift.common.progress import progress_bar
from repdrift.errors import InputError
from repdrift.extraction.batching import (
    layer_modules,
    pad_batch,
    plan_batches,
    plan_chunks,
    resolve_layers,
)
from repdrift.extraction.model_parts import (
    ModelParts,
    PassPlan,
    default_forward_inputs,
    input_device,
)
from repdrift.extraction.pooling import pool_hidden
from repdrift.store.assemble import PooledChunk, token_offsets

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int], None]  # receives the number of samples just finished

__all__ = ["Pooled", "extract_pooled", "iter_pooled_chunks"]


class _StopForward(Exception):
    """Raised by the last requested layer's hook to skip the rest of the forward pass."""


# --------------------------------------------------------------------------- forward


def _check_token_ids(token_ids: Sequence[Sequence[int]]) -> np.ndarray:
    lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
    if len(lengths) == 0:
        raise InputError("token_ids is empty: nothing to extract")
    empty = np.flatnonzero(lengths == 0)
    if len(empty):
        raise InputError(
            f"sample {int(empty[0])} has no tokens; every sample needs at least one token"
        )
    return lengths


def _apply_norm(norm: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``norm(hidden)`` on the device of the norm's weights (offloaded weights: accelerate's
    hook on the norm moves the input itself)."""
    device = next((p.device for p in norm.parameters() if p.device.type != "meta"), None)
    return norm(hidden if device is None else hidden.to(device))


@dataclass
class _HostCopy:
    """A chunk's pooled outputs on their way to the host (copies in flight until
    :meth:`wait`)."""

    chunk: PooledChunk
    events: list[Any]

    def wait(self) -> PooledChunk:
        for event in self.events:
            event.synchronize()
        return self.chunk


def _to_host(pooled: dict[str, torch.Tensor], names: Sequence[str]) -> tuple[dict, list[Any]]:
    """Start copying one chunk's pooled tensors to the CPU.

    Tensors on one device with one shape travel in a single transfer (stacked); on CUDA into
    pinned memory with ``non_blocking=True``, so the copy does not stall the host. Returns the
    host tensors (valid once the returned CUDA events have completed) and the events.
    """
    host: dict[str, torch.Tensor] = {}
    events: list[Any] = []
    groups: dict[tuple[torch.device, tuple[int, ...]], list[str]] = {}
    for name in names:
        tensor = pooled[name]
        if tensor.device.type == "cpu":
            host[name] = tensor
        else:  # e.g. factorised embeddings narrower than the blocks form a group of their own
            groups.setdefault((tensor.device, tuple(tensor.shape)), []).append(name)
    for (device, _shape), group in groups.items():
        stacked = torch.stack([pooled[n] for n in group]) if len(group) > 1 else pooled[group[0]]
        if device.type == "cuda":
            target = torch.empty(stacked.shape, dtype=stacked.dtype, pin_memory=True)
            target.copy_(stacked, non_blocking=True)
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(device))
            events.append(event)
        else:
            target = stacked.cpu()
        parts = target.unbind(0) if len(group) > 1 else (target,)
        host.update(zip(group, parts, strict=True))
    return host, events


def iter_pooled_chunks(
    parts: ModelParts,
    token_ids: Sequence[Sequence[int]],
    plan: PassPlan,
    *,
    skip_chunks: Sequence[int] | set[int] = (),
    progress: bool | ProgressCallback = False,
) -> Iterator[PooledChunk]:
    """Run the model over ``token_ids`` and yield pooled outputs chunk by chunk.

    Parameters
    ----------
    parts : ModelParts
        The model, its blocks and what its forward pass needs; the model is put in eval mode
        for the pass (and restored after). ``parts.final_norm``, when set, is applied to the
        last block's output (``layer_{len(blocks)-1}``) before pooling.
    token_ids : sequence of sequence of int
        n unpadded token-id lists (each non-empty).
    plan : PassPlan
        The layers (canonical names, see :func:`resolve_layers`), pooling, batching and chunk
        size of the pass.
    skip_chunks : collection of int
        Chunk numbers not to compute (already on disk when resuming).
    progress : bool or callable
        True for a rich progress bar, or a callback receiving the number of samples done.

    Yields
    ------
    PooledChunk
        In chunk order, skipping ``skip_chunks``.
    """
    model, blocks, final_norm = parts.model, parts.blocks, parts.final_norm
    layers, batch_size, max_tokens = list(plan.layers), plan.batch_size, plan.max_tokens
    pad_id, padding_side = parts.pad_id, parts.padding_side
    pooling = check_pooling(plan.pooling)
    if not layers:
        raise InputError("layers is empty: nothing to extract")
    lengths = _check_token_ids(token_ids)
    targets = layer_modules(layers, blocks, parts.embeddings)
    last_name = layers[-1]
    normed = layer_name(len(blocks) - 1) if final_norm is not None else None
    forward_inputs = parts.forward_inputs or default_forward_inputs(model)
    device = input_device(model)
    chunks = plan_chunks(lengths, plan.chunk_size, token_level=pooling == "tokens")
    skip = set(skip_chunks)
    todo = int(sum(len(c) for k, c in enumerate(chunks) if k not in skip))

    # the batch's mask on each device a block ran on (a device map spreads blocks over several)
    state: dict[str, Any] = {"masks": {}, "out": {}}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            hidden = output if torch.is_tensor(output) else output[0]
            if name == normed:
                hidden = _apply_norm(final_norm, hidden)
            masks = state["masks"]
            mask = masks.get(hidden.device)
            if mask is None:
                mask = masks[hidden.device] = masks[device].to(hidden.device)
            state["out"][name] = pool_hidden(hidden, mask, pooling)
            if name == last_name:
                raise _StopForward

        return hook

    was_training = model.training
    handles = [module.register_forward_hook(make_hook(name)) for name, module in targets]
    callback_cm = (
        contextlib.nullcontext(progress)
        if callable(progress)
        else progress_bar(todo, enabled=bool(progress), description="extracting")
    )
    try:
        model.eval()
        pending: _HostCopy | None = None  # the previous chunk, copied while this one runs
        with callback_cm as advance:
            for k, chunk in enumerate(chunks):
                if k in skip:
                    continue
                collected: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
                for batch in plan_batches(
                    chunk, lengths, batch_size=batch_size, max_tokens=max_tokens
                ):
                    ids, mask = pad_batch(
                        [token_ids[i] for i in batch], pad_id=pad_id, padding_side=padding_side
                    )
                    ids, mask = ids.to(device), mask.to(device)
                    state["masks"], state["out"] = {device: mask.bool()}, {}
                    # Inference mode per batch, not around the generator: the consumer's code
                    # between two yields must not run in it.
                    try:
                        with torch.inference_mode():
                            try:
                                model(**forward_inputs(ids, mask))
                            except _StopForward:
                                pass
                            missing = [n for n in layers if n not in state["out"]]
                            if missing:
                                raise InputError(
                                    f"the forward pass never ran the module(s) for {missing}; "
                                    "are the blocks part of this model?"
                                )
                            for n in layers:  # kept on the device until the chunk is complete
                                collected[n].append(state["out"][n])
                    except (Exception, KeyboardInterrupt):
                        # the previous chunk is finished: hand it over before failing, so a
                        # resumed run does not compute it again
                        if pending is not None:
                            yield pending.wait()
                            pending = None
                        raise
                    state["masks"], state["out"] = {}, {}
                    if pending is not None:  # this chunk's first batch is under way
                        yield pending.wait()
                        pending = None
                    advance(len(batch))
                with torch.inference_mode():
                    pooled = {n: torch.cat(p) if len(p) > 1 else p[0] for n, p in collected.items()}
                    host, events = _to_host(pooled, layers)
                del collected, pooled
                pending = _HostCopy(
                    PooledChunk(index=k, sample_indices=chunk, lengths=lengths[chunk], layers=host),
                    events,
                )
            if pending is not None:
                yield pending.wait()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


@dataclass
class Pooled:
    """All outputs of :func:`extract_pooled`, in original sample order.

    Attributes
    ----------
    layers : dict[str, torch.Tensor]
        Per layer (n, d) float32; for ``tokens`` pooling (total_tokens, d).
    offsets : torch.Tensor or None
        For ``tokens`` pooling (n + 1,) int64: sample ``i`` is rows ``offsets[i]:offsets[i+1]``.
    """

    layers: dict[str, torch.Tensor]
    offsets: torch.Tensor | None = None


def extract_pooled(
    parts: ModelParts,
    token_ids: Sequence[Sequence[int]],
    *,
    layers: Sequence[int | str] | int | str | None = None,
    pooling: Pooling = "mean",
    batch_size: int = 32,
    max_tokens: int | None = None,
    progress: bool | ProgressCallback = False,
) -> Pooled:
    """Pooled layer outputs of all samples, in memory, in original sample order.

    The in-memory counterpart of :func:`iter_pooled_chunks` (``layers`` may be any selection
    accepted by :func:`resolve_layers`; ``batch_size`` and ``max_tokens`` cap each batch's
    samples and padded tokens). Memory grows with n: use
    :func:`repdrift.extraction.to_run.extract_to_run` to stream to disk instead.
    """
    names = resolve_layers(
        layers, len(parts.blocks), has_embeddings=parts.embeddings is not None
    )
    lengths = _check_token_ids(token_ids)
    n = len(lengths)
    token_level = pooling == "tokens"
    offsets = token_offsets(lengths) if token_level else None
    result: dict[str, torch.Tensor] = {}
    # One chunk holding everything: batches are then planned over the full sorted order.
    size = int(lengths.sum()) if token_level else n
    plan = PassPlan(tuple(names), pooling, batch_size, max_tokens, chunk_size=size)
    for chunk in iter_pooled_chunks(parts, token_ids, plan, progress=progress):
        for name, values in chunk.layers.items():
            if name not in result:
                rows = int(offsets[-1]) if token_level else n
                result[name] = torch.empty((rows, values.shape[1]), dtype=torch.float32)
            if token_level:
                pos = 0
                for idx, length in zip(chunk.sample_indices, chunk.lengths, strict=True):
                    result[name][offsets[idx] : offsets[idx] + length] = values[pos : pos + length]
                    pos += int(length)
            else:
                result[name][torch.from_numpy(chunk.sample_indices)] = values
    return Pooled(result, torch.from_numpy(offsets) if token_level else None)
