"""The base of every settings object: typed, frozen, its own defaults, checks and help text.

Each stage has one settings class (:class:`repdrift.tasks.sample_settings.SampleSettings`,
:class:`repdrift.extraction.options.ExtractionOptions`,
:class:`repdrift.training.settings.TrainingSettings`,
:class:`repdrift.analysis.settings.AnalysisSettings`). The public functions take friendly
keyword arguments and build the object once at the edge; the experiment file's section is the
same class; the runner's jobs carry it; the CLI reads its defaults and help text from the
fields (:func:`default`, :func:`help_text`).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

from repdrift.errors import InputError

S = TypeVar("S", bound="Settings")


class Settings(BaseModel):
    """A frozen pydantic model whose unknown fields are errors.

    Built directly (or as a section of the experiment file), a bad value is a pydantic
    ``ValidationError`` (a ``ValueError``) naming the field. :meth:`create`, :meth:`build` and
    :meth:`updated` raise :class:`~repdrift.errors.InputError` instead, one line per problem as
    the CLI prints it: :meth:`create` and :meth:`replaced` serve the Python API, where None
    means None; :meth:`build` and :meth:`updated` serve the CLI, where None means "not given".
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: How the settings are named in messages ("extraction setting 'pooling'").
    KIND: ClassVar[str] = "setting"

    @classmethod
    def build(cls: type[S], base: S | None = None, /, **settings: Any) -> S:
        """``base`` (default: every default) with the settings given (not None) replaced.

        Raises
        ------
        InputError
            A bad value (the setting and the value named) or an unknown setting.
        """
        if base is None:
            return cls.create(**{k: v for k, v in settings.items() if v is not None})
        return base.updated(**settings)

    def updated(self: S, **settings: Any) -> S:
        """A validated copy with every setting given that is not None replaced.

        None means "keep": a field whose default is None cannot be reset this way (build a
        new object for that).
        """
        given = {k: v for k, v in settings.items() if v is not None}
        if not given:
            return self
        return type(self).create(**{**self.model_dump(), **given})

    def replaced(self: S, **values: Any) -> S:
        """A validated copy with these fields replaced; None is None here (the Python API's
        sense, as in :meth:`create`)."""
        return type(self).create(**{**self.model_dump(), **values}) if values else self

    @classmethod
    def create(cls: type[S], **values: Any) -> S:
        """The settings with these values (None is None here), checked.

        Raises
        ------
        InputError
            A bad value (the setting and the value named) or an unknown setting.
        """
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InputError(describe_errors(exc, cls)) from None


def refuse_bool(value: Any, info: ValidationInfo) -> Any:
    """A ``mode="before"`` field validator for numbers: ``True`` would pass as 1.

    Used as ``_numbers = field_validator("n", "seed", mode="before")(refuse_bool)``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{info.field_name}={value!r} is not a number")
    return value


def comma_list(value: Any) -> Any:
    """The CLI's ``"a,b"`` as ``["a", "b"]`` (blanks dropped); anything else as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def default(cls: type[Settings], field: str) -> Any:
    """A field's default (the CLI shows it in its help)."""
    info = cls.model_fields[field]
    return info.get_default(call_default_factory=True)


def help_text(cls: type[Settings], field: str) -> str:
    """A field's description, the one help text of the API, the CLI and the experiment file."""
    return cls.model_fields[field].description or ""


def describe_errors(exc: ValidationError, cls: type[Settings]) -> str:
    """One line per problem, naming the setting and the value (unknown settings: a
    did-you-mean among the fields)."""
    kind = cls.KIND
    lines = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(cls.model_fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown {kind} {name!r}{hint}")
            continue
        msg = str(error["msg"]).removeprefix("Value error, ")
        msg = msg[:1].lower() + msg[1:]
        if re.search(rf"\b{re.escape(name)}\b", msg):  # the message names it already
            lines.append(f"invalid {kind}: {msg}")
        else:
            lines.append(f"invalid {kind} {name}={error.get('input')!r}: {msg}")
    return "\n".join(lines)


__all__ = ["Settings", "comma_list", "default", "describe_errors", "help_text", "refuse_bool"]
