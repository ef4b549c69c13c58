"""Find the transformer blocks of any supported architecture (block i is canonical layer_i)."""

from __future__ import annotations

import torch

from repdrift.errors import InputError

# Last path component of a ModuleList that holds the transformer blocks, across families:
# BERT/RoBERTa/ELECTRA "encoder.layer", DistilBERT "transformer.layer", Llama/Mistral/Qwen/
# Gemma/Phi "layers", GPT-2/GPT-J/Falcon/BLOOM "h", T5 "block", others "blocks".
_BLOCK_LIST_NAMES = ("layer", "layers", "h", "block", "blocks")


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
    return list(find_blocks_named(model)[1])


def find_blocks_named(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
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


# Names of the norm a backbone applies after its block stack, beside the block list: Llama/
# Mistral/Qwen/Gemma "norm", GPT-2/GPT-J/Falcon/BLOOM "ln_f", OPT "final_layer_norm", Phi
# "final_layernorm", Mamba-style "norm_f". BERT-style encoders have none (each block ends in its
# own LayerNorm).
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f")


def find_final_norm(model: torch.nn.Module, blocks_name: str) -> torch.nn.Module | None:
    """The norm applied to the last block's output (transformers' ``hidden_states[-1]`` is its
    output), or None when the model has none.

    It is looked for among the siblings of the block list ``blocks_name`` (a name from
    :func:`find_blocks_named` on the same ``model``), so task heads and peft wrappers, which
    only prefix the path, are no obstacle; a peft ``modules_to_save`` wrapper around the norm
    is returned as it is (calling it runs the active copy).
    """
    parent_name = blocks_name.rsplit(".", 1)[0] if "." in blocks_name else ""
    parent = model.get_submodule(parent_name)
    for name in _FINAL_NORM_NAMES:
        module = getattr(parent, name, None)
        if isinstance(module, torch.nn.Module) and not isinstance(module, torch.nn.ModuleList):
            return module
    return None
