"""``repdrift import``: the original study's results tree into standard run directories.

Each run folder of the tree (:func:`repdrift.original_study.layout.find_runs`) becomes
``OUT/{task}_{method}_seed{seed}`` (``OUT/{task}_base``) holding ``step_000000`` with
safetensors layer files (``pooled`` (n, d) float32) and a complete manifest, exactly like an
extracted run, so :func:`repdrift.load_run`, ``repdrift inspect`` and :func:`repdrift.compare`
treat it as any run. How each layer became (n, d):

* already pooled ``(n, d)`` ``.pt`` layers: copied as they are (float32);
* unpooled ``(n, seq_len, d)`` layers with the samples and tokenizer given
  (:class:`~repdrift.original_study.token_counts.OriginalSamples`): the mean over real tokens,
  the mask recovered by re-tokenising and checked against every file
  (:mod:`repdrift.original_study.pooling`); pooling ``mean``, with the tokenizer hash, max
  length and samples recorded;
* unpooled layers without them: the mean over every position, padding included, as the
  original analysis did; pooling ``mean_unmasked``, which the comparability checks and the
  report name.

The manifest's ``extra["imported"]`` records the original folder, its metadata and how the
layers were pooled; task, method and seed (from the folder name) are its ``task``, ``kind`` and
``model.training``. LoRA matrices (``adapter_weights/lora_{A,B}_layer_i.pt``) become
``adapter_weights/lora.safetensors`` (:mod:`repdrift.original_study.adapters`). Importing again
leaves a complete run alone and resumes a partial one. Memory does not grow with the number of
samples: the run is written a chunk of rows of every layer at a time, and an unpooled file is
read a block of rows at a time through a memory map.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repdrift.common.naming import BASE, MEAN_UNMASKED, run_name
from repdrift.common.progress import progress_bar
from repdrift.common.version import __version__
from repdrift.errors import InputError, IntegrityError
from repdrift.original_study.adapters import ADAPTER_FILE, lora_alpha_of, lora_file
from repdrift.original_study.layout import OriginalRun, find_runs
from repdrift.original_study.pooling import check_file, open_unpooled, pool_unpooled
from repdrift.original_study.token_counts import OriginalSamples, TokenCounts, token_counts
from repdrift.store.assemble import PooledChunk
from repdrift.store.legacy_pt import (
    is_unpooled,
    legacy_info,
    legacy_layer_files,
    load_pt_mmap,
    pt_layer_arrays,
)
from repdrift.store.manifest import (
    EXTERNAL_TOKEN_IDS,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    Manifest,
    load_json,
)
from repdrift.store.tensorfile import save_safetensors
from repdrift.store.writer import StepWriter

logger = logging.getLogger(__name__)

__all__ = ["import_original", "import_run"]

#: What ``extra["imported"]["format"]`` says of every imported run.
ORIGINAL_FORMAT = "the original study's phase-3 layer files"
#: Samples per chunk of an imported run: what memory holds at once, per layer.
IMPORT_CHUNK_ROWS = 256


def import_original(
    tree: str | Path,
    out: str | Path,
    *,
    samples: OriginalSamples | None = None,
    lora_alpha: float | None = None,
    progress: bool = True,
) -> list[Path]:
    """Import every run of an original results tree into ``out``.

    Parameters
    ----------
    tree
        The original study's results tree (or a folder of its run folders, or one run).
    out
        Folder of the standard runs to write (``out/{task}_{method}_seed{seed}``).
    samples
        How the original tokenised its samples: unpooled layers are then pooled over real
        tokens; only this task's runs are imported. None: unpooled layers are pooled as the
        original analysis did (``mean_unmasked``).
    lora_alpha
        LoRA alpha, when the runs' ``metadata.json`` does not record it (scaling = alpha / r).

    Returns
    -------
    list of Path
        The run directories, base runs first.
    """
    runs = find_runs(tree, task=samples.task if samples is not None else None)
    counts: dict[int, TokenCounts] = {}
    written = []
    with progress_bar(len(runs), enabled=progress, description="import") as advance:
        for run in runs:
            target = Path(out) / run_name(run.task, run.method, run.seed)
            written.append(
                import_run(run, target, samples=samples, lora_alpha=lora_alpha, counts=counts)
            )
            advance(1)
    return written


def import_run(
    run: OriginalRun,
    out: str | Path,
    *,
    samples: OriginalSamples | None = None,
    lora_alpha: float | None = None,
    counts: dict[int, TokenCounts] | None = None,
) -> Path:
    """Import one original run folder into the run directory ``out`` (see the module doc).

    ``counts`` caches the token counts by number of samples across the runs of one task.
    Returns ``out``; a complete run made from the same folder the same way is left alone.

    Raises
    ------
    IntegrityError
        A layer file that is not a plain tensor file, mixes of unpooled and pooled layers,
        row counts that differ between layers, or token counts that cannot have produced the
        files (each names the file).
    InputError
        ``out`` holds a run made differently (the first differing field is named).
    """
    out = Path(out)
    for step_dir in sorted(p for p in run.folder.iterdir() if p.name.startswith("step_")):
        _import_step(run, step_dir, out, samples, lora_alpha, {} if counts is None else counts)
    return out


def _import_step(
    run: OriginalRun,
    step_dir: Path,
    out: Path,
    samples: OriginalSamples | None,
    lora_alpha: float | None,
    counts: dict[int, TokenCounts],
) -> None:
    files = legacy_layer_files(step_dir)
    if not files:
        raise IntegrityError(f"{step_dir}: no layer_i.pt files")
    raw = load_json(step_dir / MANIFEST_NAME) if (step_dir / MANIFEST_NAME).is_file() else {}
    if "schema_version" in raw:
        raise InputError(f"{step_dir}: already a repdrift run; compare it as it is")
    info = legacy_info(raw)
    unpooled = {name: is_unpooled(path) for name, path in files.items()}
    if len(set(unpooled.values())) > 1:
        odd = next(p for n, p in files.items() if unpooled[n] != unpooled[next(iter(files))])
        raise IntegrityError(f"{odd}: unpooled and pooled layer files in one step folder")
    first = next(iter(files.values()))
    n = int(load_pt_mmap(first).shape[0])
    mask = None
    if unpooled[next(iter(files))] and samples is not None:
        if n not in counts:
            counts[n] = token_counts(samples, n)
        mask = counts[n]
    manifest = _manifest(run, step_dir, files, n, info, raw, mask, unpooled[next(iter(files))])
    with StepWriter.open(out / step_dir.name, manifest) as writer:
        if writer.complete:
            logger.info("%s: already imported from %s", out, run.folder)
            return
        sources = _layer_sources(files, n, unpooled[next(iter(files))], mask)
        if mask is not None:  # refused before anything is written: one pass over one file
            check_file(first, mask.lengths, mask.padding_side)
        size = writer.manifest.chunk_size  # a resumed import keeps its chunking
        chunks = range(0, n, size)
        for k, start in enumerate(chunks):  # memory: one chunk of rows of every layer
            if k in writer.done_chunks:
                continue
            rows = slice(start, min(n, start + size))
            layers = {name: torch.from_numpy(read(rows)) for name, read in sources.items()}
            index = np.arange(rows.start, rows.stop, dtype=np.int64)
            writer.write_chunk(PooledChunk(k, index, np.ones(len(index), np.int64), layers))
        adapters = lora_file(step_dir, lora_alpha if lora_alpha is not None else lora_alpha_of(raw))
        if adapters is not None:
            tensors, meta = adapters
            writer.add_file(ADAPTER_FILE, lambda tmp: save_safetensors(tensors, tmp, metadata=meta))
        writer.finish(n_chunks=len(chunks))


def _layer_sources(
    files: dict[str, Path], n: int, unpooled: bool, mask: TokenCounts | None = None
) -> dict[str, Any]:
    """Per layer, ``read(rows) -> (rows, d) float32``; every file checked to hold ``n`` rows."""
    sources: dict[str, Any] = {}
    for name, path in files.items():
        if unpooled:
            mapped = open_unpooled(path)  # opened once, read a chunk of rows at a time
            rows_held = int(mapped.shape[0])
            sources[name] = partial(_pool_rows, path, mapped, mask)
        else:
            arrays = pt_layer_arrays(path)
            if "pooled" not in arrays:
                raise IntegrityError(f"{path}: token-level arrays, not an original layer")
            pooled = arrays["pooled"]  # memory-mapped: a chunk reads only its rows
            rows_held = pooled.shape[0]
            sources[name] = partial(_slice_rows, pooled)
        if rows_held != n:
            raise IntegrityError(f"{path}: {rows_held} rows, {next(iter(files.values())).name} {n}")
    return sources


def _pool_rows(
    path: Path, mapped: torch.Tensor, mask: TokenCounts | None, rows: slice
) -> np.ndarray:
    if mask is None:  # the mean over every position, as the original analysis did
        return pool_unpooled(path, rows=rows, mapped=mapped)
    return pool_unpooled(
        path, lengths=mask.lengths, padding_side=mask.padding_side, rows=rows, mapped=mapped
    )


def _slice_rows(pooled: np.ndarray, rows: slice) -> np.ndarray:
    return np.ascontiguousarray(pooled[rows], dtype=np.float32)


def _manifest(
    run: OriginalRun,
    step_dir: Path,
    files: dict[str, Path],
    n: int,
    info: dict[str, Any],
    raw: dict[str, Any],
    mask: TokenCounts | None,
    unpooled: bool,
) -> Manifest:
    """The partial manifest of an imported step: labels from the folder name, provenance."""
    if mask is not None:
        pooling, how = "mean", "mean over real tokens (mask recovered by re-tokenising)"
    elif unpooled:
        pooling = MEAN_UNMASKED
        how = "mean over every position, padding included, as the original analysis did"
    else:
        pooling, how = info.get("pooling", "mean"), "pooled by the original extractor"
    model: dict[str, Any] = {"path": str(run.folder)}
    if run.method != BASE:
        model["training"] = {"method": run.method, "seed": run.seed}
    ids = info.get("sample_ids") if isinstance(info.get("sample_ids"), list) else None
    if mask is not None:
        ids = list(mask.samples.ids)
        model["tokenizer_path"] = mask.tokenizer.get("tokenizer_path")
    if ids is None or len(ids) != n:
        ids = [str(i) for i in range(n)]  # row numbers: the original kept no ids
    dtype = str(load_pt_mmap(next(iter(files.values()))).dtype).removeprefix("torch.")
    return Manifest(
        schema_version=SCHEMA_VERSION,
        repdrift_version=__version__,
        status="partial",
        step=int(step_dir.name.removeprefix("step_")),
        kind=run.method,
        model=model,
        task=run.task,
        split=mask.samples.split if mask is not None else info.get("split"),
        data=dict(mask.samples.source) if mask is not None else {},
        n_samples=n,
        sample_ids=ids,
        pooling=pooling,
        dtype=str(info.get("dtype", dtype)),
        max_length=mask.samples.max_length if mask is not None else info.get("max_length"),
        tokenizer_sha256=mask.tokenizer.get("tokenizer_sha256") if mask is not None else None,
        token_ids_sha256=EXTERNAL_TOKEN_IDS,
        layers=list(files),
        padding_side=mask.padding_side if mask is not None else "right",
        batch_size=n,
        chunk_size=min(n, IMPORT_CHUNK_ROWS),
        extra={
            "imported": {
                "from": str(step_dir), "format": ORIGINAL_FORMAT,
                "layers": "unpooled (n, seq_len, d)" if unpooled else "pooled (n, d)",
                "pooled": how, "labels": "from the folder name", "metadata": raw,
            }
        },
    )  # fmt: skip
