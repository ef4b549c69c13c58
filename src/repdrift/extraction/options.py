"""The extraction settings: one typed object, its defaults and its validation, in one place.

:class:`ExtractionOptions` is what the API (:func:`repdrift.extraction.api.extract`, which also
builds it from its keyword arguments), the CLI's ``extract`` command, the experiment file's
``extraction:`` section (the same class: its fields are the section's fields) and the runner's
jobs share. The manifest records the settings it was made with (``pooling``, ``layers``,
``batch_size``, ``max_tokens``, ``dtype``, ``format``) in its own fields, unchanged.

The maximum sequence length is not a setting here: it belongs to the samples (the task
preset's ``max_length``, :class:`repdrift.tasks.samples.Samples`), which are encoded before
extraction and recorded in the manifest from there.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from repdrift.common.devices import DTYPE_NAMES
from repdrift.common.naming import Pooling, check_pooling
from repdrift.errors import InputError
from repdrift.store.manifest import Format

#: The layer files' formats.
FORMATS: tuple[str, ...] = ("safetensors", "pt")


class ExtractionOptions(BaseModel):
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
        Optional cap on padded tokens per batch (>= 1).
    dtype : {"float32", "bfloat16", "float16"}
        The dtype the model is loaded in (``fp32``, ``bf16``, ``fp16`` and torch dtypes are
        accepted and stored by the canonical name). Pooling always accumulates in float32.
    device : str
        ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
        checked when the model is loaded.
    format : {"safetensors", "pt"}
        Layer file format.
    trust_remote_code : bool
        Allow custom model code from the model folder.

    A bad value or an unknown field is a pydantic ``ValidationError`` (a ``ValueError``)
    naming the field and the value, located inside the experiment schema like any section;
    :meth:`updated` and :func:`extraction_options` raise :class:`~repdrift.errors.InputError`
    instead (one line per problem, as the CLI prints it). Instances are immutable.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pooling: Pooling = "mean"
    layers: list[int | str] | str | None = None
    batch_size: int = Field(32, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    dtype: str = "float32"
    device: str = Field("auto", min_length=1)
    format: Format = "safetensors"
    trust_remote_code: bool = False

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
        key = str(value).lower().removeprefix("torch.")
        if key not in DTYPE_NAMES:
            raise ValueError(f"unknown dtype {value!r}: expected one of float32, bfloat16, float16")
        return DTYPE_NAMES[key]

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

    def updated(self, **settings: Any) -> ExtractionOptions:
        """A validated copy with every setting given that is not None replaced.

        None means "keep": ``layers=None`` cannot reset a layer selection (build a new object
        for that).

        Raises
        ------
        InputError
            A bad value (the setting and the value named) or an unknown setting.
        """
        given = {k: v for k, v in settings.items() if v is not None}
        if not given:
            return self
        try:
            return ExtractionOptions.model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            raise InputError(describe_errors(exc)) from None


def extraction_options(
    options: ExtractionOptions | None = None, **settings: Any
) -> ExtractionOptions:
    """``options`` (default: every default) with the settings given (not None) replaced.

    What :func:`repdrift.extraction.api.extract` and the CLI build their settings with.

    Raises
    ------
    InputError
        A bad value (the setting and the value named) or an unknown setting.
    """
    return (options if options is not None else ExtractionOptions()).updated(**settings)


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the setting and the value (unknown settings: a
    did-you-mean among the fields)."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(ExtractionOptions.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown extraction setting {name!r}{hint}")
            continue
        msg = str(error["msg"]).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        if name in msg:
            lines.append(f"invalid extraction setting: {msg}")
        else:
            lines.append(f"invalid extraction setting {name}={error.get('input')!r}: {msg}")
    return "\n".join(lines)


__all__ = ["FORMATS", "ExtractionOptions", "describe_errors", "extraction_options"]
