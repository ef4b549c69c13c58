"""The original study's LoRA matrices, converted to the extractor's adapter file.

Its phase-3 extractor saved, for a LoRA model, ``step_000000/adapter_weights/lora_A_layer_{i}.pt``
and ``lora_B_layer_{i}.pt``: per transformer block ``i`` a dict of the block's LoRA parameters,
keyed by their PEFT parameter names (``base_model.model.encoder.layer.3.attention.self.query
.lora_A.default.weight``) or by the module path inside the block (``attention.self.query``),
``lora_A`` (r, in) and ``lora_B`` (out, r). :func:`lora_file` turns them into what
:func:`repdrift.extraction.api.lora_tensors` writes, ``adapter_weights/lora.safetensors`` with
``layer_{i}.{module}.lora_A`` / ``.lora_B`` (float32) and, when the LoRA alpha is known (the
run's ``metadata.json`` ``lora_alpha``, or given), ``layer_{i}.{module}.scaling`` = alpha / r
in the file's metadata.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from repdrift.common.naming import layer_name
from repdrift.errors import IntegrityError
from repdrift.store.adapter_file import ADAPTER_FILE
from repdrift.store.legacy_pt import load_pt_safely

__all__ = ["ADAPTER_FILE", "lora_alpha_of", "lora_file"]

_FILE = re.compile(r"^lora_(?P<factor>[AB])_layer_(?P<layer>\d+)\.pt$")
# a PEFT parameter name: ... {container}.{i}.{module}.lora_A[.adapter].weight
_PEFT_NAME = re.compile(
    r"^(?:.*\.)?(?:layer|layers|h|block|blocks)\.(?P<layer>\d+)\.(?P<module>.+?)"
    r"\.lora_[AB](?:\.[^.]+)?\.weight$"
)
_MODULE_NAME = re.compile(r"^(?P<module>.+?)(?:\.lora_[AB](?:\.[^.]+)?)?(?:\.weight)?$")


def _module(key: str, layer: int, where: Path) -> str:
    """The module path inside block ``layer`` that a stored parameter name names."""
    if match := _PEFT_NAME.match(key):
        if int(match["layer"]) != layer:
            raise IntegrityError(f"{where}: {key!r} is a parameter of block {match['layer']}")
        return match["module"]
    match = _MODULE_NAME.match(key)
    assert match is not None  # the pattern matches any non-empty name
    return match["module"]


def _factor(path: Path, layer: int) -> dict[str, torch.Tensor]:
    obj = load_pt_safely(path)
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise IntegrityError(
            f"{path}: expected a dict of LoRA parameter name -> 2-D tensor, found "
            f"{type(obj).__name__}"
        )
    out = {}
    for key, value in obj.items():
        if value.ndim != 2:
            raise IntegrityError(f"{path}: {key!r} has shape {tuple(value.shape)}; expected 2-D")
        out[_module(str(key), layer, path)] = value.detach().to(torch.float32).contiguous()
    return out


def lora_file(
    step_dir: Path, lora_alpha: float | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """The step's LoRA matrices as the extractor keys them, or None when it has none.

    Returns
    -------
    tensors : dict
        ``layer_{i}.{module}.lora_A`` (r, in) and ``.lora_B`` (out, r), float32.
    metadata : dict
        ``layer_{i}.{module}.scaling`` -> str(alpha / r) when ``lora_alpha`` is known.

    Raises
    ------
    IntegrityError
        A factor without its partner, a file that is not a dict of 2-D tensors, or A and B
        whose shapes do not make a product (the message names the file).
    """
    folder = step_dir / "adapter_weights"
    files = (
        {m: p for p in folder.iterdir() if (m := _FILE.match(p.name))} if folder.is_dir() else {}
    )
    if not files:
        return None
    by_layer: dict[int, dict[str, Path]] = {}
    for match, path in files.items():
        by_layer.setdefault(int(match["layer"]), {})[match["factor"]] = path
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for layer in sorted(by_layer):
        pair = by_layer[layer]
        if set(pair) != {"A", "B"}:
            have = next(iter(pair.values()))
            raise IntegrityError(f"{have}: no lora_{'B' if 'A' in pair else 'A'} file beside it")
        a, b = _factor(pair["A"], layer), _factor(pair["B"], layer)
        if set(a) != set(b):
            raise IntegrityError(
                f"{pair['B']}: modules {sorted(b)} differ from {pair['A'].name}'s {sorted(a)}"
            )
        for module in sorted(a):
            if b[module].shape[1] != a[module].shape[0]:
                raise IntegrityError(
                    f"{pair['B']}: {module} B {tuple(b[module].shape)} does not fit A "
                    f"{tuple(a[module].shape)} (B (out, r) @ A (r, in))"
                )
            key = f"{layer_name(layer)}.{module}"
            tensors[f"{key}.lora_A"], tensors[f"{key}.lora_B"] = a[module], b[module]
            if lora_alpha is not None:
                meta[f"{key}.scaling"] = repr(float(lora_alpha) / a[module].shape[0])
    return tensors, meta


def lora_alpha_of(raw: dict[str, Any] | None) -> float | None:
    """The LoRA alpha a run's ``metadata.json`` records (``lora_alpha``, or inside ``lora`` /
    ``lora_config``), else None."""
    raw = raw or {}
    for holder in (raw, raw.get("lora"), raw.get("lora_config")):
        if isinstance(holder, dict) and isinstance(holder.get("lora_alpha"), (int, float)):
            return float(holder["lora_alpha"])
    return None
