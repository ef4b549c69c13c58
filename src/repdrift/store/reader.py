"""Reading run directories: :func:`load_run` (a :class:`Run`), :func:`run_summary`.

A run is a folder of ``step_XXXXXX`` folders (or a single step folder). A step with a valid
manifest is trusted only for the files its manifest lists, with matching size and sha256.
A legacy step (``layer_i.pt`` with no manifest, or a minimal one without
``schema_version``) has no checksums: it loads with a warning, and its ``.pt`` files are read
with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from repdrift.common.naming import layer_name
from repdrift.errors import InputError, IntegrityError
from repdrift.store.legacy_pt import (
    is_unpooled,
    legacy_layer_files,
    pt_layer_arrays,
    unpooled_message,
)
from repdrift.store.manifest import MANIFEST_NAME, PARTIAL_DIR, Manifest
from repdrift.store.steps import StepRecord, final_step_number, find_steps, inspect_step
from repdrift.store.tensorfile import DTYPE_CODES

logger = logging.getLogger(__name__)


class Run:
    """A verified run directory; layer arrays are read from disk only when asked for.

    Attributes
    ----------
    path : Path
    steps : list of int
    step : int
        Default step for :meth:`layer`: the one passed to :func:`load_run`, else the final
        model (step 0, else the latest checkpoint).
    """

    def __init__(self, path: Path, records: dict[int, StepRecord], step: int) -> None:
        self.path = path
        self._records = records
        self.steps = sorted(records)
        self.step = step

    def _rec(self, step: int | None) -> StepRecord:
        step = self.step if step is None else step
        if step not in self._records:
            raise InputError(f"{self.path}: no step {step}; steps are {self.steps}")
        return self._records[step]

    @property
    def manifest(self) -> Manifest | None:
        """Manifest of the default step (None for a legacy run)."""
        return self._rec(None).manifest

    @property
    def manifests(self) -> dict[int, Manifest | None]:
        """Manifest per step."""
        return {s: r.manifest for s, r in self._records.items()}

    @property
    def legacy(self) -> bool:
        """True when the default step has no checksummed manifest."""
        return self._rec(None).legacy is not None

    @property
    def layers(self) -> list[str]:
        """Canonical layer names of the default step, in forward order."""
        return list(self._rec(None).layer_paths)

    @property
    def sample_ids(self) -> list[str] | None:
        """Sample ids in row order (None for a legacy run that does not record them)."""
        rec = self._rec(None)
        return rec.manifest.sample_ids if rec.manifest else (rec.legacy or {}).get("sample_ids")

    @property
    def pooling(self) -> str | None:
        """Pooling of the default step (None when a legacy run does not record it)."""
        rec = self._rec(None)
        if rec.manifest:
            return rec.manifest.pooling
        return (rec.legacy or {}).get("pooling")

    def layer_path(self, name: str | int, step: int | None = None) -> Path:
        """File of layer ``name`` (``"layer_3"``, ``3`` or ``"embeddings"``)."""
        rec = self._rec(step)
        key = layer_name(name) if isinstance(name, int) else name
        if key not in rec.layer_paths:
            raise InputError(f"{rec.path}: no layer {name!r}; layers are {list(rec.layer_paths)}")
        return rec.layer_paths[key]

    def _arrays(self, name: str | int, step: int | None, mmap: bool) -> dict[str, np.ndarray]:
        path = self.layer_path(name, step)
        if path.suffix == ".pt":
            return pt_layer_arrays(path)
        try:
            with safe_open(path, framework="numpy") as f:
                keys = list(f.keys())
                if mmap:
                    return {k: _memmap_tensor(path, k) for k in keys}
                return {k: f.get_tensor(k) for k in keys}
        except IntegrityError:
            raise
        except Exception as exc:  # safetensors raises SafetensorError, a bare Exception subclass
            raise IntegrityError(f"{path}: unreadable safetensors file ({exc})") from None

    def layer(self, name: str | int, step: int | None = None, *, mmap: bool = False) -> np.ndarray:
        """Pooled representations of one layer.

        Parameters
        ----------
        name : str or int
            ``"layer_3"``, ``3`` or ``"embeddings"``.
        step : int, optional
            Checkpoint step (default: :attr:`step`).
        mmap : bool
            Return a read-only memory map instead of reading the file into memory.

        Returns
        -------
        np.ndarray
            (n, d) float32, rows in :attr:`sample_ids` order.
        """
        arrays = self._arrays(name, step, mmap)
        if "pooled" not in arrays:
            raise InputError(
                f"{self.layer_path(name, step)} is token-level (pooling='tokens'): use Run.tokens()"
            )
        return arrays["pooled"]

    def tokens(
        self, name: str | int, step: int | None = None, *, mmap: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Token-level representations: (total_tokens, d) float32 and (n + 1,) int64 offsets.

        Sample ``i`` is ``tokens[offsets[i]:offsets[i + 1]]``.
        """
        arrays = self._arrays(name, step, mmap)
        if "tokens" not in arrays:
            raise InputError(
                f"{self.layer_path(name, step)} holds pooled vectors, not tokens: use Run.layer()"
            )
        return arrays["tokens"], np.asarray(arrays["offsets"], dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        """See :func:`run_summary`."""
        return run_summary(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, steps={self.steps}, layers={len(self.layers)})"


def _memmap_tensor(path: Path, key: str) -> np.ndarray:
    """A read-only memory map of one tensor of a safetensors file (no copy)."""
    with open(path, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
    info = header[key]
    begin, end = info["data_offsets"]
    dtype = DTYPE_CODES.get(info["dtype"], (None, None))[1]
    if dtype is None:
        raise IntegrityError(
            f"{path}: tensor {key!r} has dtype {info['dtype']!r}, which numpy cannot map"
        )
    shape = tuple(info["shape"])
    if end - begin != int(np.prod(shape)) * np.dtype(dtype).itemsize:
        raise IntegrityError(f"{path}: tensor {key!r} has inconsistent offsets")
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + header_len + begin, shape=shape)


def load_run(
    path: str | Path,
    *,
    step: int | None = None,
    verify: bool = True,
) -> Run:
    """Open a run directory for reading.

    Parameters
    ----------
    path : str or Path
        The run folder (holding ``step_*`` folders) or one step folder.
    step : int, optional
        Default step for :meth:`Run.layer` (default: the final model, step 0, else the latest
        checkpoint).
    verify : bool
        Check every file's sha256 against the manifest (recommended; reads all files once).
        Without it, sizes and status are still checked.

    Raises
    ------
    IntegrityError
        Missing run, invalid manifest, partial status, or a file failing verification
        (the message names the file).
    InputError
        The original study's unpooled ``(n, seq_len, d)`` layer files: convert them with
        ``repdrift import`` (:func:`repdrift.original_study.import_original`) first.
    """
    path = Path(path)
    steps = find_steps(path)
    if not steps:
        reason = (
            "does not exist"
            if not path.exists()
            else f"holds no step_* folders with {MANIFEST_NAME} or layer files"
        )
        raise IntegrityError(f"{path}: {reason}")
    if step is not None and step not in steps:
        raise InputError(f"{path}: no step {step}; steps are {sorted(steps)}")
    for step_dir in steps.values():  # the original study's unpooled files are not a run
        first = next(iter(legacy_layer_files(step_dir).values()), None)
        if first is not None and is_unpooled(first):
            raise InputError(unpooled_message(first))
    chosen = [step] if step is not None and verify else list(steps)
    records = {s: inspect_step(s, steps[s], check_hashes=verify and s in chosen) for s in steps}
    problems = [p for r in records.values() for p in r.problems]
    if problems:
        more = (
            f" (and {len(problems) - 1} more problem(s); see `repdrift inspect`)"
            if len(problems) > 1
            else ""
        )
        raise IntegrityError(problems[0] + more)
    for rec in records.values():
        if rec.legacy is not None:
            logger.warning(
                "%s is a legacy run without checksums; its files cannot be verified", rec.path
            )
    return Run(path, records, final_step_number(steps) if step is None else step)


def _size_on_disk(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # removed while walking
                pass
    return total


def run_summary(path: str | Path) -> dict[str, Any]:
    """What ``repdrift inspect`` shows: cheap (no hashing), works on partial runs.

    Returns
    -------
    dict
        ``path, status`` (complete / partial / legacy / invalid), ``steps``, ``model``,
        ``kind, task, split, n_samples, layers, pooling, dims, format, dtype``,
        ``size_bytes, seconds`` (per step), ``peak_memory`` (first step),
        ``repdrift_version`` and ``problems`` (size/status checks only).
    """
    path = Path(path)
    steps = find_steps(path)
    records = [inspect_step(s, d, check_hashes=False) for s, d in steps.items()]
    out: dict[str, Any] = {
        "path": str(path),
        "steps": [r.step for r in records],
        "size_bytes": _size_on_disk(path) if path.exists() else 0,
    }
    out["problems"] = [p for r in records for p in r.problems] or (
        [] if records else [f"{path}: no run found"]
    )
    readable = [r for r in records if r.manifest or r.legacy is not None]
    statuses = {r.manifest.status if r.manifest else "legacy" for r in readable}
    if not readable or len(readable) != len(records):
        out["status"] = "invalid"
    else:
        out["status"] = (
            "partial" if "partial" in statuses else "legacy" if "legacy" in statuses else "complete"
        )
    if not readable:
        return out
    first = readable[0]
    if first.manifest:
        m = first.manifest
        out.update(
            model=m.model.get("path"), base=m.model.get("base"), adapter=m.model.get("adapter"), kind=m.kind,
            task=m.task, split=m.split, n_samples=m.n_samples, layers=m.layers, pooling=m.pooling,
            dims=m.dims, format=m.format, dtype=m.dtype, max_length=m.max_length,
            repdrift_version=m.repdrift_version, peak_memory=m.peak_memory,
        )  # fmt: skip
        out["chunks_done"] = {
            r.step: len(r.manifest.chunks)
            for r in records
            if r.manifest and r.manifest.status == "partial"
        }
    else:
        legacy = first.legacy or {}
        out.update(legacy)
        out["layers"] = list(first.layer_paths)
        out["n_samples"] = len(legacy["sample_ids"]) if "sample_ids" in legacy else None
        out["format"] = "pt"
    out["seconds"] = {r.step: r.manifest.timing.get("seconds") for r in records if r.manifest}
    out["has_partial_folder"] = any((r.path / PARTIAL_DIR).exists() for r in records)
    return out


__all__ = [
    "Run",
    "load_run",
    "run_summary",
]
