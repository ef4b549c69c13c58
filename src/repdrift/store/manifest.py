"""The manifest (``metadata.json``) of one step folder of a run directory.

The manifest is the commit record of a step: a file in the folder that is not listed in
``files`` with its sha256 does not exist as far as readers are concerned. While extraction
runs, ``status`` is ``partial`` and ``chunks`` lists the finished chunk files under
``.partial/``; when every layer file is assembled the manifest is rewritten with status
``complete`` and the partial folder is removed.

Schema history
--------------
1 : first version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from repdrift.common.atomic import atomic_write_bytes
from repdrift.common.naming import LayerFormat, StoredPooling
from repdrift.errors import IntegrityError

SCHEMA_VERSION = 1
MANIFEST_NAME = "metadata.json"
PARTIAL_DIR = ".partial"


#: ``extra`` key of the count of samples the model was trained on (written at extraction by
#: :mod:`repdrift.extraction.seen`, flagged by analysis): ``{"seen", "of", "trained_on", "model"}``.
TRAINED_SAMPLES_KEY = "trained_samples"

#: ``token_ids_sha256`` of a run written from arrays made elsewhere (:func:`repdrift.write_run`):
#: the token ids it came from are not known.
EXTERNAL_TOKEN_IDS = hashlib.sha256(b"external arrays").hexdigest()


class FileEntry(BaseModel):
    """A file of the step folder (path relative to the folder) and its checksum."""

    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Manifest(BaseModel):
    """Everything needed to trust, pair and reproduce one step of a run.

    Attributes
    ----------
    schema_version : int
        Version of this schema (see the module docstring).
    repdrift_version : str
        ``repdrift.__version__`` of the writer.
    status : {"partial", "complete"}
    format : {"safetensors", "pt"}
        Layer file format.
    step : int
        Training step of the checkpoint (0 for the final model / a base model).
    kind : str
        ``base``, ``full`` or ``lora`` (``base`` also for a LoRA model with the adapter
        disabled; ``model["adapter_disabled"]`` is then true).
    model : dict
        JSON-safe source description: path, base, adapter, architecture, weights_sha256,
        tokenizer_sha256, dtype, device.
    task, split : str, str or None
    data : dict
        Where the samples came from (``Samples.source``).
    sample_ids : list of str
        Sample ids in the order of the layer files' rows.
    pooling : str
    dtype : str
        Model dtype during extraction (pooling always accumulates in float32).
    max_length : int or None
        Token limit the samples were truncated to.
    tokenizer_sha256 : str or None
    token_ids_sha256 : str
        Hash of the exact token ids fed to the model (catches any change of inputs).
    layers : list of str
        Canonical layer names, in forward order.
    dims : dict
        Hidden size per layer (filled when complete).
    final_norm : bool or None
        Whether the model's final norm (Llama ``norm``, GPT-2 ``ln_f``) was applied to the last
        block's output, making it transformers' ``hidden_states[-1]``; False for a model without
        one (BERT-style) or the raw block output. None: written before this field existed, when
        the norm was never applied (compared as False).
    padding_side, batch_size, max_tokens : str, int, int or None
        Batching used (results agree across batchings to float tolerance).
    chunk_size : int
        Rows per chunk of the length-sorted order; fixed for the life of a partial run.
    chunks : dict
        Finished chunk files (``.partial/chunk_XXXXX.safetensors``) while partial.
    files : dict
        Every file of the complete step, relative to the step folder, with sha256 and size.
    timing, peak_memory : dict
        Seconds spent (and ISO timestamps); peak host RSS and device memory in bytes.
    extra : dict
        Free-form JSON-safe notes from the caller.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int
    repdrift_version: str
    status: Literal["partial", "complete"]
    format: LayerFormat = "safetensors"
    step: int = Field(ge=0)
    kind: str
    model: dict[str, Any]
    task: str
    split: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    n_samples: int = Field(ge=1)
    sample_ids: list[str]
    pooling: StoredPooling
    dtype: str
    max_length: int | None = None
    tokenizer_sha256: str | None = None
    token_ids_sha256: str
    layers: list[str] = Field(min_length=1)
    dims: dict[str, int] = Field(default_factory=dict)
    padding_side: Literal["left", "right"] = "right"
    final_norm: bool | None = None
    batch_size: int = Field(ge=1)
    max_tokens: int | None = None
    chunk_size: int = Field(ge=1)
    chunks: dict[str, FileEntry] = Field(default_factory=dict)
    files: dict[str, FileEntry] = Field(default_factory=dict)
    timing: dict[str, Any] = Field(default_factory=dict)
    peak_memory: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not {SCHEMA_VERSION}")
        if self.n_samples != len(self.sample_ids):
            raise ValueError(
                f"n_samples={self.n_samples} but sample_ids has {len(self.sample_ids)} entries"
            )
        if len(set(self.sample_ids)) != len(self.sample_ids):
            raise ValueError("sample_ids contains duplicates")
        if self.status == "complete":
            missing = [
                name for name in self.layers if layer_file_name(name, self.format) not in self.files
            ]
            if missing:
                raise ValueError(f"complete manifest lists no file for layer(s) {missing}")
        return self

    def layer_file(self, name: str) -> str:
        """File name (relative to the step folder) of layer ``name``."""
        return layer_file_name(name, self.format)


def recorded_token_ids(manifest: Manifest | None) -> str | None:
    """The sha256 of the token ids a step was extracted from, or None when not known (a legacy
    run without a manifest, or arrays written with :func:`repdrift.write_run`)."""
    if manifest is None or manifest.token_ids_sha256 == EXTERNAL_TOKEN_IDS:
        return None
    return manifest.token_ids_sha256


def layer_file_name(name: str, fmt: str) -> str:
    """``layer_3`` -> ``layer_3.safetensors`` (or ``.pt``)."""
    return f"{name}.{fmt}"


def step_dir_name(step: int) -> str:
    """``7`` -> ``step_000007``."""
    return f"step_{step:06d}"


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(manifest)"


def parse_manifest(raw: dict[str, Any], path: Path) -> Manifest:
    """Validate a decoded manifest, raising :class:`IntegrityError` naming file and field."""
    version = raw.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise IntegrityError(
            f"{path}: schema_version {version} is newer than this repdrift understands ({SCHEMA_VERSION}); upgrade repdrift"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IntegrityError(
            f"{path}: field '{_field_path(first['loc'])}': {first['msg']}"
        ) from None


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, raising :class:`IntegrityError` for unreadable or non-object files."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(raw, dict):
        raise IntegrityError(f"{path}: expected a JSON object, found {type(raw).__name__}")
    return raw


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate ``metadata.json``; any problem raises :class:`IntegrityError`."""
    path = Path(path)
    return parse_manifest(load_json(path), path)


def write_manifest(path: str | Path, manifest: Manifest) -> None:
    """Write the manifest atomically (it is the commit record, so it is written last)."""
    text = json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=False) + "\n"
    atomic_write_bytes(Path(path), text.encode("utf-8"))


# Fields that must match for a partial run to be resumed (or a complete one reused), in the
# order they are checked and reported.
IDENTITY_FIELDS: tuple[str, ...] = (
    "kind",
    "model.weights_sha256",
    "model.adapter_disabled",
    "task",
    "split",
    "sample_ids",
    "pooling",
    "layers",
    "max_length",
    "dtype",
    "tokenizer_sha256",
    "format",
    "step",
    "token_ids_sha256",
    "final_norm",
)

# Identity fields added after manifests were first written: the value an old manifest without
# the field (None) stands for. Runs made before ``final_norm`` existed never applied the norm.
_UNRECORDED: dict[str, Any] = {"final_norm": False}


def _get(manifest: Manifest, dotted: str) -> Any:
    head, _, tail = dotted.partition(".")
    value = getattr(manifest, head)
    return value.get(tail) if tail else value


def first_difference(old: Manifest, new: Manifest) -> tuple[str, str] | None:
    """The first identity field whose value differs, with a short description, or None."""
    for field in IDENTITY_FIELDS:
        a, b = _get(old, field), _get(new, field)
        if field in _UNRECORDED:
            a, b = (_UNRECORDED[field] if v is None else v for v in (a, b))
        if field == "model.weights_sha256" and a is None and b is None:
            # No weights hash (e.g. weights not found locally): fall back to the source path.
            field, a, b = "model.path", old.model.get("path"), new.model.get("path")
        if a == b:
            continue
        if field == "sample_ids":
            if len(a) != len(b):
                return field, f"{len(a)} ids on disk vs {len(b)} now"
            pos = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return field, f"position {pos}: {a[pos]!r} on disk vs {b[pos]!r} now"
        return field, f"{_short(a)} on disk vs {_short(b)} now"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
