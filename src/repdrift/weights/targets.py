"""Decide, for one variant, which base weights it changes and how to rebuild its ΔW.

A plan is cheap: it reads tensor names and shapes only, never tensor data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from repdrift.common.naming import Method
from repdrift.errors import InputError
from repdrift.weights.checkpoints import WeightFiles, read_lora_settings
from repdrift.weights.keys import (
    BaseKeyIndex,
    LayerKey,
    group_block_lora_keys,
    group_lora_keys,
    module_selected,
    parse_module_path,
    parse_weight_key,
)
from repdrift.weights.run_adapter import RunAdapter

logger = logging.getLogger(__name__)

_SHOWN = 10  # names listed in a log line before eliding the rest


@dataclass(frozen=True)
class ModuleTarget:
    """How one variant changes one base weight.

    Attributes
    ----------
    base_key : str
        Tensor name in the base checkpoint.
    transposed : bool
        The stored base weight is (in, out) (transformers' Conv1D) and is transposed to the
        nn.Linear layout (out, in) before analysis; a full variant's tensor likewise.
    variant_key : str or None
        Full fine-tuning: the variant's tensor name.
    a_key, b_key : str or None
        LoRA: names of lora_A (r, in) and lora_B (out, r).
    rank, scale : int or None, float or None
        LoRA: rank r (from the stored shapes) and the factor multiplying B @ A.
    """

    base_key: str
    transposed: bool
    variant_key: str | None = None
    a_key: str | None = None
    b_key: str | None = None
    rank: int | None = None
    scale: float | None = None


@dataclass
class VariantPlan:
    """One opened variant and the base weights it changes, keyed by base tensor name."""

    name: str
    folder: Path
    method: Method
    files: WeightFiles
    targets: dict[str, ModuleTarget]


def name_variants(
    variants: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
    labels: Mapping[str, str] | None = None,
) -> list[tuple[str, str | Path]]:
    """(name, path) pairs: mapping keys, else ``labels[str(path)]`` (a run's name by its
    manifest's labels), else folder names (full paths if those collide)."""
    if isinstance(variants, str | Path):
        variants = [variants]
    if isinstance(variants, Mapping):
        named = [(str(name), path) for name, path in variants.items()]
    else:
        labels = labels or {}
        named = [
            (labels.get(str(path)) or Path(str(path)).name or str(path), path) for path in variants
        ]
        if len({name for name, _ in named}) != len(named):
            named = [(str(path), path) for path in variants]
    if not named:
        raise InputError("variants: expected at least one checkpoint or adapter folder")
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise InputError(f"variants: names must be unique, got {names}")
    return named


def _elide(names: list[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (
        f" … (+{len(names) - _SHOWN})" if len(names) > _SHOWN else ""
    )


def _dotted_suffixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def _without_counterpart(keys: list[str], base_keys: list[str]) -> list[str]:
    """Names for which no base name is equal or a dotted suffix of one or the other."""
    base = set(base_keys)
    base_suffixes = {s for key in base_keys for s in _dotted_suffixes(key)}
    return [
        key
        for key in keys
        if key not in base_suffixes and not any(s in base for s in _dotted_suffixes(key))
    ]


def _report(name: str, folder: Path, unmatched: list[str], outside: list[str]) -> None:
    if unmatched:
        logger.warning(
            "variant %s (%s): %d layer weight(s) have no base counterpart, skipped: %s",
            name,
            folder,
            len(unmatched),
            _elide(unmatched),
        )
    if outside:
        logger.info(
            "variant %s (%s): %d tensor(s) outside the transformer blocks with no base "
            "counterpart (task heads, adapter extras), not analysed: %s",
            name,
            folder,
            len(outside),
            _elide(outside),
        )


def _lookup(index: BaseKeyIndex, key: LayerKey, source: str, unmatched: list[str]) -> str | None:
    return _one(index.find(key), source, unmatched)


def _one(found: list[str], source: str, unmatched: list[str]) -> str | None:
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        logger.warning("%s matches several base weights %s; skipped as ambiguous", source, found)
    unmatched.append(source)
    return None


def plan_full(
    name: str,
    folder: Path,
    files: WeightFiles,
    base: WeightFiles,
    index: BaseKeyIndex,
    modules: Sequence[str] | None,
    conv1d: bool,
) -> dict[str, ModuleTarget]:
    """Targets of a full checkpoint: every 2-D layer weight with a same-shaped base weight."""
    targets: dict[str, ModuleTarget] = {}
    unmatched: list[str] = []
    outside: list[str] = []
    for key in files.keys():
        parsed = parse_weight_key(key)
        if parsed is None:
            outside.append(key)
            continue
        if len(files.shape(key)) != 2 or not module_selected(parsed.module, modules):
            continue
        base_key = _lookup(index, parsed, key, unmatched)
        if base_key is None:
            continue
        if files.shape(key) != base.shape(base_key):
            logger.warning(
                "variant %s: %s has shape %s but base %s has %s; skipped",
                name,
                key,
                files.shape(key),
                base_key,
                base.shape(base_key),
            )
            continue
        targets[base_key] = ModuleTarget(base_key, transposed=conv1d, variant_key=key)
    _report(name, folder, unmatched, _without_counterpart(outside, base.keys()))
    return targets


def lora_orientation(
    stored: tuple[int, ...], out_in: tuple[int, int], fan_in_fan_out: bool, conv1d: bool
) -> bool | None:
    """Whether a stored base weight is the transpose of B @ A's (out, in); None if it does not fit.

    Non-square shapes decide by themselves; for a square weight the adapter's
    ``fan_in_fan_out`` or a Conv1D base model type says the storage is (in, out).
    """
    out_f, in_f = out_in
    if out_f != in_f:
        if tuple(stored) == (out_f, in_f):
            return False
        return True if tuple(stored) == (in_f, out_f) else None
    return (fan_in_fan_out or conv1d) if tuple(stored) == out_in else None


def plan_lora(
    name: str,
    folder: Path,
    files: WeightFiles,
    base: WeightFiles,
    index: BaseKeyIndex,
    modules: Sequence[str] | None,
    conv1d: bool,
) -> dict[str, ModuleTarget]:
    """Targets of a LoRA adapter: every lora_A / lora_B pair whose module is in a base layer."""
    settings = read_lora_settings(folder)
    pairs, others = group_lora_keys(files.keys())
    targets: dict[str, ModuleTarget] = {}
    unmatched: list[str] = []
    outside = list(others)
    for pair in pairs:
        parsed = parse_module_path(pair.module_path)
        if parsed is None:
            outside.extend([pair.a_key, pair.b_key])
            continue
        if not module_selected(parsed.module, modules):
            continue
        base_key = _lookup(index, parsed, pair.module_path, unmatched)
        if base_key is None:
            continue
        target = _lora_target(
            name, (files, base), (pair.a_key, pair.b_key, base_key), pair.module_path,
            settings.fan_in_fan_out, conv1d,
        )  # fmt: skip
        if target is not None:
            targets[base_key] = replace(
                target, scale=settings.scale_for(pair.module_path, target.rank or 0)
            )
    _report(name, folder, unmatched, outside)
    return targets


def _lora_target(
    name: str,
    files: tuple[WeightFiles, WeightFiles],
    keys: tuple[str, str, str],
    source: str,
    fan_in_fan_out: bool,
    conv1d: bool,
) -> ModuleTarget | None:
    """The target of one A / B pair on base weight ``keys[2]`` (scale unset), or None with a
    warning when the factors do not fit the base weight."""
    (variant, base), (a_key, b_key, base_key) = files, keys
    a_shape, b_shape = variant.shape(a_key), variant.shape(b_key)
    rank = a_shape[0]
    stored = base.shape(base_key)
    transposed = lora_orientation(stored, (b_shape[0], a_shape[-1]), fan_in_fan_out, conv1d)
    if transposed is None or len(a_shape) != 2 or b_shape[1:] != (rank,):
        logger.warning(
            "variant %s: LoRA factors A %s, B %s of %s do not fit base %s %s; skipped",
            name, a_shape, b_shape, source, base_key, stored,
        )  # fmt: skip
        return None
    return ModuleTarget(base_key, transposed=transposed, a_key=a_key, b_key=b_key, rank=rank)


def plan_run_lora(
    name: str,
    adapter: RunAdapter,
    files: WeightFiles,
    base: WeightFiles,
    index: BaseKeyIndex,
    modules: Sequence[str] | None,
    conv1d: bool,
) -> dict[str, ModuleTarget]:
    """Targets of a run's adapter file: every ``layer_{i}.{module}`` A / B pair, matched to the
    base weight of ``module`` in block ``i``, scaled by the scaling the file records.

    Raises
    ------
    InputError
        A matched module has no recorded scaling (see :meth:`RunAdapter.scale_for`).
    """
    pairs, others = group_block_lora_keys(files.keys())
    targets: dict[str, ModuleTarget] = {}
    unmatched: list[str] = []
    for pair in pairs:
        if not module_selected(pair.module, modules):
            continue
        found = index.find_in_block(pair.layer, pair.module)
        base_key = _one(found, pair.name, unmatched)
        if base_key is None:
            continue
        # B @ A is (out, in) as the extractor stores it; only a Conv1D base is kept (in, out)
        target = _lora_target(
            name, (files, base), (pair.a_key, pair.b_key, base_key), pair.name, False, conv1d
        )
        if target is not None:
            targets[base_key] = replace(target, scale=adapter.scale_for(pair.name))
    _report(name, adapter.path, unmatched, others)
    return targets
