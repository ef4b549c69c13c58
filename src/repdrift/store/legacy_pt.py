"""Reading ``.pt`` layer files: the original study's runs and ``format="pt"`` output.

The original scripts wrote ``step_000000/layer_i.pt`` (``torch.save`` of an (n, d) tensor)
with no manifest or a minimal ``metadata.json`` without ``schema_version``. A ``.pt`` file is
a pickle, and unpickling can run arbitrary code, so it is only ever read with
``torch.load(weights_only=True)``: anything but tensors and plain containers is refused.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repdrift.errors import IntegrityError

logger = logging.getLogger(__name__)

_LAYER_FILE = re.compile(r"^(layer_\d+|embeddings)\.pt$")


def load_pt_safely(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure as :class:`IntegrityError`.

    A pickle that would import or call anything outside torch's allow-list (e.g. a
    ``__reduce__`` calling ``os.system``) is refused before anything runs.
    """
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


def pt_layer_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays stored in a ``.pt`` layer file, as float32/int64 numpy arrays.

    Returns
    -------
    dict
        ``{"pooled": (n, d)}`` for a tensor (or a dict holding ``pooled``), or
        ``{"tokens": (total, d), "offsets": (n + 1,)}`` for token-level files.
    """
    obj = load_pt_safely(path)
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
    for key in ("task", "split", "pooling", "dtype", "max_length", "kind"):
        if key in raw:
            info[key] = raw[key]
    model = raw.get("model", raw.get("model_name", raw.get("model_path")))
    if model is not None:
        info["model"] = model if isinstance(model, dict) else {"path": str(model)}
    ids = raw.get("sample_ids", raw.get("ids"))
    if isinstance(ids, list):
        info["sample_ids"] = [str(i) for i in ids]
    return info
