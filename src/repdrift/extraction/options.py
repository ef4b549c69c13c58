"""The extraction settings: one typed object, its defaults and its validation, in one place.

:class:`ExtractionOptions` is what the API (:func:`repdrift.extraction.api.extract`, which also
builds it from its keyword arguments), the CLI's ``extract`` command, the experiment file's
``extraction:`` section (the same class: its fields are the section's fields) and the runner's
jobs share. The manifest records the settings it was made with (``pooling``, ``layers``,
``batch_size``, ``max_tokens``, ``dtype``, ``format``) in its own fields, unchanged
(``final_norm``: whether a final norm was applied).

The maximum sequence length is not a setting here: it belongs to the samples (the task
preset's ``max_length``, :class:`repdrift.tasks.samples.Samples`), which are encoded before
extraction and recorded in the manifest from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import Field, field_validator

from repdrift.common.naming import LAYER_FORMATS, LayerFormat, Pooling, check_pooling
from repdrift.common.settings import refuse_bool
from repdrift.models.placement import Placement


class ExtractionOptions(Placement):
    """How to extract: pooling, layers, batching, the model's dtype and device, the file format.

    Attributes
    ----------
    pooling : {"mean", "first", "last", "max", "tokens"}
        Over each sample's real tokens (``tokens``: every token, no pooling). Default ``mean``.
    layers : list of int or str, str, or None
        None: every block; ``"all"``: the embeddings and every block; ints (negative count from
        the end), ``"layer_i"`` or ``"embeddings"``. One int is a list of one.
    batch_size : int
        Samples per forward pass (>= 1). Default 32.
    max_tokens : int or None
        Cap on padded tokens per batch (>= 1). None: no cap on the CPU; on a CUDA device a cap
        sized from the free device memory and the model's width and depth
        (:func:`repdrift.extraction.budget.default_max_tokens`).
    format : {"safetensors", "pt"}
        Layer file format.
    final_norm : bool
        Apply the model's final norm (Llama ``norm``, GPT-2 ``ln_f``, found beside the block
        list) to the last block's output before pooling, so the last layer equals transformers'
        ``hidden_states[-1]``, as the original study's scripts had it. Default True; False: the
        raw output of the last block. Models without a final norm (BERT-style encoders, whose
        blocks end in their own LayerNorm) are the same either way. The manifest records whether
        the norm was applied.

    Besides these, the placement of the model (``device``, ``dtype``, ``device_map``, ``max_memory``,
    ``offload_folder``, ``trust_remote_code``: :class:`~repdrift.models.placement.Placement`,
    which these options extend; the manifest records the dtype the model really ran in).

    Build one with ``ExtractionOptions.build(options, pooling=..., ...)`` (None keeps a
    setting); errors as in :class:`~repdrift.common.settings.Settings`.
    """

    KIND: ClassVar[str] = "extraction setting"

    pooling: Pooling = Field("mean", description="mean | first | last | max | tokens.")
    layers: list[int | str] | str | None = Field(
        None,
        description="Comma-separated layer indices and/or 'embeddings', or 'all' (embeddings "
        "too); default: every block.",
    )
    batch_size: int = Field(32, ge=1, description="Sequences per forward pass.")
    max_tokens: int | None = Field(
        None, ge=1, description="Cap on padded tokens per batch (default: sized on a GPU)."
    )
    format: LayerFormat = Field("safetensors", description="safetensors | pt (for old scripts).")
    final_norm: bool = Field(
        True,
        description="Apply the model's final norm (Llama norm, GPT-2 ln_f) to the last block, "
        "as in transformers' hidden_states[-1] (BERT-style models have none).",
    )

    @field_validator("pooling", mode="before")
    @classmethod
    def _pooling(cls, value: Any) -> Any:
        return check_pooling(value)  # InputError is a ValueError: pydantic reports it

    @field_validator("layers", mode="before")
    @classmethod
    def _layers(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"layers={value!r}: expected None, 'all', or layer indices/names")
        if isinstance(value, int):
            return [value]
        if isinstance(value, Sequence) and not isinstance(value, str):
            return list(value)
        return value

    _numbers = field_validator("batch_size", "max_tokens", mode="before")(refuse_bool)

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        if value not in LAYER_FORMATS:
            raise ValueError(f"format={value!r} is not 'safetensors' or 'pt'")
        return value


__all__ = ["ExtractionOptions"]
