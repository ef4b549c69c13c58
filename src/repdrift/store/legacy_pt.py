"""Reading ``.pt`` layer files: the original study's runs and ``format="pt"`` output.

The original scripts wrote ``step_000000/layer_i.pt`` (``torch.save`` of a tensor) with no
manifest or a minimal ``metadata.json`` without ``schema_version``. A ``.pt`` file is a pickle,
and unpickling can run arbitrary code, so it is only ever read with
``torch.load(weights_only=True)``: anything but tensors and plain containers is refused.

The original phase-3 extractor saved *unpooled* layers: a bare ``(n, seq_len, d)`` tensor
without the attention mask. Such files are not a run: ``repdrift import``
(:mod:`repdrift.original_study`) pools them into a standard run directory, and reading one
here is refused with that pointer (:func:`unpooled_message`).
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from repdrift.errors import IntegrityError

logger = logging.getLogger(__name__)

# torch is imported inside the functions that load .pt files: opening a safetensors run
# (inspect, compare) then needs no torch.

_LAYER_FILE = re.compile(r"^(layer_\d+|embeddings)\.pt$")


def load_pt_safely(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as :class:`IntegrityError`.

    A pickle that would import or call anything outside torch's allow-list (e.g. a
    ``__reduce__`` calling ``os.system``) is refused before anything runs.
    """
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise IntegrityError(f"{path}: missing") from None
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "refused"
        raise IntegrityError(
            f"{path}: refused to load: not a plain tensor file ({first_line})"
        ) from None
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        zipfile.BadZipFile,
        AttributeError,
        ImportError,
    ) as exc:
        raise IntegrityError(
            f"{path}: unreadable or truncated .pt file ({type(exc).__name__}: {exc})"
        ) from None


def load_pt_mmap(path: str | Path) -> Any:
    """Like :func:`load_pt_safely`, but tensors stay memory-mapped (nothing is read yet)."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        # an old non-zip file (cannot be mapped), a refused pickle or a truncated file: the
        # plain weights-only read loads the first and names the problem of the others
        return load_pt_safely(path)


def is_unpooled(path: str | Path) -> bool:
    """Whether a ``.pt`` layer file holds an unpooled (n, seq_len, d) tensor (read lazily)."""
    import torch

    obj = load_pt_mmap(path)
    return torch.is_tensor(obj) and obj.ndim == 3


#: What reading the original study's unpooled layers tells the user to do instead.
IMPORT_HINT = "convert the tree first: repdrift import TREE --out RUNS"


def unpooled_message(path: str | Path) -> str:
    """One line naming an unpooled file and the import that converts it."""
    return (
        f"{path}: the original study's unpooled (n, seq_len, d) layer file, not a run; "
        f"{IMPORT_HINT} (repdrift.original_study.import_original in Python), then compare RUNS"
    )


def pt_layer_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays stored in a ``.pt`` layer file, as float32/int64 numpy arrays.

    Returns
    -------
    dict
        ``{"pooled": (n, d)}`` for a tensor (or a dict holding ``pooled``), or
        ``{"tokens": (total, d), "offsets": (n + 1,)}`` for token-level files.

    Raises
    ------
    IntegrityError
        An unpooled (n, seq_len, d) tensor (see :func:`unpooled_message`), or a file that is
        not a plain tensor file.
    """
    import torch

    obj = load_pt_mmap(path)
    if torch.is_tensor(obj) and obj.ndim == 3:
        raise IntegrityError(unpooled_message(path))
    if torch.is_tensor(obj):
        obj = {"pooled": obj}
    if not isinstance(obj, dict):
        raise IntegrityError(
            f"{path}: expected a tensor or a dict of tensors, found {type(obj).__name__}"
        )
    if "pooled" not in obj and "tokens" not in obj:
        tensors = [k for k, v in obj.items() if torch.is_tensor(v)]
        if len(tensors) != 1:
            raise IntegrityError(
                f"{path}: expected a tensor 'pooled' or 'tokens'+'offsets', found keys {sorted(map(str, obj))}"
            )
        obj = {"pooled": obj[tensors[0]]}
    out: dict[str, np.ndarray] = {}
    for key in ("pooled", "tokens", "offsets"):
        if key in obj:
            value = obj[key]
            if not torch.is_tensor(value):
                raise IntegrityError(
                    f"{path}: '{key}' is a {type(value).__name__}, expected a tensor"
                )
            out[key] = value.detach().to(torch.int64 if key == "offsets" else torch.float32).numpy()
    if "tokens" in out and "offsets" not in out:
        raise IntegrityError(f"{path}: token-level file has 'tokens' but no 'offsets'")
    matrix = out.get("pooled", out.get("tokens"))
    if matrix is None or matrix.ndim != 2:
        raise IntegrityError(f"{path}: expected a 2-D (rows, d) tensor")
    return out


def legacy_layer_files(step_dir: Path) -> dict[str, Path]:
    """Canonical layer name -> ``.pt`` file for a legacy step folder, in forward order."""
    found = {m.group(1): p for p in step_dir.iterdir() if (m := _LAYER_FILE.match(p.name))}

    def order(name: str) -> int:
        return -1 if name == "embeddings" else int(name.split("_")[1])

    return {name: found[name] for name in sorted(found, key=order)}


def legacy_info(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Whatever a minimal legacy ``metadata.json`` says, normalised to manifest-like keys."""
    raw = raw or {}
    info: dict[str, Any] = {}
    for key in ("task", "split", "pooling", "dtype", "max_length", "kind", "method"):
        if key in raw:
            info[key] = raw[key]
    # the original phase-3 metadata: step, task_name, method, num_samples, tensor_shapes
    if "task" not in info and isinstance(raw.get("task_name"), str):
        info["task"] = raw["task_name"]
    if isinstance(raw.get("num_samples"), int):
        info["num_samples"] = raw["num_samples"]
    model = raw.get("model", raw.get("model_name", raw.get("model_path")))
    if model is not None:
        info["model"] = model if isinstance(model, dict) else {"path": str(model)}
    ids = raw.get("sample_ids", raw.get("ids"))
    if isinstance(ids, list):
        info["sample_ids"] = [str(i) for i in ids]
    return info
