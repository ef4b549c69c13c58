"""The parts of a loaded model beyond its weights: tokenizer, forward inputs, embeddings.

Internals of :func:`repdrift.models.load_model`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from repdrift._model_loading import Source, inner_model
from repdrift.errors import IntegrityError
from repdrift.models import _PAD_LOGGED, _TOKENIZER_FILES, tokenizer_sha256

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from repdrift.models import LoadedModel

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


def _has_tokenizer(src: Source) -> bool:
    if isinstance(src, Path):
        return any((src / name).is_file() for name in _TOKENIZER_FILES)
    return True  # a hub id: from_pretrained will tell


def load_tokenizer(
    candidates: list[Source | None], is_decoder: bool, trust_remote_code: bool
) -> tuple[PreTrainedTokenizerBase, dict]:
    """The first candidate's tokenizer (variant folder, then base), with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = None
    chosen: Source | None = None
    errors: list[str] = []
    for src in candidates:
        if src is None or not _has_tokenizer(src):
            continue
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(src), trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as exc:
            errors.append(f"{src}: {exc}")
            continue
        chosen = src
        break
    if tokenizer is None:
        tried = ", ".join(str(c) for c in candidates if c is not None)
        raise IntegrityError(
            f"no tokenizer found in {tried} (expected tokenizer.json / tokenizer_config.json)"
            + (f": {'; '.join(errors)}" if errors else "")
        )
    pad_is_eos = False
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            # decoders rarely define a pad token; padded positions are masked, so eos serves
            tokenizer.pad_token = tokenizer.eos_token
            pad_is_eos = True
            if str(chosen) not in _PAD_LOGGED:
                _PAD_LOGGED.add(str(chosen))
                logger.info(
                    "tokenizer of %s has no pad token: using eos %r", chosen, tokenizer.eos_token
                )
        elif tokenizer.unk_token is not None:
            tokenizer.pad_token = tokenizer.unk_token
            logger.warning("tokenizer of %s has no pad or eos token: padding with unk", chosen)
        else:
            raise IntegrityError(f"tokenizer of {chosen} has no pad, eos or unk token to pad with")
    info = {
        "tokenizer_path": str(chosen),
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        "padding_side": tokenizer.padding_side,
        "pad_token": str(tokenizer.pad_token),
        "pad_token_is_eos": pad_is_eos,
    }
    return tokenizer, info


def configure_forward(loaded: LoadedModel, config: Any) -> None:
    """Decide which extra inputs make padded forwards match unpadded ones."""
    inner = inner_model(loaded.model)
    params = inspect.signature(inner.forward).parameters
    sep = loaded.tokenizer.sep_token_id
    if "token_type_ids" in params and getattr(config, "type_vocab_size", 0) > 1 and sep is not None:
        loaded.token_type_sep_id = int(sep)
    # RoBERTa-style embeddings derive positions from input_ids and the pad id themselves
    self_positioned = any(
        hasattr(type(module), "create_position_ids_from_input_ids")
        or hasattr(module, "padding_idx")
        for name, module in inner.named_modules()
        if name.rsplit(".", 1)[-1] == "embeddings"
    )
    loaded.pass_position_ids = "position_ids" in params and not self_positioned


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
