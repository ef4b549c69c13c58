"""Where and how a model is loaded: device, dtype, a device map, remote code.

:class:`Placement` is the part of the settings :func:`repdrift.models.load.load_model` reads;
:class:`repdrift.extraction.options.ExtractionOptions` extends it, so an extraction's options
are a placement as they are.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from repdrift.common.devices import dtype_name, parse_device_map, parse_max_memory
from repdrift.common.settings import Settings


class Placement(Settings):
    """Device, dtype and device map a model is loaded with.

    Attributes
    ----------
    device : str
        ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
        checked when the model is loaded. Leave at ``auto`` with ``device_map``.
    dtype : {"auto", "float32", "bfloat16", "float16"}
        The dtype the model is loaded in (``fp32``, ``bf16``, ``fp16`` and torch dtypes are
        accepted and stored by the canonical name). Default ``auto``: bfloat16 on a CUDA device
        that supports it, else float32 (:func:`repdrift.common.devices.auto_dtype`).
    device_map : str, dict or None
        A model larger than one device: ``auto``, ``balanced``, ``balanced_low_0``,
        ``sequential`` (accelerate's strategies) or an explicit ``{module: device}`` map
        (devices: CUDA index, ``cpu``, ``disk``), also as ``"layers.0=0,layers.1=disk"``.
        None (default): the whole model on ``device``.
    max_memory : dict or None
        With ``device_map``: the memory each device may hold, ``{0: "20GiB", "cpu": "2GiB"}``,
        also as ``"0=20GiB,cpu=2GiB"``; what does not fit is offloaded to disk.
    offload_folder : str or None
        With ``device_map``: where disk-offloaded weights go (default: a temporary folder
        removed with the model).
    trust_remote_code : bool
        Allow custom model code from the model folder.
    """

    KIND: ClassVar[str] = "model setting"

    device: str = Field("auto", min_length=1, description="auto | cpu | cuda | cuda:N.")
    dtype: str = Field(
        "auto", description="auto | float32 | bfloat16 | float16 (auto: bf16 on a GPU that has it)."
    )
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
    trust_remote_code: bool = Field(
        False, description="Allow custom model code from the model folder."
    )

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

    @model_validator(mode="after")
    def _one_placement(self) -> Placement:
        if self.device_map is None:
            if self.max_memory is not None or self.offload_folder is not None:
                raise ValueError(
                    "max_memory and offload_folder need device_map (auto, balanced or an "
                    "explicit map)"
                )
        elif self.device.strip().lower() != "auto":
            raise ValueError(
                f"device={self.device!r} and device_map={self.device_map!r} both given: the "
                "device map places the model; leave device at auto"
            )
        return self

    def device_map_keywords(self) -> dict[str, Any]:
        """``from_pretrained`` keywords for the device map (empty for a single device)."""
        if self.device_map is None:
            return {}
        keywords: dict[str, Any] = {"device_map": self.device_map}
        if self.max_memory is not None:
            keywords["max_memory"] = self.max_memory
        keywords["offload_folder"] = self.offload_folder
        return keywords


__all__ = ["Placement"]
