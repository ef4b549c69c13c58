"""Device and dtype names resolved to torch objects: one rule for the whole package.

Also the ``dtype="auto"`` rule (:func:`auto_dtype`) and accelerate's placement settings for
models larger than one device (:func:`parse_device_map`, :func:`parse_max_memory`,
:func:`dispatch_device`).

torch is imported on first use, not at import: :mod:`repdrift.metrics` resolves devices
through this module and must stay importable (and fast to import) without torch.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
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


def resolve_dtype(
    dtype: str | torch.dtype, device: str | torch.device | None = None
) -> torch.dtype:
    """``"float32" | "bfloat16" | "float16"`` (or fp32/bf16/fp16, or a torch dtype) to a dtype.

    ``"auto"`` is :func:`auto_dtype` of ``device`` (bfloat16 on a CUDA device that supports it,
    else float32).
    """
    import torch

    name = dtype_name(dtype)
    if name == "auto":
        return auto_dtype(device)
    return getattr(torch, name)


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


# --------------------------------------------------------------------------------------------
# dtype "auto"
# --------------------------------------------------------------------------------------------

#: What ``dtype`` may be set to: ``auto`` or a concrete name.
DTYPE_CHOICES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


def dtype_name(dtype: Any) -> str:
    """The canonical name of a dtype setting: ``"auto"`` or a key of the concrete names.

    Raises
    ------
    InputError
        Not ``auto`` nor a known dtype name.
    """
    key = str(dtype).strip().lower().removeprefix("torch.")
    if key == "auto":
        return "auto"
    if key not in DTYPE_NAMES:
        raise InputError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPE_CHOICES)}")
    return DTYPE_NAMES[key]


def auto_dtype(device: str | torch.device | None) -> torch.dtype:
    """``dtype="auto"``: bfloat16 on a CUDA device that computes in it natively (compute
    capability 8.0 and up: A100, H100, H200, RTX 30xx ...), else float32.

    CPUs and MPS stay in float32: bfloat16 there is emulated or partial, slower than float32
    and changes results for no gain.
    """
    import torch

    if device is None:
        return torch.float32
    resolved = torch.device(device) if not isinstance(device, torch.device) else device
    if resolved.type != "cuda" or not torch.cuda.is_available():
        return torch.float32
    index = resolved.index if resolved.index is not None else torch.cuda.current_device()
    major, _minor = torch.cuda.get_device_capability(index)
    return torch.bfloat16 if major >= 8 else torch.float32


# GPUs that compute float64 at half the float32 rate (P100, V100, A100, H100/H200); consumer
# GPUs manage 1/32-1/64 of it, slower than numpy on a few CPU cores.
_FAST_FLOAT64_CAPABILITIES = {(6, 0), (7, 0), (8, 0), (9, 0)}


def has_fast_float64(device: str | torch.device | None) -> bool:
    """Whether ``device`` computes float64 GEMMs at a useful rate: the CPU (numpy's, or torch's
    BLAS), a CUDA device of :data:`_FAST_FLOAT64_CAPABILITIES`; not consumer GPUs nor MPS (which
    has no float64). Where it is False the analysis multiplies in float32 and accumulates in
    float64 (:mod:`repdrift.metrics.streaming`)."""
    if device is None:
        return True
    import torch

    resolved = torch.device(device) if not isinstance(device, torch.device) else device
    if resolved.type == "cpu":
        return True
    if resolved.type != "cuda":
        return False
    index = resolved.index if resolved.index is not None else torch.cuda.current_device()
    return tuple(torch.cuda.get_device_capability(index)) in _FAST_FLOAT64_CAPABILITIES


def metrics_device(device: str | None = "auto") -> str | None:
    """Where the analysis's float64 Gram and GEMM work runs: a CUDA device, or None (numpy).

    ``"auto"``: the current CUDA device when it has fast float64, else numpy on the CPU;
    ``"cpu"`` or None: numpy; ``"cuda"`` / ``"cuda:N"``: that device (checked). torch is only
    imported when a GPU driver is present or torch is already loaded.
    """
    if device is None or device == "cpu":
        return None
    if device == "auto":
        if "torch" not in sys.modules and not Path("/proc/driver/nvidia").exists():
            return None
        import torch

        if not torch.cuda.is_available():
            return None
        if not has_fast_float64(torch.device("cuda")):
            return None
        return "cuda"
    resolved = resolve_device(device)
    return None if resolved.type == "cpu" else str(resolved)


# --------------------------------------------------------------------------------------------
# Models larger than one device: device maps and memory limits (accelerate's conventions)
# --------------------------------------------------------------------------------------------

#: accelerate's placement strategies, accepted as ``device_map``.
DEVICE_MAP_STRATEGIES: tuple[str, ...] = ("auto", "balanced", "balanced_low_0", "sequential")

_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


def _placement(value: Any, what: str) -> int | str:
    """A device of a device map or a max_memory key: an int (CUDA index), ``cpu``, ``disk``,
    ``mps``, ``cuda:N`` (to N), ``meta`` is refused."""
    if isinstance(value, bool):
        raise InputError(f"{what}: {value!r} is not a device")
    if isinstance(value, int):
        if value < 0:
            raise InputError(f"{what}: {value!r} is not a device (CUDA indices start at 0)")
        return value
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    if text == "cuda":
        return 0
    if text in ("cpu", "disk", "mps"):
        return text
    raise InputError(f"{what}: {value!r} is not a device: expected N (a CUDA index), cpu or disk")


def _pairs(value: str, what: str) -> dict[str, str]:
    """``"a=1,b=2"`` or a JSON object (``'{"a": 1}'``) to a dict of strings."""
    text = value.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{what}: {value!r} is not a JSON object ({exc})") from None
        if not isinstance(loaded, dict):
            raise InputError(f"{what}: {value!r} is not a JSON object")
        return {str(k): v for k, v in loaded.items()}
    pairs: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip() or not val.strip():
            raise InputError(f"{what}: {item.strip()!r} is not NAME=VALUE (e.g. cpu=2GiB,0=20GiB)")
        pairs[key.strip()] = val.strip()
    if not pairs:
        raise InputError(f"{what}: {value!r} names nothing")
    return pairs


def parse_device_map(value: Any) -> str | dict[str, int | str] | None:
    """A ``device_map`` setting in its canonical form.

    Accepted: None; a strategy (``auto``, ``balanced``, ``balanced_low_0``, ``sequential``);
    an explicit map ``{module name: device}`` given as a dict, a JSON object, or
    ``"embed_tokens=cpu,layers.0=0,layers.1=disk"``. A device is a CUDA index (``0``,
    ``cuda:0``), ``cpu`` or ``disk``. Module names are those of the model repdrift loads (the
    backbone, e.g. ``layers.0``, for base and full models).

    Raises
    ------
    InputError
        Anything else, with the value named.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in DEVICE_MAP_STRATEGIES:
            return text.lower()
        if "=" not in text and not text.startswith("{"):
            raise InputError(
                f"device_map={value!r}: expected {', '.join(DEVICE_MAP_STRATEGIES)} or an "
                "explicit map such as 'embed_tokens=cpu,layers.0=0,layers.1=disk'"
            )
        value = _pairs(text, "device_map")
    if not isinstance(value, dict) or not value:
        raise InputError(f"device_map={value!r}: expected a strategy name or a non-empty map")
    return {str(k).strip(): _placement(v, f"device_map[{k!r}]") for k, v in value.items()}


def parse_max_memory(value: Any) -> dict[int | str, int | str] | None:
    """A ``max_memory`` setting ``{device: size}`` in accelerate's form.

    Accepted: None, a dict, a JSON object or ``"cpu=2GiB,0=20GiB"``. Keys are CUDA indices
    (``0``, ``cuda:0``), ``cpu``, ``disk`` or ``mps``; sizes are bytes (int) or strings such as
    ``500MB``, ``2GiB``.

    Raises
    ------
    InputError
        A key that is not a device or a size that is not a size, named.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = _pairs(value, "max_memory")
    if not isinstance(value, dict) or not value:
        raise InputError(f"max_memory={value!r}: expected a map such as cpu=2GiB,0=20GiB")
    out: dict[int | str, int | str] = {}
    for key, size in value.items():
        device = _placement(key, "max_memory")
        if isinstance(size, bool) or not (
            (isinstance(size, int) and size > 0) or (isinstance(size, str) and _SIZE.match(size))
        ):
            raise InputError(
                f"max_memory[{key!r}]={size!r} is not a size: expected bytes or e.g. 500MB, 2GiB"
            )
        out[device] = size.replace(" ", "") if isinstance(size, str) else size
    return out


def dispatch_device(device_map: dict[str, Any]) -> torch.device:
    """The device a model placed by a device map takes its inputs on: accelerate's main device
    (the first accelerator in the map; the CPU when the map holds only ``cpu`` and ``disk``,
    whose modules then run on the CPU)."""
    import torch

    accelerators = [d for d in device_map.values() if d not in ("cpu", "disk", "meta")]
    if not accelerators:
        return torch.device("cpu")
    first = accelerators[0]
    return torch.device("cuda", first) if isinstance(first, int) else torch.device(first)
