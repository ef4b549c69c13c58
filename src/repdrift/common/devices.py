"""Device and dtype names resolved to torch objects: one rule for the whole package."""

from __future__ import annotations

import torch

from repdrift.errors import InputError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


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
