"""Streaming extraction of any torch model into one step folder of a run directory.

:func:`extract_to_run` drives :func:`repdrift.extraction.capture.iter_pooled_chunks` into a
:class:`repdrift.store.writer.StepWriter`: chunks of pooled outputs go to disk as they are produced
(memory does not grow with the number of samples), a partial step is resumed, and the layer
files are assembled at the end. It needs no :mod:`repdrift.models` / :mod:`repdrift.tasks`
objects: a :class:`~repdrift.extraction.model_parts.ModelParts` and token ids are enough, with
the settings as one
:class:`~repdrift.extraction.options.ExtractionOptions` and what the manifest records about
the samples and the model as one :class:`StepRecord`.
"""

from __future__ import annotations

import hashlib
import math
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from repdrift.common.naming import layer_name
from repdrift.common.version import __version__
from repdrift.errors import InputError
from repdrift.extraction.batching import plan_chunks, resolve_layers
from repdrift.extraction.budget import default_max_tokens
from repdrift.extraction.capture import iter_pooled_chunks
from repdrift.extraction.model_parts import ModelParts, PassPlan, input_device
from repdrift.extraction.options import ExtractionOptions
from repdrift.store.manifest import SCHEMA_VERSION, Manifest
from repdrift.store.token_ids import TOKEN_IDS_FILE, TokenText, token_ids_writer
from repdrift.store.writer import StepWriter

# Chunk sizing: pooled chunks hold at most this many samples; token-level chunks are sized so
# one chunk of all requested layers stays near the byte budget. A chunk is the unit a resumed
# run keeps, so a run is cut into at least MIN_CHUNKS of them when its batches allow it.
POOLED_CHUNK_SAMPLES = 256
TOKEN_CHUNK_BYTES = 64 << 20
MIN_CHUNKS = 8


def default_chunk_size(
    pooling: str,
    n_layers: int,
    hidden_size: int | None,
    *,
    lengths: Sequence[int] | None = None,
    batch_size: int = 1,
) -> int:
    """Rows per chunk (samples pooled, tokens for ``tokens``): what an interrupt keeps.

    At most 256 samples pooled, or ~64 MiB of float32 tokens for all layers; with ``lengths``,
    also small enough that the run has :data:`MIN_CHUNKS` chunks (an interrupted run of any
    size keeps its finished chunks), but never below one batch of ``batch_size`` samples
    (batches never cross a chunk, so a smaller chunk would only make batches smaller).

    Parameters
    ----------
    pooling : str
        The pooling mode (``tokens``: rows are tokens).
    n_layers : int
        Layers written per row.
    hidden_size : int or None
        Width of a row (None: 1024 assumed).
    lengths : sequence of int, optional
        The samples' token counts (None: the caps alone).
    batch_size : int
        Samples per forward pass.
    """
    if pooling != "tokens":
        cap = POOLED_CHUNK_SAMPLES
        total = None if lengths is None else len(lengths)
        one_batch = batch_size
    else:
        per_token = n_layers * (hidden_size or 1024) * 4
        cap = max(1, TOKEN_CHUNK_BYTES // per_token)
        total = None if lengths is None else int(sum(lengths))
        one_batch = batch_size * math.ceil(total / len(lengths)) if lengths else 1
    if total is None:
        return cap
    return max(1, min(cap, max(one_batch, math.ceil(total / MIN_CHUNKS))))


def token_ids_sha256(token_ids: Sequence[Sequence[int]]) -> str:
    """sha256 over the exact token ids (length-prefixed, int64), to detect any input change."""
    digest = hashlib.sha256()
    for seq in token_ids:
        arr = np.asarray(seq, dtype=np.int64)
        digest.update(np.int64(len(arr)).tobytes())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def peak_memory(device: torch.device | None = None) -> dict[str, int | None]:
    """Peak host RSS of this process and peak allocated device memory, in bytes."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_bytes = rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB
    device_bytes = None
    if device is not None and device.type == "cuda":
        device_bytes = int(torch.cuda.max_memory_allocated(device))
    return {"rss_bytes": int(rss_bytes), "device_bytes": device_bytes}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    """What the manifest records about the inputs of one step (identity fields are compared
    when resuming).

    Attributes
    ----------
    sample_ids : sequence of str
        n unique ids, one per sample, in the order of the token ids.
    task, split : str, str or None
        Task name and dataset split of the samples.
    data : dict
        Where the samples came from (:attr:`repdrift.tasks.samples.Samples.source`).
    max_length : int or None
        The samples' token limit (truncation).
    tokenizer_sha256 : str or None
    kind : str
        ``base``, ``full`` or ``lora``.
    model : dict
        JSON-safe source description (``architecture`` is filled in from the model's class).
    step : int
        Training step of the checkpoint (0: the final model or a base model).
    extra : dict
        Free-form additions.
    token_text : TokenText or None
        Token-level runs: what the tokenizer says of the ids (special ids, strings, decoded
        samples), kept beside the ids so the analysis never loads a tokenizer; None: ids only.
    """

    sample_ids: Sequence[str]
    task: str = "custom"
    split: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    max_length: int | None = None
    tokenizer_sha256: str | None = None
    kind: str = "base"
    model: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    token_text: TokenText | None = None


def extract_to_run(
    parts: ModelParts,
    token_ids: Sequence[Sequence[int]],
    step_dir: str | Path,
    *,
    record: StepRecord,
    options: ExtractionOptions | None = None,
    chunk_size: int | None = None,
    extra_files: dict[str, Callable[[Path], None]] | None = None,
    progress: bool | Callable[[int], None] = True,
) -> Manifest:
    """Extract pooled layer outputs of ``token_ids`` into one step folder, resumably.

    Chunks of the length-sorted order are written to ``step_dir/.partial`` as they are
    produced, so memory does not grow with the number of samples; a previous partial run
    with the same settings is resumed (finished chunks are skipped); a complete run with the
    same settings is left alone. Layer files hold rows in the order of ``token_ids``.

    Parameters
    ----------
    parts : ModelParts
        The model and what its forward pass needs. ``parts.final_norm`` is applied to the last
        block's output when ``options.final_norm`` is on; the manifest's ``final_norm`` records
        whether it was applied (False without a norm or without the last block among the
        layers).
    token_ids : sequence of sequence of int
        n unpadded token-id lists.
    step_dir : str or Path
        The ``RUN/step_XXXXXX`` folder.
    record : StepRecord
        The sample ids and what the manifest records about the samples and the model.
    options : ExtractionOptions, optional
        ``pooling``, ``layers`` (see :func:`repdrift.extraction.capture.resolve_layers`),
        ``batch_size``, ``max_tokens`` and ``format`` are used; ``dtype`` is recorded as the
        model's dtype (``auto``: the dtype of the model's weights). The model is already
        loaded: ``device``, ``device_map`` and ``trust_remote_code`` do not apply. Without
        ``max_tokens``, a model on CUDA gets a budget sized from the free device memory
        (:func:`repdrift.extraction.budget.default_max_tokens`), recorded in the manifest.
        Default: ``ExtractionOptions()``.
    chunk_size : int, optional
        Rows per chunk (default :func:`default_chunk_size`, from the samples' lengths and the
        batch size); recorded in the manifest, and a resumed run keeps its own.
    extra_files : dict, optional
        ``relative path -> write(tmp_path)`` for extra files listed in the manifest.
    progress : bool or callable
        Rich progress bar (True), none (False), or a callback receiving samples done.

    Returns
    -------
    Manifest
        The complete manifest.

    Raises
    ------
    InputError
        Bad argument, or ``step_dir`` holds a run with different settings (the message names
        the field; nothing is deleted).
    """
    started, t0 = _now(), time.perf_counter()
    opts = options if options is not None else ExtractionOptions()
    rec, model, blocks = record, parts.model, parts.blocks
    sample_ids, pooling = rec.sample_ids, opts.pooling
    names = resolve_layers(opts.layers, len(blocks), has_embeddings=parts.embeddings is not None)
    last_applies = opts.final_norm and layer_name(len(blocks) - 1) in names
    norm = parts.final_norm if last_applies else None
    if len(sample_ids) != len(token_ids):
        raise InputError(f"{len(sample_ids)} sample_ids for {len(token_ids)} token-id lists")
    info = dict(rec.model)
    info.setdefault("architecture", type(model).__name__)
    hidden = getattr(getattr(model, "config", None), "hidden_size", None)
    dtype = opts.dtype
    if dtype == "auto":  # record what the weights really are
        weights = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        dtype = str(weights or torch.float32).removeprefix("torch.")
    device = input_device(model)
    lengths = [len(t) for t in token_ids]
    chunk_size = chunk_size or default_chunk_size(
        pooling, len(names), hidden, lengths=lengths, batch_size=opts.batch_size
    )
    max_tokens = opts.max_tokens
    if max_tokens is None and lengths:
        max_tokens = default_max_tokens(
            model, n_layers=len(names), chunk_rows=chunk_size, longest=max(lengths),
            devices=[device, *{p.device for p in model.parameters()}],
        )  # fmt: skip
    try:
        manifest = Manifest(
            schema_version=SCHEMA_VERSION,
            repdrift_version=__version__,
            status="partial",
            format=opts.format,
            step=rec.step,
            kind=rec.kind,
            model=info,
            task=rec.task,
            split=rec.split,
            data=dict(rec.data),
            n_samples=len(sample_ids),
            sample_ids=[str(s) for s in sample_ids],
            pooling=pooling,
            dtype=dtype,
            max_length=rec.max_length,
            tokenizer_sha256=rec.tokenizer_sha256,
            token_ids_sha256=token_ids_sha256(token_ids),
            layers=names,
            padding_side=parts.padding_side,
            final_norm=norm is not None,
            batch_size=opts.batch_size,
            max_tokens=max_tokens,
            chunk_size=chunk_size,
            timing={"started_at": started},
            extra=dict(rec.extra),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InputError(f"invalid extraction setting '{loc}': {first['msg']}") from None

    with StepWriter.open(step_dir, manifest) as writer:
        if writer.complete:
            return writer.manifest
        chunk_size = writer.manifest.chunk_size  # a resumed run keeps its chunking
        n_chunks = len(plan_chunks(lengths, chunk_size, token_level=pooling == "tokens"))
        plan = PassPlan(tuple(names), pooling, opts.batch_size, max_tokens, chunk_size)
        for chunk in iter_pooled_chunks(
            replace(parts, final_norm=norm), token_ids, plan,
            skip_chunks=writer.done_chunks, progress=progress,
        ):  # fmt: skip
            writer.write_chunk(chunk)
        if pooling == "tokens":  # the ids and their text beside the vectors: which tokens moved
            writer.add_file(TOKEN_IDS_FILE, token_ids_writer(token_ids, text=rec.token_text))
        for rel, write in (extra_files or {}).items():
            writer.add_file(rel, write)
        timing = {"finished_at": _now(), "seconds": round(time.perf_counter() - t0, 3)}
        return writer.finish(n_chunks=n_chunks, timing=timing, peak_memory=peak_memory(device))
