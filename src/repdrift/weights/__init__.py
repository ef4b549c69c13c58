"""Weight-space analysis: how far fine-tuning moved each linear module of a transformer.

For a base model and its variants (full fine-tuned checkpoints, PEFT LoRA adapters),
:func:`weight_drift` reports per layer and module the relative change ||ΔW||_F / ||W||_F,
the spectral norm of ΔW and its ratio to ||W||_2, the effective and stable rank of ΔW, and
the number of intruder dimensions of W' = W + ΔW (Shuttleworth et al. 2024) with the share of
the top-k spectral energy they carry and the count random directions would give
(:mod:`repdrift.weights.intruder_null`). The math is in :mod:`repdrift.weights.spectra`,
checkpoint reading in :mod:`repdrift.weights.checkpoints`, name matching in
:mod:`repdrift.weights.keys`.
"""

from __future__ import annotations

from repdrift.weights.checkpoints import LoraSettings, WeightFiles, read_lora_settings
from repdrift.weights.drift import COLUMNS, ModuleDelta, module_deltas, weight_drift
from repdrift.weights.intruder_null import expected_random_intruders, random_intruder_probability
from repdrift.weights.keys import LayerKey, parse_weight_key
from repdrift.weights.spectra import (
    BaseSpectrum,
    effective_rank,
    intruder_alignment,
    intruder_dimensions,
    low_rank_singular_values,
    max_abs_cosine,
    module_drift,
    stable_rank,
)

__all__ = [
    "COLUMNS",
    "BaseSpectrum",
    "LayerKey",
    "LoraSettings",
    "ModuleDelta",
    "WeightFiles",
    "effective_rank",
    "expected_random_intruders",
    "intruder_alignment",
    "intruder_dimensions",
    "low_rank_singular_values",
    "max_abs_cosine",
    "module_deltas",
    "module_drift",
    "parse_weight_key",
    "random_intruder_probability",
    "read_lora_settings",
    "stable_rank",
    "weight_drift",
]
