"""Recognise a complete run of the same request before any model loads.

A re-run of ``repdrift extract`` (or of a study) whose step 0 is already complete should cost a
second, not a model load. The request (the files of the model and base folders by name, size
and modification time; the samples; the extraction settings) is summarised in one sha256 that
extraction stores in the manifest (``extra.request_sha256``). When a later call makes the same
request and the step's files still match their checksums, there is nothing to do.

What this cannot vouch for without loading (a hub id) takes the normal path, where the store
compares every identity field once the model has loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repdrift.errors import IntegrityError
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.sources import local_or_hub
from repdrift.store.manifest import MANIFEST_NAME, read_manifest, step_dir_name
from repdrift.store.steps import inspect_step
from repdrift.tasks.samples import Samples, load_samples
from repdrift.tasks.settings import SampleSettings

logger = logging.getLogger(__name__)

REQUEST_KEY = "request_sha256"


def _folder_state(source: str | Path | None) -> list[Any] | None:
    """Name, size and mtime of a local folder's files; None for a hub id (cannot vouch)."""
    if source is None:
        return []
    where = local_or_hub(source)
    if not isinstance(where, Path) or not where.is_dir():
        return None
    return [str(where)] + [
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(where.iterdir())
        if p.is_file()
    ]


def request_sha256(
    model: str | Path,
    base: str | Path | None,
    samples: Samples,
    options: ExtractionOptions,
    *,
    adapter_disabled: bool = False,
) -> str | None:
    """One sha256 for everything that decides a step's content, or None when a source is a
    hub id (its files are not known before loading)."""
    model_state, base_state = _folder_state(model), _folder_state(base)
    if model_state is None or base_state is None:
        return None
    request = {
        "model": model_state,
        "base": base_state,
        "adapter_disabled": adapter_disabled,
        "task": samples.task,
        "split": samples.split,
        "sample_ids": hashlib.sha256(json.dumps(samples.ids).encode()).hexdigest(),
        "samples_sha256": samples.source.get("samples_sha256"),
        "max_length": samples.max_length,
        "truncation": samples.truncation,
        "options": options.model_dump(mode="json"),
    }
    blob = json.dumps(request, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def already_complete(step_dir: Path, request: str | None) -> bool:
    """Whether ``step_dir`` is complete, made for ``request``, and its files verify."""
    if request is None or not (step_dir / MANIFEST_NAME).is_file():
        return False
    try:
        manifest = read_manifest(step_dir / MANIFEST_NAME)
    except IntegrityError:
        return False  # the normal path reports it
    if manifest.status != "complete" or manifest.extra.get(REQUEST_KEY) != request:
        return False
    step = int(step_dir.name.rsplit("_", 1)[-1])
    if inspect_step(step, step_dir, check_hashes=True).problems:
        return False
    logger.info("%s is already complete for this request; nothing to do", step_dir)
    return True


@dataclass(frozen=True)
class Request:
    """One extraction call, checked: what to load, the samples read once, the settings, the
    call's fingerprint and whether ``out``'s step 0 is already complete for it."""

    model: str | Path
    base: str | Path | None
    out: Path
    samples: Samples
    options: ExtractionOptions
    sha256: str | None
    complete: bool

    def needs_model(self, *, base_out: str | Path | None, checkpoints: bool) -> bool:
        """Whether carrying the call out loads a model: not when step 0 is complete for it and
        neither a base run nor checkpoints are asked for."""
        return not self.complete or base_out is not None or checkpoints


def check_request(
    model: str | Path,
    *,
    out: str | Path,
    samples: SampleSettings,
    options: ExtractionOptions,
    base: str | Path | None = None,
) -> Request:
    """Read and check the samples (before any model loads), then ask whether ``out``'s step 0
    is already complete for this very call. Imports neither torch nor transformers."""
    chosen = load_samples(samples)
    request = request_sha256(model, base, chosen, options)
    out = Path(out)
    complete = already_complete(out / step_dir_name(0), request)
    return Request(model, base, out, chosen, options, request, complete)


__all__ = ["REQUEST_KEY", "Request", "already_complete", "check_request", "request_sha256"]
