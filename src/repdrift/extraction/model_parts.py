"""What one forward pass needs of a model, and how the pass is cut, as two small objects.

:class:`ModelParts` is a torch model as the extraction core sees it: the model, its blocks
(block ``i`` is the layer called ``layer_i``), the embedding module and final norm, how padded
ids become the forward's keyword arguments, the pad id and padding side.
:meth:`ModelParts.of` takes them from a :class:`~repdrift.models.loaded.LoadedModel`; any
other torch model builds one by hand. :class:`PassPlan` is which layers a pass pools, how,
and in which batches and chunks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from repdrift.common.devices import dispatch_device
from repdrift.common.naming import Pooling
from repdrift.errors import InputError
from repdrift.models.inputs import derived_inputs, takes_position_ids

if TYPE_CHECKING:
    from repdrift.models.loaded import LoadedModel

ForwardInputs = Callable[[torch.Tensor, torch.Tensor], dict[str, Any]]

PADDING_SIDES = ("right", "left")


@dataclass(frozen=True)
class ModelParts:
    """A torch model as one forward pass sees it.

    Attributes
    ----------
    model : nn.Module
        Any torch model whose forward runs ``blocks`` in order.
    blocks : sequence of nn.Module
        Transformer blocks; the output of ``blocks[i]`` is the layer ``layer_i``. A block's
        output may be a tensor or a tuple whose element 0 is the hidden states (b, t, d).
    pad_id : int
        Token id used for padding (masked out, never pooled).
    padding_side : {"right", "left"}
    embeddings : nn.Module or None
        Module whose output is the layer ``embeddings``.
    final_norm : nn.Module or None
        Applied to the last block's output before pooling, where the norm's weights are (a
        device map may put it on another device): the model's final norm, so that the last
        layer equals transformers' ``hidden_states[-1]``. None: the raw block output.
    forward_inputs : callable or None
        ``(input_ids, attention_mask) -> kwargs`` for ``model(**kwargs)``, both (b, t) int64
        on the model's device; default :func:`default_forward_inputs`.
    """

    model: nn.Module
    blocks: Sequence[nn.Module]
    pad_id: int = 0
    padding_side: str = "right"
    embeddings: nn.Module | None = None
    final_norm: nn.Module | None = None
    forward_inputs: ForwardInputs | None = None

    def __post_init__(self) -> None:
        if self.padding_side not in PADDING_SIDES:
            raise InputError(f"padding_side={self.padding_side!r} is not 'right' or 'left'")

    @classmethod
    def of(cls, loaded: LoadedModel) -> ModelParts:
        """The parts of a loaded model (its tokenizer's pad id and padding side)."""
        tok = loaded.tokenizer
        return cls(
            loaded.model, loaded.blocks,
            pad_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
            padding_side=getattr(tok, "padding_side", "right") or "right",
            embeddings=loaded.embeddings, final_norm=loaded.final_norm,
            forward_inputs=loaded.forward_inputs,
        )  # fmt: skip


@dataclass(frozen=True)
class PassPlan:
    """Which layers one pass pools, how, and in which batches and chunks.

    Attributes
    ----------
    layers : tuple of str
        Canonical names (see :func:`repdrift.extraction.batching.resolve_layers`), in order.
    pooling : {"mean", "first", "last", "max", "tokens"}
    batch_size, max_tokens : int, int or None
        At most ``batch_size`` samples and ``max_tokens`` padded tokens per batch.
    chunk_size : int
        Maximum rows per chunk (samples, or tokens for ``tokens`` pooling).
    """

    layers: tuple[str, ...]
    pooling: Pooling = "mean"
    batch_size: int = 32
    max_tokens: int | None = None
    chunk_size: int = 256


def default_forward_inputs(model: nn.Module) -> ForwardInputs:
    """Keyword arguments for ``model(**kw)`` from padded ids and mask.

    Adds ``position_ids`` counted over real tokens (so left padding does not shift the
    positions of absolute-position models such as GPT-2), by the rule training uses
    (:mod:`repdrift.models.inputs`), and ``use_cache=False`` (no KV cache is needed for one
    forward pass) when the model's forward accepts them.
    """
    try:
        params = inspect.signature(model.forward).parameters
        positions = takes_position_ids(model)
    except (TypeError, ValueError):  # pragma: no cover - exotic wrappers
        params, positions = {}, False
    wants_cache = "use_cache" in params

    def forward_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        kw: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        kw.update(derived_inputs(input_ids, attention_mask, sep_id=None, positions=positions))
        if wants_cache:
            kw["use_cache"] = False
        return kw

    return forward_inputs


def input_device(model: nn.Module) -> torch.device:
    """The device ``model`` takes its inputs on.

    A model placed by a device map (``hf_device_map``) takes them on accelerate's main device;
    any other model on the device of its first parameter that is not a meta (offloaded) tensor.
    """
    placed = getattr(model, "hf_device_map", None)
    if placed:
        return dispatch_device(placed)
    for p in model.parameters():
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


__all__ = ["ForwardInputs", "ModelParts", "PassPlan", "default_forward_inputs", "input_device"]
