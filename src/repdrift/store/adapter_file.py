"""The LoRA matrices a run step keeps beside its layers: ``step_XXXXXX/adapter_weights/lora.safetensors``.

Written by extraction for a LoRA model (:func:`repdrift.extraction.api.lora_tensors`) and by
``repdrift import`` for the original study's LoRA runs (:mod:`repdrift.original_study.adapters`);
read by the weight analysis (:mod:`repdrift.weights.run_adapter`). Listed in the step's
manifest with its sha256 like every other file.

    layer_{i}.{module}.lora_A   (r, in) float32   ``module`` is the path inside block ``i``
    layer_{i}.{module}.lora_B   (out, r) float32

Metadata (``__metadata__``, str -> str): ``layer_{i}.{module}.scaling`` = str(the factor that
multiplies B @ A, alpha / r, or alpha / sqrt(r) with rsLoRA); absent when the writer did not
know alpha (an original run whose metadata did not record it).
"""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from repdrift.errors import IntegrityError

__all__ = ["ADAPTER_FILE", "FACTOR_SUFFIXES", "SCALING_SUFFIX", "adapter_metadata"]

#: Where a run step keeps its LoRA matrices, relative to the step folder.
ADAPTER_FILE = "adapter_weights/lora.safetensors"
#: Key suffixes of the two factors, A (r, in) and B (out, r).
FACTOR_SUFFIXES = (".lora_A", ".lora_B")
#: Metadata key suffix of a module's scaling.
SCALING_SUFFIX = ".scaling"


def adapter_metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` of an adapter file (empty when it has none).

    Raises
    ------
    IntegrityError
        The file is not a readable safetensors file (the message names it).
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types
        raise IntegrityError(f"{path}: not a readable safetensors file: {exc}") from exc
