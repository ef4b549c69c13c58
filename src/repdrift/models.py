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

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import PreTrainedTokenizerBase

from repdrift.errors import InputError, IntegrityError

logger = logging.getLogger(__name__)

Kind = Literal["base", "full", "lora"]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

# Last path component of a ModuleList that holds the transformer blocks, across families:
# BERT/RoBERTa/ELECTRA "encoder.layer", DistilBERT "transformer.layer", Llama/Mistral/Qwen/
# Gemma/Phi "layers", GPT-2/GPT-J/Falcon/BLOOM "h", T5 "block", others "blocks".
_BLOCK_LIST_NAMES = ("layer", "layers", "h", "block", "blocks")

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)

# Hub ids look like "name" or "org/name"; anything else (absolute, ./relative, deeper) is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")

_PAD_LOGGED: set[str] = set()

# Written by repdrift.train next to the weights; load_model puts it in source["training"].
TRAINING_RECORD = "repdrift_training.json"


# --------------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------------


def layer_names(n_blocks: int, *, embeddings: bool = False) -> list[str]:
    """Canonical layer names: ``["embeddings"]`` (optional) then ``layer_0 … layer_{n-1}``."""
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
        raise InputError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    return (["embeddings"] if embeddings else []) + [f"layer_{i}" for i in range(n_blocks)]


def sha256_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """SHA-256 over the bytes of several files, read in order of file name.

    For one file this is the file's plain ``sha256sum``; for several it is the sha256 of their
    concatenation sorted by file name (``cat $(ls | sort) | sha256sum``), so the result does not
    depend on directory listing order.
    """
    files = sorted((Path(p) for p in paths), key=lambda p: (p.name, str(p)))
    if not files:
        raise InputError("sha256_files needs at least one file, got none")
    digest = hashlib.sha256()
    for path in files:
        try:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise IntegrityError(f"cannot read {path} to hash it: {exc}") from exc
    return digest.hexdigest()


def tokenizer_sha256(tokenizer: PreTrainedTokenizerBase) -> str:
    """A content hash of a tokenizer: vocabulary, rules and special tokens, not its files.

    Re-saving a tokenizer (``save_pretrained`` in another transformers version, a fine-tune
    copying it) rewrites its files but not what it does, so the hash is taken over the
    serialized fast-tokenizer pipeline with the mutable ``truncation``/``padding`` state removed
    (calling the tokenizer with ``truncation=True`` changes that state), plus the special
    tokens. Slow tokenizers hash their sorted vocabulary instead.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = {"vocab": sorted(tokenizer.get_vocab().items())}
    state["special_tokens"] = {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())}
    blob = json.dumps(state, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def read_training_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The training record (``repdrift_training.json``) of a model folder, or None.

    :func:`repdrift.train.train` writes it next to the weights it saves (also in each
    ``checkpoint-N``); it holds at least ``task``, ``method`` and ``seed``.

    Raises
    ------
    IntegrityError
        The file exists but is not a JSON object with ``task``, ``method`` and ``seed``.
    """
    path = Path(folder) / TRAINING_RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"cannot read training record {path}: {exc}") from exc
    if not isinstance(record, dict) or not {"task", "method", "seed"} <= set(record):
        raise IntegrityError(
            f"training record {path} is not a JSON object with task, method and seed"
        )
    return record


def _block_lists(model: torch.nn.Module) -> list[tuple[str, torch.nn.ModuleList]]:
    """Outermost ModuleLists named like a block stack whose children share one class."""
    found: list[tuple[str, torch.nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        if name.rsplit(".", 1)[-1] not in _BLOCK_LIST_NAMES:
            continue
        if len({type(child) for child in module}) != 1:
            continue
        # a block may itself hold a list called "layer" (T5Block.layer): keep the outer one
        if any(name.startswith(outer + ".") for outer, _ in found):
            continue
        found.append((name, module))
    return found


def find_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of ``model`` in order (block ``i`` is canonical ``layer_i``).

    Works through task heads and peft wrappers: BERT ``encoder.layer``, Llama/Mistral/Qwen
    ``layers``, GPT-2 ``h``, DistilBERT ``transformer.layer``.

    Raises
    ------
    InputError
        No block stack, or several (an encoder-decoder model), was found.
    """
    return list(_find_blocks_named(model)[1])


def _find_blocks_named(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    candidates = _block_lists(model)
    if not candidates:
        raise InputError(
            f"no transformer blocks found in {type(model).__name__}: expected a ModuleList "
            f"named one of {', '.join(_BLOCK_LIST_NAMES)} (e.g. encoder.layer, layers, h)"
        )
    if len(candidates) > 1:
        names = ", ".join(name for name, _ in candidates)
        raise InputError(
            f"{type(model).__name__} has several block stacks ({names}); encoder-decoder "
            "models are not supported"
        )
    return candidates[0]


# --------------------------------------------------------------------------------------------
# The loaded model
# --------------------------------------------------------------------------------------------


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
        Has a pad token; decoders without one get ``pad = eos`` (``source["pad_token_is_eos"]``).
    blocks
        Transformer blocks in order, inside ``model``; block ``i`` is ``f"layer_{i}"``.
    embeddings
        Module whose output is the embedding output (the input of block 0), or None.
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
            text would shift it), and ``use_cache=False`` for decoders.
        """
        if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
            raise InputError(
                "input_ids and attention_mask must be (batch, seq) tensors of one shape, got "
                f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
            )
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        mask = attention_mask.long()
        if self.pass_position_ids:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self.token_type_sep_id is not None:
            is_sep = (input_ids == self.token_type_sep_id).long() * mask
            seps_before = is_sep.cumsum(-1) - is_sep
            kwargs["token_type_ids"] = ((seps_before > 0).long() * mask).to(input_ids.dtype)
        if self.is_decoder:
            kwargs["use_cache"] = False
        return kwargs


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def resolve_dtype(dtype: str) -> torch.dtype:
    """``"float32" | "bfloat16" | "float16"`` (or fp32/bf16/fp16) to a torch dtype."""
    key = str(dtype).lower().removeprefix("torch.")
    if key not in DTYPES:
        raise InputError(f"unknown dtype {dtype!r}: expected one of float32, bfloat16, float16")
    return DTYPES[key]


def resolve_device(device: str) -> torch.device:
    """``"auto"`` is cuda when available else cpu; otherwise a torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(
            f"unknown device {device!r}: expected auto, cpu, cuda or cuda:N ({exc})"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available here")
    if resolved.type == "cuda" and resolved.index is not None:
        if resolved.index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} requested but MPS is not available here")
    return resolved


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
    from repdrift import _model_loading as loading
    from repdrift import _model_parts as parts

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    if kind not in ("auto", "base", "full", "lora"):
        raise InputError(f"unknown kind {kind!r}: expected auto, base, full or lora")
    src = loading.normalize_source(source, "source")
    base_src = loading.normalize_source(base, "base") if base is not None else None
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
        model = loading.inner_model(peft_model)
        tokenizer_from = [src, loading.normalize_source(info["base"], "base")]
    else:
        model, info = loading.load_backbone(src, torch_dtype, trust_remote_code)
        if kind == "full":
            loading.check_same_architecture(src, base_src, trust_remote_code)
            info["base"] = str(base_src)
        tokenizer_from = [src] + ([base_src] if base_src is not None else [])

    model.to(torch_device)
    model.eval()
    model.requires_grad_(False)
    config = model.config
    is_decoder = loading.is_decoder_config(config)
    tokenizer, tok_info = parts.load_tokenizer(tokenizer_from, is_decoder, trust_remote_code)
    if is_decoder:
        config.use_cache = False
        if getattr(config, "pad_token_id", None) is None:
            # decoder sequence-classification heads find the last token through pad_token_id
            config.pad_token_id = tokenizer.pad_token_id

    blocks_name, block_list = _find_blocks_named(model)
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
    parts.configure_forward(loaded, config)
    loaded.embeddings = parts.find_embeddings(loaded, blocks_name)
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
