"""Reading ``.pt`` layer files: the original study's runs and ``format="pt"`` output.

The original scripts wrote ``step_000000/layer_i.pt`` (``torch.save`` of a tensor) with no
manifest or a minimal ``metadata.json`` without ``schema_version``. A ``.pt`` file is a pickle,
and unpickling can run arbitrary code, so it is only ever read with
``torch.load(weights_only=True)``: anything but tensors and plain containers is refused.

The original phase-3 extractor saved *unpooled* layers: a bare ``(n, seq_len, d)`` tensor,
batches padded to their longest input and concatenated with zero padding to the longest of
all, no attention mask. Its analysis mean-pooled over axis 1 including the padded positions.
:func:`pool_unpooled` reads such a file through a memory map, a block of rows at a time (never
the whole tensor), and pools it either that way (``mean_unmasked``, so published numbers can be
reproduced) or over the real tokens only, given each sample's token count.
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


#: Pooling name of an unpooled legacy layer read as the original analysis did.
MEAN_UNMASKED = "mean_unmasked"
_BLOCK_BYTES = 64 << 20  # rows of an unpooled file converted to float64 per step


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


def real_token_spans(
    lengths: np.ndarray, padded: np.ndarray, padding_side: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """First and last + 1 real position of each row of an unpooled layer.

    Parameters
    ----------
    lengths : (m,)
        Real token count of each sample (from re-tokenising it).
    padded : (m,)
        Positions before the zero padding that joined the batches (the batch's longest input).
    padding_side : "right" or "left"
        The tokenizer's padding side within a batch.
    """
    if padding_side not in ("right", "left"):
        raise IntegrityError(
            f"{where}: padding_side must be 'right' or 'left', got {padding_side!r}"
        )
    too_long = np.flatnonzero(lengths > padded)
    if too_long.size:
        i = int(too_long[0])
        raise IntegrityError(
            f"{where}: {too_long.size} sample(s) have more tokens than the file has real "
            f"positions (row {i}: {int(lengths[i])} tokens, {int(padded[i])} positions): the "
            "samples, tokenizer or max length do not match the ones the file was written with"
        )
    if padding_side == "right":
        return np.zeros_like(lengths), lengths
    return padded - lengths, padded


def pool_unpooled(
    path: str | Path,
    *,
    lengths: np.ndarray | None = None,
    padding_side: str = "right",
) -> np.ndarray:
    """Mean-pool an unpooled ``(n, seq_len, d)`` layer file in bounded memory.

    Parameters
    ----------
    path
        The ``.pt`` file.
    lengths : (n,) int, optional
        Real token count per sample. None pools over all ``seq_len`` positions, padding
        included, as the original analysis did (:data:`MEAN_UNMASKED`).
    padding_side
        Where each batch put its padding (with ``lengths`` only). The zero padding that joined
        batches of different lengths is found from the data: trailing all-zero positions.

    Returns
    -------
    np.ndarray
        (n, d) float32, accumulated in float64.
    """
    import torch

    path = Path(path)
    tensor = load_pt_mmap(path)
    if not torch.is_tensor(tensor) or tensor.ndim != 3:
        raise IntegrityError(f"{path}: expected an unpooled (n, seq_len, d) tensor")
    n, seq_len, d = tensor.shape
    if lengths is not None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (n,):
            raise IntegrityError(
                f"{path}: {lengths.size} token counts given for a file of {n} samples"
            )
    out = np.empty((n, d), dtype=np.float32)
    widths = np.empty(n, dtype=np.int64)
    rows = max(1, _BLOCK_BYTES // max(1, seq_len * d * 8))
    positions = torch.arange(seq_len)
    for start in range(0, n, rows):
        raw = tensor[start : start + rows]
        block = raw.to(torch.float64)
        if lengths is None:
            out[start : start + rows] = block.mean(dim=1).numpy()
            continue
        nonzero = (raw != 0).any(dim=2)  # (m, seq_len), on the stored values
        last = torch.where(nonzero, positions, torch.full_like(positions, -1)).amax(dim=1)
        padded = (last + 1).numpy()
        widths[start : start + rows] = padded
        first, stop = real_token_spans(
            lengths[start : start + rows], padded, padding_side, str(path)
        )
        mask = (positions >= torch.from_numpy(first)[:, None]) & (
            positions < torch.from_numpy(stop)[:, None]
        )
        summed = torch.bmm(mask[:, None, :].to(torch.float64), block)[:, 0]  # (m, d)
        out[start : start + rows] = (summed / mask.sum(dim=1, keepdim=True).clamp(min=1)).numpy()
    if lengths is not None:
        check_batch_widths(lengths, widths, str(path))
    return out


def check_batch_widths(lengths: np.ndarray, widths: np.ndarray, where: str) -> None:
    """Refuse token counts that cannot have produced the file's zero-joined batches.

    Each batch was padded to its longest input and then zero-extended to the longest of all,
    so every width (positions before the zeros) shared by a zero-extended batch must be the
    token count of one of its rows. With a single width (one batch, or inputs padded to a
    fixed length) nothing beyond :func:`real_token_spans`' check can be said.
    """
    distinct = np.unique(widths)
    if distinct.size < 2:
        return
    unmatched = [int(w) for w in distinct if not np.any(lengths[widths == w] == w)]
    if unmatched:
        w = unmatched[0]
        raise IntegrityError(
            f"{where}: the rows {int(w)} positions wide (a batch padded to its longest input) "
            f"hold no sample of {w} tokens (their counts: "
            f"{sorted(set(lengths[widths == w].tolist()))[:8]}): the samples, their order, the "
            "tokenizer or the max length differ from the ones the file was written with"
        )


def is_unpooled(path: str | Path) -> bool:
    """Whether a ``.pt`` layer file holds an unpooled (n, seq_len, d) tensor (read lazily)."""
    import torch

    obj = load_pt_mmap(path)
    return torch.is_tensor(obj) and obj.ndim == 3


def pt_layer_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays stored in a ``.pt`` layer file, as float32/int64 numpy arrays.

    Returns
    -------
    dict
        ``{"pooled": (n, d)}`` for a tensor (or a dict holding ``pooled``), or
        ``{"tokens": (total, d), "offsets": (n + 1,)}`` for token-level files. An unpooled
        (n, seq_len, d) tensor is mean-pooled over all positions (:func:`pool_unpooled`).
    """
    import torch

    obj = load_pt_mmap(path)
    if torch.is_tensor(obj) and obj.ndim == 3:
        return {"pooled": pool_unpooled(path)}
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
