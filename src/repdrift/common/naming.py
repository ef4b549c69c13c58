"""Names shared across stages: layer names, pooling names, run-folder names, method names and
aliases, and the Trainer's ``checkpoint-N`` folders."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from repdrift.errors import InputError


def layer_names(n_blocks: int, *, embeddings: bool = False) -> list[str]:
    """Canonical layer names: ``["embeddings"]`` (optional) then ``layer_0 … layer_{n-1}``."""
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 0:
        raise InputError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    return (["embeddings"] if embeddings else []) + [layer_name(i) for i in range(n_blocks)]


def layer_name(index: int) -> str:
    """The canonical name of block ``index``: ``layer_{index}``."""
    return f"layer_{index}"


Pooling = Literal["mean", "first", "last", "max", "tokens"]


POOLINGS: tuple[str, ...] = get_args(Pooling)

#: The pooling of the original study's unpooled layers imported as its analysis read them: the
#: mean over every position, padding included (``repdrift import`` without the samples). A
#: recorded pooling, never an extraction option.
MEAN_UNMASKED = "mean_unmasked"
#: What a manifest may record: the extraction poolings and :data:`MEAN_UNMASKED`.
StoredPooling = Literal["mean", "first", "last", "max", "tokens", "mean_unmasked"]


def check_pooling(pooling: str) -> Pooling:
    """Return ``pooling`` if it is a known pooling name, else raise :class:`InputError`."""
    if pooling not in POOLINGS:
        raise InputError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
    return pooling  # type: ignore[return-value]


def layer_index(layer: str) -> int:
    """Position of a canonical layer name: ``embeddings`` → -1, ``layer_i`` → i."""
    return -1 if layer == "embeddings" else int(layer.rsplit("_", 1)[1])


# ------------------------------------------------------------------------------- run folders

#: The label of base runs.
BASE = "base"

#: The fine-tuning methods repdrift trains and reads.
#: Layer file formats of a run step (``pt``: ``torch.save`` files for old scripts).
LayerFormat = Literal["safetensors", "pt"]
LAYER_FORMATS: tuple[str, ...] = get_args(LayerFormat)

Method = Literal["full", "lora"]

#: Canonical method → every spelling of it in folder names, the canonical one first and the
#: rest in the order the original study's trees are searched.
METHOD_ALIASES: dict[str, tuple[str, ...]] = {
    "full": ("full", "full_finetune", "full_ft"),
    "lora": ("lora",),
}

_ALIAS_TO_METHOD = {alias: method for method, names in METHOD_ALIASES.items() for alias in names}
# longest first, so that "full_finetune" is never read as "full" followed by junk
_ALIASES = "|".join(sorted(map(re.escape, _ALIAS_TO_METHOD), key=len, reverse=True))
_VARIANT_NAMES = (
    re.compile(rf"^(?P<task>.+)_(?P<method>{_ALIASES})_seed(?P<seed>\d+)$"),  # sst2_lora_seed42
    re.compile(rf"^(?P<method>{_ALIASES})_seed(?P<seed>\d+)_(?P<task>.+)$"),  # lora_seed42_sst2
)
_BASE_NAMES = (
    re.compile(r"^base_pretrained_(?P<task>.+)$"),  # base_pretrained_sst2
    re.compile(r"^(?P<task>.+)_base(?:_seed0)?$"),  # sst2_base, sst2_base_seed0
)


def canonical_method(method: str) -> str:
    """``full_finetune`` and ``full_ft`` → ``full``; any other label unchanged."""
    return _ALIAS_TO_METHOD.get(method, method)


@dataclass(frozen=True)
class RunLabels:
    """What a run-folder name says: task, method (canonical) and training seed (None: base)."""

    task: str
    method: str
    seed: int | None


def run_name(task: str, method: str, seed: int | None) -> str:
    """The run-folder name repdrift writes: ``{task}_{method}_seed{seed}`` or ``{task}_base``.

    These are the original study's spellings, so its scripts find repdrift's runs;
    :func:`parse_run_name` reads them back.
    """
    if method == BASE:
        return f"{task}_base"
    if seed is None:
        raise InputError(f"run {task!r} / {method!r}: a fine-tuned run needs a seed in its name")
    return f"{task}_{method}_seed{seed}"


def parse_run_name(name: str) -> RunLabels | None:
    """Task, method and seed from a run-folder name, or None when the name follows no known rule.

    Read: ``{task}_{method}_seed{seed}`` and the original study's older
    ``{method}_seed{seed}_{task}``, with ``method`` any spelling in :data:`METHOD_ALIASES`
    (returned canonical: ``full_finetune`` → ``full``); base runs ``{task}_base``,
    ``base_pretrained_{task}`` and ``{task}_base_seed0``. A bare ``{task}`` folder (also a
    base-run spelling of the original study, see :func:`base_folder_names`) says nothing by
    its name alone.
    """
    for pattern in _VARIANT_NAMES:
        if match := pattern.match(name):
            method = canonical_method(match["method"])
            return RunLabels(match["task"], method, int(match["seed"]))
    for pattern in _BASE_NAMES:
        if match := pattern.match(name):
            return RunLabels(match["task"], BASE, None)
    return None


def variant_folder_names(task: str, method: str, seed: int) -> list[str]:
    """Every folder name a task × method × seed run may have in the original study's trees,
    in the order they are tried (:func:`run_name`'s spelling first)."""
    aliases = METHOD_ALIASES.get(canonical_method(method), (method,))
    return [f"{task}_{m}_seed{seed}" for m in aliases] + [f"{m}_seed{seed}_{task}" for m in aliases]


def base_folder_names(task: str) -> list[str]:
    """Every folder name a task's base run may have in the original study's trees, in the
    order they are tried (:func:`run_name`'s spelling first; a bare ``{task}`` last)."""
    return [run_name(task, BASE, None), f"base_pretrained_{task}", f"{task}_base_seed0", task]


# ------------------------------------------------------------------------ checkpoint folders

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint saved at optimiser step ``step``: ``checkpoint-{step}``
    (the Hugging Face Trainer's spelling, which repdrift.training also writes)."""
    return f"checkpoint-{step}"


def checkpoint_step(name: str) -> int | None:
    """The step N of a ``checkpoint-N`` folder name, or None for any other name."""
    match = _CHECKPOINT.match(name)
    return int(match.group(1)) if match else None


def find_checkpoints(model: str | Path) -> dict[int, Path]:
    """``checkpoint-N`` folders of a model, by step N (increasing).

    Looked for inside ``model`` and, if there are none, beside it (its parent folder, the
    Trainer's ``output_dir`` when ``model`` is the final save).
    """
    model = Path(model)
    for folder in (model, model.parent):
        if not folder.is_dir():
            continue
        found = {
            step: p
            for p in folder.iterdir()
            if p.is_dir() and (step := checkpoint_step(p.name)) is not None
        }
        if found:
            return dict(sorted(found.items()))
    return {}


def checkpoint_folder(model: Path, step: int) -> Path:
    """``checkpoint-{step}`` inside the variant folder ``model`` (where training saves it), else
    beside it when only that one exists."""
    inside = model / checkpoint_name(step)
    beside = model.parent / checkpoint_name(step)
    return beside if not inside.exists() and beside.exists() else inside
