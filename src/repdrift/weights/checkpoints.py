"""Lazy, tensor-by-tensor access to the weight files of a checkpoint or adapter folder.

safetensors files are opened with :func:`safetensors.safe_open` and read one tensor at a
time, so a model never has to fit in memory. Legacy ``pytorch_model.bin`` /
``adapter_model.bin`` files are read only with ``torch.load(weights_only=True, mmap=True)``,
which refuses pickled code and maps the tensors from disk instead of copying them.
"""

from __future__ import annotations

import json
import logging
import math
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import safe_open

from repdrift.errors import InputError, IntegrityError
from repdrift.models.sources import normalize_source

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"

# Model types whose transformer blocks use transformers' Conv1D, which stores a linear
# layer's weight as (in_features, out_features), the transpose of nn.Linear.
CONV1D_MODEL_TYPES: frozenset[str] = frozenset(
    {"gpt2", "openai-gpt", "imagegpt", "decision_transformer"}
)

# Looked for in this order; the first family present wins. (index file, single file, shard glob)
_MODEL_FILES: tuple[tuple[str, str, str], ...] = (
    ("model.safetensors.index.json", "model.safetensors", "model-*-of-*.safetensors"),
    ("pytorch_model.bin.index.json", "pytorch_model.bin", "pytorch_model-*-of-*.bin"),
)
_ADAPTER_FILES: tuple[str, ...] = ("adapter_model.safetensors", "adapter_model.bin")


def _describe_looked_for(kind: Literal["model", "adapter"]) -> str:
    if kind == "adapter":
        return " or ".join(_ADAPTER_FILES)
    names = [name for family in _MODEL_FILES for name in family]
    return ", ".join(names)


def find_weight_files(folder: Path, kind: Literal["model", "adapter"]) -> list[Path]:
    """The weight files of a checkpoint folder.

    Parameters
    ----------
    folder : Path
        A ``save_pretrained`` folder (model) or PEFT adapter folder (adapter).
    kind : {"model", "adapter"}
        Which file names to look for.

    Returns
    -------
    list of Path
        Non-empty; the shards of a sharded checkpoint in index order.

    Raises
    ------
    InputError
        No weight file is found; the message names the folder and the files looked for.
    IntegrityError
        A shard index lists a file that does not exist or is not valid JSON.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; expected a checkpoint or adapter folder")
    if kind == "adapter":
        for name in _ADAPTER_FILES:
            if (folder / name).is_file():
                return [folder / name]
    else:
        for index_name, single_name, shard_glob in _MODEL_FILES:
            index = folder / index_name
            if index.is_file():
                return _shards_from_index(index)
            if (folder / single_name).is_file():
                return [folder / single_name]
            shards = sorted(folder.glob(shard_glob))
            if shards:
                return shards
    raise InputError(
        f"{folder}: no {kind} weight file found; looked for {_describe_looked_for(kind)}"
    )


def _shards_from_index(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise IntegrityError(
            f"{index}: not a shard index (expected JSON with a 'weight_map' object): {exc}"
        ) from exc
    shards = [index.parent / name for name in dict.fromkeys(weight_map.values())]
    missing = [p.name for p in shards if not p.is_file()]
    if missing:
        raise IntegrityError(f"{index}: lists shard files that do not exist: {missing}")
    return shards


def _torch_load_weights(path: Path) -> object:
    """torch.load with weights_only; memory-mapped when the file is in the zip format."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        # Files written before torch 1.6 (legacy tar format) cannot be memory-mapped.
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


class WeightFiles:
    """Read-only, lazy view of the tensors in one or more weight files.

    Use as a context manager; file handles are closed on exit. Tensors are returned as
    stored (dtype and layout); nothing is loaded until :meth:`get` asks for it.
    """

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._stack = ExitStack()
        self._where: dict[str, Any] = {}  # key -> safe_open handle or legacy state dict
        try:
            for path in files:
                self._open(path)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, path: Path) -> None:
        if path.suffix == ".safetensors":
            try:
                handle = self._stack.enter_context(safe_open(str(path), framework="pt"))
            except Exception as exc:  # safetensors raises its own error types
                raise IntegrityError(f"{path}: not a readable safetensors file: {exc}") from exc
            for key in handle.keys():
                self._where[key] = handle
            return
        try:
            state = _torch_load_weights(path)
        except Exception as exc:  # unpickling refused or truncated zip
            raise IntegrityError(
                f"{path}: cannot be read with torch.load(weights_only=True): {exc}"
            ) from exc
        if not isinstance(state, dict):
            raise IntegrityError(f"{path}: expected a state dict, found {type(state).__name__}")
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                self._where[key] = state

    def keys(self) -> list[str]:
        """All tensor names, in file order."""
        return list(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of a tensor without reading its data."""
        source = self._where[key]
        if isinstance(source, dict):
            return tuple(source[key].shape)
        return tuple(source.get_slice(key).get_shape())

    def get(self, key: str) -> torch.Tensor:
        """Read one tensor (CPU, stored dtype)."""
        source = self._where[key]
        if isinstance(source, dict):
            return source[key]
        return source.get_tensor(key)

    def close(self) -> None:
        self._stack.close()
        self._where.clear()

    def __enter__(self) -> WeightFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_model_type(folder: Path) -> str | None:
    """``model_type`` from a folder's ``config.json``, or None when absent or unreadable."""
    config = folder / "config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError):
        logger.warning("%s: not valid JSON; assuming nn.Linear weight layout", config)
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class LoraSettings:
    """The fields of ``adapter_config.json`` that determine ΔW.

    Attributes
    ----------
    r, lora_alpha : int, float
        Default rank and alpha.
    use_rslora : bool
        Rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023) instead of alpha / r.
    fan_in_fan_out : bool
        The adapted base weights are stored (in, out) (transformers' Conv1D).
    alpha_pattern : dict
        Per-module alpha overrides keyed by a regex on the module path, as in PEFT.
    """

    r: int
    lora_alpha: float
    use_rslora: bool = False
    fan_in_fan_out: bool = False
    alpha_pattern: dict[str, float] = field(default_factory=dict)

    def alpha_for(self, module_path: str) -> float:
        """Alpha of one module, applying ``alpha_pattern`` the way PEFT does."""
        for pattern, alpha in self.alpha_pattern.items():
            if re.match(rf"(.*\.)?({pattern})$", module_path):
                return float(alpha)
        return float(self.lora_alpha)

    def scale_for(self, module_path: str, rank: int) -> float:
        """The factor that multiplies B @ A: alpha / r, or alpha / sqrt(r) with rsLoRA.

        ``rank`` is read from the stored factor shapes, so ``rank_pattern`` overrides are
        honoured without parsing them.
        """
        alpha = self.alpha_for(module_path)
        return alpha / math.sqrt(rank) if self.use_rslora else alpha / rank


def read_lora_settings(folder: Path) -> LoraSettings:
    """Parse ``adapter_config.json`` of a PEFT LoRA adapter folder.

    Raises
    ------
    IntegrityError
        The file is missing, not JSON, or lacks ``r`` / ``lora_alpha``.
    InputError
        The adapter is not plain LoRA (another PEFT method, or DoRA, whose magnitude
        vectors change W' in a way ``scale * B @ A`` does not describe).
    """
    path = folder / ADAPTER_CONFIG
    if not path.is_file():
        raise IntegrityError(f"{folder}: adapter weights found but no {ADAPTER_CONFIG}")
    try:
        config = json.loads(path.read_text())
        r, alpha = int(config["r"]), float(config["lora_alpha"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(
            f"{path}: expected JSON with integer 'r' and number 'lora_alpha': {exc}"
        ) from exc
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise InputError(f"{path}: peft_type is {peft_type!r}; only LoRA adapters are supported")
    if config.get("use_dora"):
        raise InputError(f"{path}: use_dora is true; DoRA adapters are not supported")
    return LoraSettings(
        r=r,
        lora_alpha=alpha,
        use_rslora=bool(config.get("use_rslora", False)),
        fan_in_fan_out=bool(config.get("fan_in_fan_out", False)),
        alpha_pattern=dict(config.get("alpha_pattern") or {}),
    )


def is_adapter_folder(folder: Path) -> bool:
    """Whether a folder holds a PEFT adapter rather than a full checkpoint."""
    return (folder / ADAPTER_CONFIG).is_file() or any(
        (folder / name).is_file() for name in _ADAPTER_FILES
    )


def resolve_model_folder(name_or_path: str | Path, *, local_files_only: bool = True) -> Path:
    """A local folder for a base model given as a folder or a Hugging Face hub id.

    Folder or hub id is decided by :func:`repdrift.models.sources.normalize_source`; a hub id
    is then looked up in the hub cache.

    Parameters
    ----------
    name_or_path : str or Path
        An existing folder, or a hub id such as ``"bert-base-uncased"``.
    local_files_only : bool
        Only look in the local hub cache (default); False allows a download.

    Raises
    ------
    InputError
        A file, a missing folder, or a hub id not found (in the cache).
    """
    src = normalize_source(name_or_path, "model")  # the package's one path-or-hub-id rule
    if isinstance(src, Path):
        return src
    text = src
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id=text,
            allow_patterns=["*.json", "*.safetensors", "*.bin"],
            local_files_only=local_files_only,
        )
    except Exception as exc:  # hub errors have many types; all mean "not available"
        where = "in the local hub cache" if local_files_only else "locally or on the hub"
        raise InputError(
            f"{text}: not a folder, and not found {where} as a hub model id: {exc}"
        ) from exc
    return Path(folder)
