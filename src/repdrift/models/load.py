"""Load a base model, a full fine-tune or a LoRA adapter, and name its layers canonically.

Every variant is loaded so that its transformer blocks can be hooked the same way:
``LoadedModel.blocks[i]`` is the module whose output is canonical layer ``f"layer_{i}"``, and
``LoadedModel.embeddings`` (when found) is the module whose output is ``"embeddings"``, i.e. the
hidden state that enters block 0 (``hidden_states[0]`` of a transformers forward).

How each kind is loaded, and why:

* ``base`` and ``full``: the backbone class (``AutoModel``). A checkpoint saved from a task
  model (``BertForSequenceClassification``, ``LlamaForCausalLM`` ...) loads into the backbone
  because transformers strips the task prefix (``bert.``, ``model.``); block hidden states do
  not depend on the head, so the head is dropped. The load report is checked: a backbone weight
  that the checkpoint lacks inside the blocks or the embeddings is an ``IntegrityError``
  rather than a silently random layer.
* ``lora``: the base is loaded with the task class the adapter was trained on (chosen from the
  adapter's ``task_type``, else from its key names), because peft matches adapter keys by
  module path and silently leaves unmatched LoRA weights out. After loading, every tensor in
  the adapter file is checked to be present, and equal, in the model. The adapter is never
  merged, so :meth:`LoadedModel.adapter_disabled` runs exactly the base weights.
  ``LoadedModel.model`` is the task model inside the peft wrapper (LoRA layers injected):
  peft's ``PeftModelForQuestionAnswering.forward`` drops ``token_type_ids`` and
  ``position_ids``, which would silently change BERT pair representations.

Nothing here downloads by itself: a hub id is only ever passed to ``from_pretrained``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from repdrift.common.devices import resolve_device, resolve_dtype
from repdrift.errors import InputError
from repdrift.models import loading
from repdrift.models.blocks import find_blocks_named
from repdrift.models.loaded import (
    LoadedModel,
    configure_forward,
    find_embeddings,
    inner_model,
)
from repdrift.models.sources import hash_weights, normalize_source
from repdrift.models.tokenizer import load_tokenizer
from repdrift.models.training_record import read_training_record

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# The loaded model
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_model(
    source: str | Path,
    *,
    base: str | Path | None = None,
    kind: Literal["auto", "base", "full", "lora"] = "auto",
    device: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a base model, a full fine-tune or a LoRA adapter for extraction.

    Parameters
    ----------
    source
        Local folder or hub id of the model or the adapter.
    base
        The base model: for ``lora`` overrides the adapter config's ``base_model_name_or_path``;
        for ``full`` it is recorded (and checked to have the same architecture when local).
    kind
        ``"auto"``: a folder with ``adapter_config.json`` is ``lora``; otherwise ``full`` when
        ``base`` is given, else ``base``.
    device
        ``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
    dtype
        ``"float32"``, ``"bfloat16"`` or ``"float16"``.
    trust_remote_code
        Passed to transformers; off by default.
    """
    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    if kind not in ("auto", "base", "full", "lora"):
        raise InputError(f"unknown kind {kind!r}: expected auto, base, full or lora")
    src = normalize_source(source, "source")
    base_src = normalize_source(base, "base") if base is not None else None
    if kind == "auto":
        if isinstance(src, Path) and (src / "adapter_config.json").is_file():
            kind = "lora"
        else:
            kind = "full" if base_src is not None else "base"
    if kind == "full" and base_src is None:
        raise InputError(f"kind 'full' needs base= (the model {src} was fine-tuned from)")
    training = read_training_record(src) if isinstance(src, Path) else None

    peft_model = None
    if kind == "lora":
        peft_model, info = loading.load_lora(src, base_src, torch_dtype, trust_remote_code)
        model = inner_model(peft_model)
        tokenizer_from = [src, normalize_source(info["base"], "base")]
    else:
        model, info = loading.load_backbone(src, torch_dtype, trust_remote_code)
        if kind == "full":
            loading.check_same_architecture(src, base_src, trust_remote_code)
            info["base"] = str(base_src)
            # the lineage check of compare pairs this with the base run's weights_sha256
            info["base_weights_sha256"] = hash_weights(base_src)[0]
        tokenizer_from = [src] + ([base_src] if base_src is not None else [])

    model.to(torch_device)
    model.eval()
    model.requires_grad_(False)
    config = model.config
    is_decoder = loading.is_decoder_config(config)
    tokenizer, tok_info = load_tokenizer(tokenizer_from, trust_remote_code=trust_remote_code)
    if is_decoder:
        config.use_cache = False
        if getattr(config, "pad_token_id", None) is None:
            # decoder sequence-classification heads find the last token through pad_token_id
            config.pad_token_id = tokenizer.pad_token_id

    blocks_name, block_list = find_blocks_named(model)
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        kind=kind,
        blocks=list(block_list),
        embeddings=None,
        is_decoder=is_decoder,
        source={},
        device=torch_device,
        peft_model=peft_model,
    )
    configure_forward(loaded)
    loaded.embeddings = find_embeddings(loaded, blocks_name)
    loaded.source = {
        "kind": kind,
        **info,
        **tok_info,
        "model_type": getattr(config, "model_type", None),
        "n_blocks": len(loaded.blocks),
        "hidden_size": getattr(config, "hidden_size", None),
        "is_decoder": is_decoder,
        "blocks_module": blocks_name,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "device": str(torch_device),
        "trust_remote_code": trust_remote_code,
        # how the variant was trained (seed, method, task ...) when repdrift.train wrote it
        "training": training,
    }
    logger.info(
        "loaded %s model %s (%s, %d blocks) on %s",
        kind,
        info.get("path"),
        info.get("architecture"),
        len(loaded.blocks),
        torch_device,
    )
    return loaded
