"""Device and dtype names resolved to torch objects: one rule for the whole package.

torch is imported on first use, not at import: :mod:`repdrift.metrics` resolves devices
through this module and must stay importable (and fast to import) without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repdrift.errors import InputError

if TYPE_CHECKING:
    import torch

# Accepted dtype names (lower case) and the torch dtype each stands for.
DTYPE_NAMES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def __getattr__(name: str) -> Any:
    # DTYPES (name -> torch.dtype) is built on first access so that importing this module
    # does not import torch
    if name == "DTYPES":
        import torch

        return {key: getattr(torch, value) for key, value in DTYPE_NAMES.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32" | "bfloat16" | "float16"`` (or fp32/bf16/fp16, or a torch dtype) to a dtype."""
    import torch

    key = str(dtype).lower().removeprefix("torch.")
    if key not in DTYPE_NAMES:
        raise InputError(f"unknown dtype {dtype!r}: expected one of float32, bfloat16, float16")
    return getattr(torch, DTYPE_NAMES[key])


def resolve_device(device: str | torch.device) -> torch.device:
    """A device name (or ``torch.device``) to a ``torch.device`` that exists here.

    ``"auto"`` is cuda when available, else cpu; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and
    ``"mps"`` are checked to be available.

    Raises
    ------
    InputError
        Not a device name, or the device is not available on this machine.
    """
    import torch

    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(
            f"unknown device={device!r}: expected auto, cpu, cuda, cuda:N or mps ({exc})"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={device!r} requested but CUDA is not available here")
    if resolved.type == "cuda" and resolved.index is not None:
        if resolved.index >= torch.cuda.device_count():
            raise InputError(
                f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device={device!r} requested but MPS is not available here")
    return resolved
