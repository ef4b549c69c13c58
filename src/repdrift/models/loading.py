"""Loading internals behind :func:`repdrift.models.load.load_model`: sources, hashes, checkpoints.

Functions here return a model plus a JSON-safe ``info`` dict that becomes part of
``LoadedModel.source``. See :mod:`repdrift.models` for the loading rules; the tokenizer and the
forward configuration live in :mod:`repdrift.models.loaded`.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from repdrift.errors import InputError, IntegrityError
from repdrift.models.blocks import find_blocks_named
from repdrift.models.sources import (
    Source,
    check_hub,
    hash_weights,
    normalize_source,
    source_in_folder,
)

logger = logging.getLogger(__name__)


# Module names whose weights must come from the checkpoint: a random embedding is as wrong as a
# random block.
_EMBEDDING_NAMES = (
    "embeddings",
    "embed_tokens",
    "word_embeddings",
    "wte",
    "wpe",
    "embed_positions",
)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report: unexpected head keys are expected here and checked."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def is_decoder_config(config: Any) -> bool:
    """Causal (decoder-only) or not, from the config.

    ``config.is_decoder`` is false for Llama/GPT-2 configs, so the model type decides: a type
    with a causal-LM class but no masked-LM class is a decoder (BERT has both).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return False
    if getattr(config, "is_decoder", False):
        return True
    model_type = getattr(config, "model_type", "")
    return (
        model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def _check_missing(
    model: torch.nn.Module, missing: Any, where: Source, expected_new: tuple[str, ...] = ()
) -> None:
    """Missing block/embedding weights are an error; other missing weights (pooler) a warning.

    ``expected_new`` names modules that are replaced after loading (a LoRA adapter's
    ``modules_to_save`` head), whose absence from the base checkpoint is normal.
    """
    missing = sorted(k for k in (missing or []) if not set(k.split(".")).intersection(expected_new))
    if not missing:
        return
    blocks_name, _ = find_blocks_named(model)
    critical_prefixes = [blocks_name + "."]
    for name, _module in model.named_modules():
        if name and name.rsplit(".", 1)[-1] in _EMBEDDING_NAMES:
            critical_prefixes.append(name + ".")
    critical = [k for k in missing if k.startswith(tuple(critical_prefixes))]
    if critical:
        raise IntegrityError(
            f"checkpoint {where} lacks {len(critical)} block/embedding weight(s) of "
            f"{type(model).__name__}, e.g. {', '.join(critical[:3])}: they would be random"
        )
    logger.warning(
        "%s: %d weight(s) outside the blocks are newly initialized (they do not affect block "
        "outputs): %s",
        where,
        len(missing),
        ", ".join(missing[:5]),
    )


def _from_pretrained(auto_class: Any, src: Source, **kwargs: Any) -> tuple[torch.nn.Module, dict]:
    check_hub(src, "model")  # an unreachable hub fails in seconds, not after a minute of retries
    try:
        with _quiet_transformers(), torch.random.fork_rng(devices=[]):
            # untrained heads are initialized from the global RNG: make that deterministic and
            # leave the caller's RNG state untouched
            torch.manual_seed(0)
            model, loading_info = auto_class.from_pretrained(
                str(src), output_loading_info=True, **kwargs
            )
    except OSError as exc:
        raise InputError(f"cannot load a model from {src}: {exc}") from exc
    return model, loading_info


def load_backbone(
    src: Source, dtype: torch.dtype, trust_remote_code: bool, **load_kwargs: Any
) -> tuple[Any, dict]:
    """The backbone (``AutoModel``) of a base or fully fine-tuned checkpoint.

    ``load_kwargs`` go to ``from_pretrained`` (``device_map``, ``max_memory``,
    ``offload_folder``, ``attn_implementation``).
    """
    from transformers import AutoConfig, AutoModel

    if isinstance(src, Path) and not (src / "config.json").is_file():
        raise IntegrityError(f"model folder {src} has no config.json")
    model, loading_info = _from_pretrained(
        AutoModel, src, dtype=dtype, trust_remote_code=trust_remote_code, **load_kwargs
    )
    _check_missing(model, loading_info.get("missing_keys"), src)
    checkpoint_config = AutoConfig.from_pretrained(str(src), trust_remote_code=trust_remote_code)
    sha, files = hash_weights(src)
    info = {
        "path": str(src),
        "base": None,
        "adapter": None,
        "architecture": type(model).__name__,
        "checkpoint_architectures": list(getattr(checkpoint_config, "architectures", None) or []),
        "weights_sha256": sha,
        "weight_files": files,
    }
    return model, info


def check_same_architecture(src: Source, base: Source | None, trust_remote_code: bool) -> None:
    """A full fine-tune must have its base's shape (checked when both are local)."""
    if not (isinstance(src, Path) and isinstance(base, Path)):
        return
    if not (base / "config.json").is_file():
        raise IntegrityError(f"base model folder {base} has no config.json")
    from transformers import AutoConfig

    a = AutoConfig.from_pretrained(str(src), trust_remote_code=trust_remote_code)
    b = AutoConfig.from_pretrained(str(base), trust_remote_code=trust_remote_code)
    for attr in ("model_type", "num_hidden_layers", "hidden_size"):
        if getattr(a, attr, None) != getattr(b, attr, None):
            raise InputError(
                f"{src} is not a fine-tune of {base}: {attr} is {getattr(a, attr, None)!r} "
                f"vs {getattr(b, attr, None)!r}"
            )


def _resolve_lora_base(adapter: Source, base: Source | None, from_config: str | None) -> Source:
    """``base`` when given, else the adapter config's base model by the one path-or-hub rule,
    a relative path resolved against the adapter folder (:func:`source_in_folder`)."""
    if base is not None:
        return base
    if not from_config:
        raise InputError(
            f"base model for adapter {adapter} not found: base= was not given and the adapter "
            "config has no base_model_name_or_path; pass base=<folder of the base model> "
            "(CLI: --base)"
        )
    what = "the adapter config's base_model_name_or_path"
    try:
        if isinstance(adapter, Path):  # relative paths are relative to the adapter folder
            return source_in_folder(from_config, adapter, what)
        return normalize_source(from_config, what)
    except InputError as exc:
        raise InputError(
            f"base model for adapter {adapter} not found: base= was not given and {exc}; pass "
            "base=<folder of the base model> (CLI: --base)"
        ) from exc


def _task_auto_class(task_type: str | None, keys: list[str], base: Source, trc: bool) -> Any:
    """The Auto class whose module paths match the adapter's keys."""
    import transformers
    from transformers import AutoConfig

    by_task = {
        "SEQ_CLS": "AutoModelForSequenceClassification",
        "QUESTION_ANS": "AutoModelForQuestionAnswering",
        "CAUSAL_LM": "AutoModelForCausalLM",
        "TOKEN_CLS": "AutoModelForTokenClassification",
        "FEATURE_EXTRACTION": "AutoModel",
        "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    }
    if task_type in by_task:
        return getattr(transformers, by_task[task_type])
    # no task type: a key under the backbone prefix ("bert.", "model.") means a task model
    config = AutoConfig.from_pretrained(str(base), trust_remote_code=trc)
    backbone_class = transformers.AutoModel._model_mapping[type(config)]
    prefix = f"base_model.model.{backbone_class.base_model_prefix}."
    if not any(k.startswith(prefix) for k in keys):
        return transformers.AutoModel
    # a saved head (modules_to_save) names the task; without one any task class with the same
    # backbone prefix fits, since the blocks do not depend on the head
    heads = {k.split(".")[-2] for k in keys if "lora_" not in k and "." in k}
    if "qa_outputs" in heads:
        return transformers.AutoModelForQuestionAnswering
    if "lm_head" in heads or is_decoder_config(config):
        return transformers.AutoModelForCausalLM
    return transformers.AutoModelForSequenceClassification


def _num_labels(weights: dict[str, torch.Tensor]) -> int | None:
    """Output size of a saved classification head (``modules_to_save``), if there is one."""
    for suffix in ("classifier.out_proj.weight", "classifier.weight", "score.weight"):
        for key, tensor in weights.items():
            if key.endswith(suffix) and "lora_" not in key and tensor.ndim == 2:
                return int(tensor.shape[0])
    return None


def _verify_adapter(
    model: Any, weights: dict[str, torch.Tensor], adapter: Source, cls: str
) -> None:
    """Every tensor in the adapter file must be in the model, with the same values."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    absent = [k for k in weights if k not in state]
    if absent:
        raise IntegrityError(
            f"adapter {adapter}: {len(absent)} of {len(weights)} saved tensors did not load into "
            f"a {cls} (module paths differ, e.g. {', '.join(absent[:3])}); the adapter's "
            "task_type does not match the model it was trained on"
        )
    for key, saved in weights.items():
        loaded = state[key]
        if not torch.equal(loaded.detach().cpu(), saved.to(loaded.dtype).cpu()):
            raise IntegrityError(f"adapter {adapter}: tensor {key} differs after loading")


def _refuse_offloaded(model: Any, adapter: Source) -> None:
    """peft cannot inject LoRA layers into weights accelerate offloaded to the CPU or to disk
    (they are meta tensors until each forward): refuse before peft fails obscurely."""
    placed = getattr(model, "hf_device_map", None) or {}
    devices = set(placed.values())
    accelerators = {d for d in devices if d not in ("cpu", "disk")}
    offloaded = sorted(k or "(the whole model)" for k, d in placed.items() if d == "disk" or (
        d == "cpu" and accelerators))  # fmt: skip
    if offloaded:
        raise InputError(
            f"adapter {adapter}: LoRA with a device map needs every module on an accelerator, "
            f"but {', '.join(offloaded[:3])} would be offloaded to the CPU or disk (peft cannot "
            "inject into offloaded weights); give max_memory room for the whole model, or "
            "merge the adapter into a full checkpoint and extract that"
        )


def load_lora(
    adapter: Source,
    base: Source | None,
    dtype: torch.dtype,
    trust_remote_code: bool,
    **load_kwargs: Any,
) -> tuple[Any, dict]:
    """The base's task model with the adapter attached (not merged).

    ``load_kwargs`` go to the base's ``from_pretrained``, as in :func:`load_backbone`.
    """
    from peft import PeftConfig, PeftModel
    from peft.utils import load_peft_weights

    check_hub(adapter, "adapter")
    try:
        config = PeftConfig.from_pretrained(str(adapter))
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read the adapter config of {adapter}: {exc}") from exc
    base_src = _resolve_lora_base(adapter, base, config.base_model_name_or_path)
    if isinstance(base_src, Path) and not (base_src / "config.json").is_file():
        raise IntegrityError(f"base model folder {base_src} has no config.json")
    try:
        weights = load_peft_weights(str(adapter), device="cpu")
    except (OSError, ValueError) as exc:
        raise IntegrityError(f"cannot read the adapter weights of {adapter}: {exc}") from exc
    raw_task = config.task_type
    task_type = str(getattr(raw_task, "value", raw_task)) if raw_task else None
    auto_class = _task_auto_class(task_type, list(weights), base_src, trust_remote_code)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": trust_remote_code, **load_kwargs}
    if task_type in ("SEQ_CLS", "TOKEN_CLS", None):
        num_labels = _num_labels(weights)
        if num_labels is not None:
            kwargs["num_labels"] = num_labels
    base_model, loading_info = _from_pretrained(auto_class, base_src, **kwargs)
    # the base checkpoint has no trained head: the adapter's modules_to_save replaces it
    saved_modules = tuple(getattr(config, "modules_to_save", None) or ())
    _check_missing(base_model, loading_info.get("missing_keys"), base_src, saved_modules)
    _refuse_offloaded(base_model, adapter)
    with _quiet_transformers(), warnings.catch_warnings():
        # peft calls a transformers API deprecated in v5; not actionable for users
        warnings.filterwarnings("ignore", category=FutureWarning)
        # unloaded keys are reported by _verify_adapter with the cause and the fix
        warnings.filterwarnings("ignore", message="Found missing adapter keys")
        try:
            model = PeftModel.from_pretrained(base_model, str(adapter), is_trainable=False)
        except (RuntimeError, ValueError, KeyError) as exc:
            # size mismatches, unknown target modules: the adapter belongs to another base
            raise IntegrityError(
                f"adapter {adapter} does not fit base {base_src} ({type(base_model).__name__}): "
                f"{exc}"
            ) from exc
    # peft reads the base's config again by this path, which may be relative to the adapter
    for peft_config in model.peft_config.values():
        peft_config.base_model_name_or_path = str(base_src)
    _verify_adapter(model, weights, adapter, type(base_model).__name__)

    sha, files = hash_weights(adapter, adapter=True)
    base_sha, _ = hash_weights(base_src)
    target = config.target_modules if hasattr(config, "target_modules") else None
    info = {
        "path": str(adapter),
        "base": str(base_src),
        "adapter": str(adapter),
        "architecture": f"{type(model).__name__}({type(base_model).__name__})",
        "checkpoint_architectures": list(getattr(base_model.config, "architectures", None) or []),
        "weights_sha256": sha,
        "weight_files": files,
        "base_weights_sha256": base_sha,
        "peft_type": str(getattr(config.peft_type, "value", config.peft_type)),
        "task_type": task_type,
        "r": getattr(config, "r", None),
        "lora_alpha": getattr(config, "lora_alpha", None),
        "target_modules": sorted(target) if isinstance(target, (set, list, tuple)) else target,
        "modules_to_save": list(getattr(config, "modules_to_save", None) or []),
    }
    return model, info
