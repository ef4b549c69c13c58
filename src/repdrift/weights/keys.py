"""Map checkpoint tensor names to (layer index, module name) and match them across checkpoints.

A base model and its fine-tuned variants name the same weight differently: a checkpoint
saved with a task head nests the backbone (``bert.encoder.layer.3.attention.self.query.weight``
against the base's ``encoder.layer.3.attention.self.query.weight``), a causal-LM checkpoint
adds ``model.`` (``model.layers.3.self_attn.q_proj.weight``), and PEFT prefixes
``base_model.model.`` and replaces ``.weight`` with ``.lora_A.weight`` / ``.lora_B.weight``.

Every name is split into ``prefix . container . index . module . weight`` where ``container``
is the name of the stack of transformer blocks (``layer``, ``layers``, ``h``, ``block``,
``blocks``) and ``index`` its position. Two names refer to the same weight when container,
index and module agree and one prefix is a dotted suffix of the other (``bert.encoder`` ends
with ``encoder``; ``model`` ends with the empty prefix), which keeps an encoder-decoder's
``encoder.block.0`` apart from its ``decoder.block.0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from repdrift.common.naming import layer_index, layer_name
from repdrift.store.adapter_file import FACTOR_SUFFIXES

# Names under which transformers stores its stack of blocks (BERT/RoBERTa/ViT ``layer``,
# Llama/Mistral/OPT/NeoX ``layers``, GPT-2/Falcon ``h``, T5 ``block``, MPT ``blocks``).
LAYER_CONTAINERS: frozenset[str] = frozenset({"layer", "layers", "h", "block", "blocks"})

# PEFT wraps the model twice: PeftModel.base_model (LoraModel) .model (the transformer).
PEFT_PREFIX = "base_model.model."

# lora_A / lora_B with an optional adapter name (``lora_A.default.weight`` in old files).
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<factor>[AB])(?:\.[^.]+)?\.weight$")


@dataclass(frozen=True)
class LayerKey:
    """Where a weight sits in a transformer.

    Attributes
    ----------
    prefix : str
        Dotted path before the block stack, e.g. ``"bert.encoder"``; ``""`` for none.
    container : str
        Name of the block stack, e.g. ``"layer"``.
    layer : int
        Index of the block in the stack.
    module : str
        Dotted module path inside the block, e.g. ``"attention.self.query"``.
    """

    prefix: str
    container: str
    layer: int
    module: str

    def matches(self, other: LayerKey) -> bool:
        """Whether ``other`` names the same weight (see module docstring)."""
        if (self.container, self.layer, self.module) != (
            other.container,
            other.layer,
            other.module,
        ):
            return False
        return _is_dotted_suffix(self.prefix, other.prefix) or _is_dotted_suffix(
            other.prefix, self.prefix
        )


def _is_dotted_suffix(short: str, long: str) -> bool:
    return short == "" or long == short or long.endswith("." + short)


def parse_module_path(module_path: str) -> LayerKey | None:
    """Split a dotted module path (no ``.weight``) into a :class:`LayerKey`.

    Parameters
    ----------
    module_path : str
        E.g. ``"bert.encoder.layer.3.attention.self.query"``.

    Returns
    -------
    LayerKey or None
        None when the path is not inside a block stack (embeddings, pooler, heads).
    """
    parts = module_path.split(".")
    for i in range(1, len(parts) - 1):
        if parts[i].isdigit() and parts[i - 1] in LAYER_CONTAINERS:
            return LayerKey(
                prefix=".".join(parts[: i - 1]),
                container=parts[i - 1],
                layer=int(parts[i]),
                module=".".join(parts[i + 1 :]),
            )
    return None


def parse_weight_key(key: str) -> LayerKey | None:
    """:func:`parse_module_path` for a full tensor name ending in ``.weight``.

    Returns None for anything that is not a ``.weight`` inside a block stack.
    """
    if not key.endswith(".weight"):
        return None
    return parse_module_path(key.removesuffix(".weight"))


@dataclass(frozen=True)
class LoraKeyPair:
    """The two factor tensors of one LoRA-adapted module.

    Attributes
    ----------
    module_path : str
        Module path with the PEFT prefix removed, e.g. ``"encoder.layer.0.attention.self.query"``.
    a_key, b_key : str
        Tensor names of ``lora_A`` (r, in) and ``lora_B`` (out, r) in the adapter file.
    """

    module_path: str
    a_key: str
    b_key: str


def group_lora_keys(keys: Iterable[str]) -> tuple[list[LoraKeyPair], list[str]]:
    """Pair the ``lora_A`` / ``lora_B`` tensors of an adapter file by module.

    Parameters
    ----------
    keys : iterable of str
        All tensor names of an adapter file.

    Returns
    -------
    pairs : list of LoraKeyPair
        One per module that has both factors, in first-seen order.
    others : list of str
        Names that are not a complete A/B pair (embedding LoRA, ``modules_to_save`` copies,
        LoRA biases, a factor without its partner); the caller reports them.
    """
    factors: dict[str, dict[str, str]] = {}
    others: list[str] = []
    for key in keys:
        match = _LORA_KEY.match(key)
        if match is None:
            others.append(key)
            continue
        module = match["module"].removeprefix(PEFT_PREFIX)
        factors.setdefault(module, {})[match["factor"]] = key
    pairs: list[LoraKeyPair] = []
    for module, found in factors.items():
        if set(found) == {"A", "B"}:
            pairs.append(LoraKeyPair(module, a_key=found["A"], b_key=found["B"]))
        else:
            others.extend(found.values())
    return pairs, others


@dataclass(frozen=True)
class BlockLoraPair:
    """The two factor tensors of one LoRA-adapted module in a run's adapter file
    (:mod:`repdrift.store.adapter_file`).

    Attributes
    ----------
    layer : int
        Block index ``i`` of ``layer_{i}``.
    module : str
        Module path inside the block, e.g. ``"attention.self.query"``.
    a_key, b_key : str
        Tensor names of ``lora_A`` (r, in) and ``lora_B`` (out, r).
    """

    layer: int
    module: str
    a_key: str
    b_key: str

    @property
    def name(self) -> str:
        """``layer_{i}.{module}``, the key prefix (and the metadata key of its scaling)."""
        return f"{layer_name(self.layer)}.{self.module}"


def _block_of(head: str) -> int | None:
    try:
        index = layer_index(head)
    except (ValueError, IndexError):
        return None
    return index if index >= 0 and layer_name(index) == head else None


def group_block_lora_keys(keys: Iterable[str]) -> tuple[list[BlockLoraPair], list[str]]:
    """Pair the ``layer_{i}.{module}.lora_A`` / ``.lora_B`` tensors of a run's adapter file.

    Returns
    -------
    pairs : list of BlockLoraPair
        One per module that has both factors, in first-seen order.
    others : list of str
        Names that are not a complete A/B pair under a ``layer_{i}`` block name.
    """
    factors: dict[tuple[int, str], dict[str, str]] = {}
    others: list[str] = []
    for key in keys:
        suffix = next((s for s in FACTOR_SUFFIXES if key.endswith(s)), None)
        head, _, rest = key.partition(".")
        block = _block_of(head)
        if suffix is None or block is None or not rest.removesuffix(suffix):
            others.append(key)
            continue
        module = rest.removesuffix(suffix)
        factors.setdefault((block, module), {})[suffix] = key
    pairs: list[BlockLoraPair] = []
    a_suffix, b_suffix = FACTOR_SUFFIXES
    for (block, module), found in factors.items():
        if set(found) == set(FACTOR_SUFFIXES):
            pairs.append(BlockLoraPair(block, module, found[a_suffix], found[b_suffix]))
        else:
            others.extend(found.values())
    return pairs, others


def module_selected(module: str, selection: Sequence[str] | None) -> bool:
    """Whether a block-relative module name is in a user selection.

    A selected name matches the whole module name or its trailing dotted components, like
    PEFT's ``target_modules``: ``"query"`` and ``"self.query"`` both select
    ``"attention.self.query"``; ``"attention"`` does not.
    """
    if selection is None:
        return True
    return any(_is_dotted_suffix(name, module) and name != "" for name in selection)


class BaseKeyIndex:
    """Look up base-model weight names by the :class:`LayerKey` of a variant's name."""

    def __init__(self, base_keys: Iterable[str]) -> None:
        self._by_slot: dict[tuple[str, int, str], list[tuple[LayerKey, str]]] = {}
        for key in base_keys:
            parsed = parse_weight_key(key)
            if parsed is not None:
                slot = (parsed.container, parsed.layer, parsed.module)
                self._by_slot.setdefault(slot, []).append((parsed, key))

    def find(self, key: LayerKey) -> list[str]:
        """Base tensor names that match ``key``; more than one means the name is ambiguous."""
        candidates = self._by_slot.get((key.container, key.layer, key.module), [])
        return [name for parsed, name in candidates if parsed.matches(key)]

    def find_in_block(self, layer: int, module: str) -> list[str]:
        """Base tensor names of ``module`` inside block ``layer`` of any block stack (a run's
        adapter file names blocks by index only); more than one means the name is ambiguous
        (an encoder-decoder's ``encoder.block.0`` and ``decoder.block.0``)."""
        return [
            name
            for container in sorted(LAYER_CONTAINERS)
            for _, name in self._by_slot.get((container, layer, module), [])
        ]

    def examples(self, n: int = 3) -> list[str]:
        """A few indexed base names, for error messages."""
        return [name for group in self._by_slot.values() for _, name in group][:n]
