"""A loaded model ready for hooked forwards (LoadedModel), and the parts beyond its weights:
forward inputs (position and segment ids) and the embedding output.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from repdrift.common.naming import layer_names
from repdrift.errors import InputError
from repdrift.models.inputs import derived_inputs, segment_sep_id, takes_position_ids

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


# Modules that output the embedding sum in architectures without an "embeddings" module
# (GPT-2: wte + wpe, then dropout, then block 0).
_EMBEDDING_OUTPUT_NAMES = (
    "drop",
    "dropout",
    "emb_drop",
    "embed_dropout",
    "word_embeddings_layernorm",
)


# --------------------------------------------------------------------------------------------
# Tokenizer and forward configuration
# --------------------------------------------------------------------------------------------


def configure_forward(loaded: LoadedModel) -> None:
    """Decide which extra inputs make padded forwards match unpadded ones
    (:mod:`repdrift.models.inputs`)."""
    inner = inner_model(loaded.model)
    loaded.token_type_sep_id = segment_sep_id(inner, loaded.tokenizer)
    loaded.pass_position_ids = takes_position_ids(inner)


def find_embeddings(loaded: LoadedModel, blocks_name: str) -> torch.nn.Module | None:
    """The module whose output equals ``hidden_states[0]``, verified with a tiny forward."""
    inner = inner_model(loaded.model)
    candidates: list[torch.nn.Module] = []
    named = [
        (name, module)
        for name, module in loaded.model.named_modules()
        if name.rsplit(".", 1)[-1] == "embeddings" and not name.startswith(blocks_name)
    ]
    candidates += [module for _, module in sorted(named, key=lambda item: len(item[0]))]
    with contextlib.suppress(NotImplementedError, AttributeError):
        candidates.append(inner.get_input_embeddings())
    parent_name = blocks_name.rsplit(".", 1)[0] if "." in blocks_name else ""
    parent = loaded.model.get_submodule(parent_name)
    for child_name in _EMBEDDING_OUTPUT_NAMES:
        child = getattr(parent, child_name, None)
        if isinstance(child, torch.nn.Module):
            candidates.append(child)
    if not candidates:
        return None

    outputs: dict[int, torch.Tensor] = {}

    def make_hook(index: int) -> Any:
        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            outputs.setdefault(index, output[0] if isinstance(output, tuple) else output)

        return hook

    handles = [c.register_forward_hook(make_hook(i)) for i, c in enumerate(candidates)]
    try:
        ids = loaded.tokenizer("hello world", return_tensors="pt")["input_ids"]
        kwargs = loaded.forward_inputs(ids, torch.ones_like(ids))
        with torch.inference_mode():
            result = loaded.model(**kwargs, output_hidden_states=True)
        hidden = getattr(result, "hidden_states", None)
    except Exception as exc:  # an exotic forward: fall back to the named module unverified
        logger.debug("embedding probe failed (%s); using the first candidate unverified", exc)
        return candidates[0] if named else None
    finally:
        for handle in handles:
            handle.remove()
    if not hidden:
        return candidates[0] if named else None
    reference = hidden[0]
    for index, module in enumerate(candidates):
        out = outputs.get(index)
        if (
            isinstance(out, torch.Tensor)
            and out.shape == reference.shape
            and torch.equal(out, reference)
        ):
            return module
    logger.info(
        "no module outputs the embedding hidden state of %s; embeddings=None", loaded.source
    )
    return None


Kind = Literal["base", "full", "lora"]


@dataclass
class LoadedModel:
    """A model ready for hooked, gradient-free forwards.

    Attributes
    ----------
    model
        The backbone (``base``/``full``) or, for ``lora``, the transformers task model with the
        LoRA layers injected (unmerged); in eval mode with ``requires_grad`` off. For LoRA this
        is the model *inside* the peft wrapper because some peft wrappers drop inputs
        (``PeftModelForQuestionAnswering`` does not pass ``token_type_ids`` or
        ``position_ids`` on), while the injected layers behave the same either way.
    tokenizer
        Has a pad token: one without gets ``pad = eos`` (``source["pad_token_is_eos"]``), else
        ``unk`` (:func:`repdrift.models.tokenizer.load_tokenizer`, the loader training uses).
    blocks
        Transformer blocks in order, inside ``model``; block ``i`` is ``f"layer_{i}"``.
    embeddings
        Module whose output is the embedding output (the input of block 0), or None.
    final_norm
        The norm the model applies after its last block (Llama ``norm``, GPT-2 ``ln_f``; its
        output is transformers' ``hidden_states[-1]``), or None when it has none (BERT-style
        encoders) (:func:`repdrift.models.blocks.find_final_norm`).
    source
        JSON-safe provenance (paths, hashes, architecture, dtype, device, tokenizer padding side).
    peft_model
        The peft wrapper around ``model`` (``lora`` only), for :meth:`adapter_disabled`.
    """

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    kind: Kind
    blocks: list[torch.nn.Module]
    embeddings: torch.nn.Module | None
    is_decoder: bool
    source: dict[str, Any]
    device: torch.device
    # sep token id when the model takes segment ids (BERT pairs), else None
    token_type_sep_id: int | None = field(default=None, repr=False)
    # pass position ids computed from the attention mask (correct under left padding)
    pass_position_ids: bool = field(default=False, repr=False)
    peft_model: torch.nn.Module | None = field(default=None, repr=False)
    final_norm: torch.nn.Module | None = field(default=None, repr=False)

    @property
    def layer_names(self) -> list[str]:
        """Canonical names of the layers this model has, embeddings first when available."""
        return layer_names(len(self.blocks), embeddings=self.embeddings is not None)

    @contextlib.contextmanager
    def adapter_disabled(self) -> Iterator[None]:
        """Run the base model inside the block: peft's ``disable_adapter()`` (LoRA only)."""
        if self.kind != "lora" or self.peft_model is None:
            raise InputError(f"adapter_disabled() needs a LoRA model, this one is {self.kind!r}")
        # peft switches the injected layers (and modules_to_save) off, so calling self.model
        # inside this block runs exactly the base weights
        with self.peft_model.disable_adapter():
            yield

    def forward_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """Keyword arguments for a plain forward ``self.model(**kw)``.

        Parameters
        ----------
        input_ids, attention_mask
            (batch, seq) integer tensors, padded on either side.

        Returns
        -------
        dict
            ``input_ids`` and ``attention_mask`` on the model's device, plus what makes a padded
            row give the same hidden states as the unpadded sequence: ``position_ids`` counted
            over real tokens only (left padding would otherwise shift absolute and rotary
            positions), ``token_type_ids`` for BERT-style pairs (segment 1 starts after the
            first ``[SEP]``, as the tokenizer assigns it; a literal ``[SEP]`` inside the first
            text would shift it), and ``use_cache=False`` for decoders. The ids follow
            :mod:`repdrift.models.inputs`, the rule training uses too.
        """
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise InputError(
                "input_ids and attention_mask must be (batch, seq) tensors of one shape, got "
                f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
            )
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        kwargs.update(
            derived_inputs(
                input_ids,
                attention_mask,
                sep_id=self.token_type_sep_id,
                positions=self.pass_position_ids,
            )
        )
        if self.is_decoder:
            kwargs["use_cache"] = False
        return kwargs


def inner_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
