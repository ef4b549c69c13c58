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

Models larger than one device (``device_map``, ``max_memory``) are placed by accelerate through
``from_pretrained``: each block runs on its own device (weights offloaded to the CPU or to disk
are brought to the execution device for its forward), and the model is not moved afterwards.
Attention is SDPA where the architecture supports it (else the model's default, logged).

Nothing here downloads by itself: a hub id is only ever passed to ``from_pretrained``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from repdrift.common.devices import (
    dispatch_device,
    resolve_device,
    resolve_dtype,
)
from repdrift.errors import InputError
from repdrift.models import loading
from repdrift.models.blocks import find_blocks_named, find_final_norm
from repdrift.models.loaded import (
    LoadedModel,
    configure_forward,
    find_embeddings,
    inner_model,
)
from repdrift.models.placement import Placement
from repdrift.models.sources import Source, hash_weights, normalize_source
from repdrift.models.tokenizer import load_tokenizer
from repdrift.models.training_record import TRAINING_RECORD, read_training_record, recorded_base

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Placement: one device, or a device map
# --------------------------------------------------------------------------------------------


def _devices(model: torch.nn.Module) -> list[str]:
    """The devices the parameters of a model that is not dispatched are on (meta excluded)."""
    return list(dict.fromkeys(str(p.device) for p in model.parameters() if p.device.type != "meta"))


def _check_map_names(model: torch.nn.Module, device_map: Any, src: Any) -> None:
    """An explicit map names modules of the model (transformers ignores unknown names when
    every module goes to one device)."""
    if not isinstance(device_map, dict):
        return
    names = [name for name, _ in model.named_modules()]
    unknown = [key for key in device_map if key not in set(names)]
    if unknown:
        some = ", ".join(n for n in names[1:4] if n)
        raise InputError(
            f"cannot place {src} with device_map={device_map!r}: no module named "
            f"{', '.join(unknown[:3])} (module names are those of the model repdrift loads, "
            f"e.g. {some})"
        )


def _with_sdpa(load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``load(..., attn_implementation="sdpa")``; without it when the architecture has no SDPA
    attention (logged), so such models keep their default attention."""
    try:
        return load(*args, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError) as exc:
        text = str(exc)
        if "scaled_dot_product_attention" not in text and "sdpa" not in text:
            raise
        logger.info("no SDPA attention for this model (%s); using its default", text[:120])
        return load(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_model(
    source: str | Path,
    *,
    base: str | Path | None = None,
    kind: Literal["auto", "base", "full", "lora"] = "auto",
    placement: Placement | None = None,
    **settings: Any,
) -> LoadedModel:
    """Load a base model, a full fine-tune or a LoRA adapter for extraction.

    Parameters
    ----------
    source
        Local folder or hub id of the model or the adapter.
    base
        The base model: for ``lora`` overrides the adapter config's ``base_model_name_or_path``;
        for ``full`` it is recorded (and checked to have the same architecture when local) and
        overrides the base named by the folder's training record.
    kind
        ``"auto"``: a folder with ``adapter_config.json`` is ``lora``; otherwise ``full`` when
        ``base`` is given or the folder holds a training record (``repdrift_training.json``,
        written by :func:`repdrift.train`; its ``base_model`` is the base, a relative path read
        relative to the folder), else ``base``. The log says which, and where the base came
        from.
    placement
        Device, dtype, device map and remote code (:class:`~repdrift.models.placement.Placement`;
        an :class:`~repdrift.extraction.options.ExtractionOptions` is one).
    **settings
        Fields of :class:`~repdrift.models.placement.Placement` given one by one (``device``,
        ``dtype``, ``device_map``, ``max_memory``, ``offload_folder``, ``trust_remote_code``):
        they replace those of ``placement``. Names in an explicit device map are those of the
        model loaded here: the backbone, e.g. ``layers.0``, for base and full models, the task
        model, e.g. ``model.layers.0``, for LoRA. LoRA adapters need every module on an
        accelerator (no CPU or disk offload): peft cannot inject into offloaded weights.
    """
    where = Placement.build(placement, **settings)
    dtype, trust_remote_code = where.dtype, where.trust_remote_code
    placement_kw = where.device_map_keywords()
    if placement_kw:
        # the device map's accelerators take the inputs; dtype auto is decided on the first one
        torch_device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    else:
        torch_device = resolve_device(where.device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    temporary_folder = None
    if placement_kw and placement_kw["offload_folder"] is None:
        temporary_folder = tempfile.mkdtemp(prefix="repdrift-offload-")
        placement_kw["offload_folder"] = temporary_folder
    if kind not in ("auto", "base", "full", "lora"):
        raise InputError(f"unknown kind {kind!r}: expected auto, base, full or lora")
    src = normalize_source(source, "source")
    base_src = normalize_source(base, "base") if base is not None else None
    training = read_training_record(src) if isinstance(src, Path) else None
    adapter = isinstance(src, Path) and (src / "adapter_config.json").is_file()
    base_from = "--base" if base_src is not None else "the adapter config"
    if training is not None and not adapter and kind in ("auto", "full"):
        base_from = _base_from_record(src, training, base_src)
        if base_src is None:  # a fine-tune by its own record, not a base model
            base_src = recorded_base(src, training)
    if kind == "auto":
        kind = "lora" if adapter else "full" if base_src is not None else "base"
    if kind == "full" and base_src is None:
        raise InputError(f"kind 'full' needs base= (the model {src} was fine-tuned from)")

    peft_model = None
    try:
        if kind == "lora":
            peft_model, info = _with_sdpa(
                loading.load_lora, src, base_src, torch_dtype, trust_remote_code, **placement_kw
            )
            model = inner_model(peft_model)
            tokenizer_from = [src, normalize_source(info["base"], "base")]
        else:
            model, info = _with_sdpa(
                loading.load_backbone, src, torch_dtype, trust_remote_code, **placement_kw
            )
            if kind == "full":
                loading.check_same_architecture(src, base_src, trust_remote_code)
                info["base"] = str(base_src)
                # the lineage check of compare pairs this with the base run's weights_sha256
                info["base_weights_sha256"] = hash_weights(base_src)[0]
            tokenizer_from = [src] + ([base_src] if base_src is not None else [])
    except BaseException as exc:
        if temporary_folder is not None:
            shutil.rmtree(temporary_folder, ignore_errors=True)
        if placement_kw and isinstance(exc, ValueError | KeyError) and not isinstance(exc, InputError):
            raise InputError(
                f"cannot place {src} with device_map={placement_kw['device_map']!r}: {exc} (module "
                "names are those of the model repdrift loads, e.g. layers.0 for a base model)"
            ) from exc
        raise

    hf_map = getattr(model, "hf_device_map", None) if placement_kw else None
    if placement_kw:  # accelerate placed it: never moved afterwards
        _check_map_names(model, placement_kw["device_map"], src)
        torch_device = dispatch_device(hf_map or {"": next(iter(_devices(model)), "cpu")})
    else:
        model.to(torch_device)
    if temporary_folder is not None:
        weakref.finalize(model, shutil.rmtree, temporary_folder, ignore_errors=True)
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
        final_norm=find_final_norm(model, blocks_name),
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
        "device_map": {str(k): v for k, v in hf_map.items()} if hf_map else None,
        "attn_implementation": getattr(config, "_attn_implementation", None),
        "trust_remote_code": trust_remote_code,
        # how the variant was trained (seed, method, task ...) when repdrift.training wrote it
        "training": training,
    }
    what = {"base": "base model", "full": "full fine-tune", "lora": "LoRA adapter"}[kind]
    lineage = f", fine-tuned from {info.get('base')} (from {base_from})" if kind != "base" else ""
    logger.info(
        "loaded %s %s%s (%s, %d blocks) on %s",
        what, info.get("path"), lineage, info.get("architecture"), len(loaded.blocks),
        torch_device,
    )  # fmt: skip
    return loaded


def _base_from_record(src: Path, training: dict[str, Any], base: Source | None) -> str:
    """Where a fine-tune's base comes from, in words for the log: its training record, or
    ``--base`` (which overrides the record; a different base is warned about)."""
    record = src / TRAINING_RECORD
    if base is None:
        return f"its training record {record}"
    recorded = training.get("base_model")
    try:
        same = str(recorded_base(src, training)) == str(base)
    except InputError:  # the recorded base is gone: --base is all there is
        same = False
    if recorded and not same:
        logger.warning(
            "--base %s overrides the base %s named by the training record %s", base, recorded,
            record,
        )  # fmt: skip
    return "--base"
