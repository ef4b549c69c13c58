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

from pydantic import Field, ValidationInfo, field_validator

from repdrift.common.devices import dtype_name, parse_device_map, parse_max_memory
from repdrift.common.naming import Pooling, check_pooling
from repdrift.common.settings import Settings
from repdrift.store.manifest import Format

#: The layer files' formats.
FORMATS: tuple[str, ...] = ("safetensors", "pt")


class ExtractionOptions(Settings):
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
    dtype : {"auto", "float32", "bfloat16", "float16"}
        The dtype the model is loaded in (``fp32``, ``bf16``, ``fp16`` and torch dtypes are
        accepted and stored by the canonical name). Default ``auto``: bfloat16 on a CUDA device
        that supports it, else float32 (:func:`repdrift.common.devices.auto_dtype`); the
        manifest records the dtype it resolved to. Pooling always accumulates in float32.
    device : str
        ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
        checked when the model is loaded. Leave at ``auto`` with ``device_map``.
    device_map : str, dict or None
        A model larger than one device: ``auto``, ``balanced``, ``balanced_low_0``,
        ``sequential`` (accelerate's strategies) or an explicit ``{module: device}`` map
        (devices: CUDA index, ``cpu``, ``disk``), also as ``"layers.0=0,layers.1=disk"``.
        None (default): the whole model on ``device``.
    max_memory : dict or None
        With ``device_map``: the memory each device may hold, ``{0: "20GiB", "cpu": "2GiB"}``,
        also as ``"0=20GiB,cpu=2GiB"``; what does not fit is offloaded to disk.
    offload_folder : str or None
        Where disk-offloaded weights go (default: a temporary folder removed with the model).
    format : {"safetensors", "pt"}
        Layer file format.
    trust_remote_code : bool
        Allow custom model code from the model folder.
    final_norm : bool
        Apply the model's final norm (Llama ``norm``, GPT-2 ``ln_f``, found beside the block
        list) to the last block's output before pooling, so the last layer equals transformers'
        ``hidden_states[-1]``, as the original study's scripts had it. Default True; False: the
        raw output of the last block. Models without a final norm (BERT-style encoders, whose
        blocks end in their own LayerNorm) are the same either way. The manifest records whether
        the norm was applied.

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
    dtype: str = Field(
        "auto", description="auto | float32 | bfloat16 | float16 (auto: bf16 on a GPU that has it)."
    )
    device: str = Field("auto", min_length=1, description="auto | cpu | cuda | cuda:N.")
    device_map: str | dict[str, int | str] | None = Field(
        None,
        description="A model larger than one device: auto | balanced | sequential, or an "
        "explicit map 'embed_tokens=0,layers.0=0,layers.1=cpu,layers.2=disk'.",
    )
    max_memory: dict[int | str, int | str] | None = Field(
        None, description="With --device-map: memory per device, e.g. 'cpu=2GiB,0=20GiB'."
    )
    offload_folder: str | None = Field(
        None,
        description="With --device-map: where disk-offloaded weights go (default: a temp folder).",
    )
    format: Format = Field("safetensors", description="safetensors | pt (for old scripts).")
    trust_remote_code: bool = Field(
        False, description="Allow custom model code from the model folder."
    )
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

    @field_validator("batch_size", "max_tokens", mode="before")
    @classmethod
    def _no_bool(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool):  # True would pass as 1
            raise ValueError(f"{info.field_name}={value!r} is not an integer")
        return value

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, value: Any) -> Any:
        return dtype_name(value)  # InputError is a ValueError: pydantic reports it

    @field_validator("device_map", mode="before")
    @classmethod
    def _device_map(cls, value: Any) -> Any:
        return parse_device_map(value)

    @field_validator("max_memory", mode="before")
    @classmethod
    def _max_memory(cls, value: Any) -> Any:
        return parse_max_memory(value)

    @field_validator("offload_folder", mode="before")
    @classmethod
    def _offload_folder(cls, value: Any) -> Any:
        return None if value is None else str(value)  # e.g. a Path

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, value: Any) -> Any:
        return value if isinstance(value, str) else str(value)  # e.g. a torch.device

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        if value not in FORMATS:
            raise ValueError(f"format={value!r} is not 'safetensors' or 'pt'")
        return value

    def model_settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`repdrift.models.load.load_model` these options set:
        ``device``, ``dtype``, ``device_map``, ``max_memory``, ``offload_folder``,
        ``trust_remote_code``."""
        return {
            "device": self.device,
            "dtype": self.dtype,
            "device_map": self.device_map,
            "max_memory": self.max_memory,
            "offload_folder": self.offload_folder,
            "trust_remote_code": self.trust_remote_code,
        }


__all__ = ["FORMATS", "ExtractionOptions"]
