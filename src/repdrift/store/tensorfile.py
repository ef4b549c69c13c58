"""A byte-deterministic safetensors writer.

``safetensors.torch.save_file`` keeps the ``__metadata__`` entries in a Rust ``HashMap``, so
their order - and the file's bytes - change from one process to the next. Layer files must be
byte-identical between an uninterrupted run and a resumed one, so they are written here with
a fixed layout: tensors and metadata sorted by name, header padded with spaces to a multiple
of 8 bytes, data in the same order. The result is a standard safetensors file
(https://github.com/huggingface/safetensors#format) read by ``safe_open`` as usual.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where tensors are written, so reading runs stays light
    import torch

#: safetensors dtype code -> (torch dtype name, numpy dtype; None where numpy has none)
DTYPE_CODES: dict[str, tuple[str, type | None]] = {
    "F64": ("torch.float64", np.float64),
    "F32": ("torch.float32", np.float32),
    "F16": ("torch.float16", np.float16),
    "BF16": ("torch.bfloat16", None),
    "I64": ("torch.int64", np.int64),
    "I32": ("torch.int32", np.int32),
    "I16": ("torch.int16", np.int16),
    "I8": ("torch.int8", np.int8),
    "U8": ("torch.uint8", np.uint8),
    "BOOL": ("torch.bool", np.bool_),
}
_CODE_OF_TORCH = {torch_name: code for code, (torch_name, _) in DTYPE_CODES.items()}


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` (CPU, any shape) to ``path`` in safetensors format, deterministically.

    Parameters
    ----------
    tensors : dict
        Name -> tensor; written in sorted name order.
    path : str or Path
        Destination (written directly; wrap in :func:`repdrift.common.atomic.atomic_path`).
    metadata : dict, optional
        str -> str entries of ``__metadata__``, sorted by key.
    """
    names = sorted(tensors)
    import torch

    prepared = {name: tensors[name].detach().to("cpu").contiguous() for name in names}
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(metadata[k]) for k in sorted(metadata)}
    offset = 0
    for name in names:
        t = prepared[name]
        if str(t.dtype) not in _CODE_OF_TORCH:
            raise TypeError(f"tensor {name!r}: dtype {t.dtype} has no safetensors code")
        size = t.numel() * t.element_size()
        header[name] = {
            "dtype": _CODE_OF_TORCH[str(t.dtype)],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the reference writer aligns the data start to 8 bytes
    with open(path, "wb") as fh:
        fh.write(len(blob).to_bytes(8, "little"))
        fh.write(blob)
        for name in names:
            t = prepared[name]
            if t.numel() == 0:
                continue
            # Reinterpret as bytes without a copy (also works for bf16, which numpy lacks);
            # safetensors is little-endian, like every platform torch supports here.
            fh.write(t.reshape(-1).view(torch.uint8).numpy().data)
