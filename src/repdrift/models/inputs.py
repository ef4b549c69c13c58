"""Segment and position ids derived from padded ids and the attention mask: one rule for
training (:func:`repdrift.training.data.collate`) and extraction
(:meth:`repdrift.models.loaded.LoadedModel.forward_inputs`), so a fine-tune sees its inputs
exactly as they are later measured.

* ``token_type_ids`` (BERT-style pairs): segment 1 starts after the first ``[SEP]``, as the
  tokenizer assigns it; padding is segment 0. A literal ``[SEP]`` inside the first text would
  shift it, exactly as it does for the tokenizer.
* ``position_ids``: counted over real tokens only, so left padding does not shift absolute or
  rotary positions (padding gets position 0 or the last real position; it is masked anyway).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def segment_sep_id(model: torch.nn.Module, tokenizer: Any) -> int | None:
    """The sep id that starts segment 1 when ``model`` takes segment ids (BERT), else None.

    ``model`` is the transformers model that is called (not a peft wrapper, whose forward may
    drop ``token_type_ids``).
    """
    params = inspect.signature(model.forward).parameters
    sep = getattr(tokenizer, "sep_token_id", None)
    config = getattr(model, "config", None)
    if "token_type_ids" in params and getattr(config, "type_vocab_size", 0) > 1 and sep is not None:
        return int(sep)
    return None


def takes_position_ids(model: torch.nn.Module) -> bool:
    """Whether to pass position ids computed from the mask to ``model``.

    True when its forward accepts ``position_ids``, unless its embeddings derive positions from
    the input ids and the pad id themselves (RoBERTa-style).
    """
    params = inspect.signature(model.forward).parameters
    self_positioned = any(
        hasattr(type(module), "create_position_ids_from_input_ids")
        or hasattr(module, "padding_idx")
        for name, module in model.named_modules()
        if name.rsplit(".", 1)[-1] == "embeddings"
    )
    return "position_ids" in params and not self_positioned


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, seq) int64 positions counted over real tokens (``mask.cumsum - 1``, from 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def token_type_ids(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, sep_id: int
) -> torch.Tensor:
    """(batch, seq) segment ids: 1 after the first ``sep_id`` of a row, 0 before it and on pads.

    Same dtype as ``input_ids``.
    """
    mask = attention_mask.long()
    is_sep = (input_ids == sep_id).long() * mask
    seps_before = is_sep.cumsum(-1) - is_sep
    return ((seps_before > 0).long() * mask).to(input_ids.dtype)


def derived_inputs(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    sep_id: int | None,
    positions: bool,
) -> dict[str, torch.Tensor]:
    """``token_type_ids`` (when ``sep_id`` is set) and ``position_ids`` (when ``positions``).

    Parameters
    ----------
    input_ids, attention_mask
        (batch, seq) integer tensors, padded on either side.
    sep_id
        From :func:`segment_sep_id`; None for models without segment ids.
    positions
        From :func:`takes_position_ids`.
    """
    out: dict[str, torch.Tensor] = {}
    if positions:
        out["position_ids"] = position_ids(attention_mask)
    if sep_id is not None:
        out["token_type_ids"] = token_type_ids(input_ids, attention_mask, sep_id)
    return out
