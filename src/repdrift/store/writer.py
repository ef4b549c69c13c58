"""Run directories: streaming writes, resume, verification and reading.

Layout (see shared/DESIGN.md)::

    RUN/step_000000/layer_0.safetensors ... layer_{L-1}.safetensors
                    embeddings.safetensors        optional
                    adapter_weights/lora.safetensors   LoRA only
                    metadata.json                 the manifest (commit record)
                    .partial/chunk_00000.safetensors   only while extracting

Writing (:class:`StepWriter`): chunks of pooled outputs of the length-sorted order are
written to ``.partial/`` as they are produced and listed in the partial manifest; a resumed
run skips the listed chunks. At the end each layer file is assembled in original sample
order, one layer at a time, the manifest is rewritten with status ``complete`` and
``.partial/`` is removed. Every write is atomic (temp file, fsync, rename, fsync folder), so a
crash at any moment leaves a resumable partial step or a complete one.

Reading is :mod:`repdrift.store.reader` (:func:`~repdrift.store.reader.load_run`, verified,
refuses partial or corrupt runs; :func:`~repdrift.store.reader.run_summary` for
``repdrift inspect``) and :mod:`repdrift.store.steps` (checking one step's files).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from repdrift.common.atomic import (
    atomic_write_with,
    fsync_dir,
    remove_stale_temporaries,
    sha256_file,
)
from repdrift.common.version import __version__
from repdrift.errors import InputError, IntegrityError
from repdrift.store.assemble import PooledChunk, assemble_layer, layer_writer, plan_from_chunks
from repdrift.store.manifest import (
    EXTERNAL_TOKEN_IDS,
    MANIFEST_NAME,
    PARTIAL_DIR,
    SCHEMA_VERSION,
    FileEntry,
    Manifest,
    first_difference,
    load_json,
    parse_manifest,
    step_dir_name,
    write_manifest,
)
from repdrift.store.steps import inspect_step
from repdrift.store.tensorfile import save_safetensors

try:  # advisory lock so two processes never write the same step (released on kill -9)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["StepWriter", "write_run"]

logger = logging.getLogger(__name__)

_LAYERISH = re.compile(r"^(layer_\d+|embeddings)\.(safetensors|pt)$")
_LOCK_NAME = ".lock"


def chunk_file_name(index: int) -> str:
    """``7`` -> ``chunk_00007.safetensors``."""
    return f"chunk_{index:05d}.safetensors"


class StepWriter:
    """Writes one step folder: partial chunks, then the assembled layer files.

    Use :meth:`open`, then :meth:`write_chunk` for each chunk not in :attr:`done_chunks`,
    optionally :meth:`add_file`, then :meth:`finish`; :meth:`close` (or the context
    manager) releases the folder lock.

    Attributes
    ----------
    step_dir : Path
    manifest : Manifest
        The current manifest (partial until :meth:`finish`).
    complete : bool
        True when the step was already complete with the same settings (nothing to do).
    """

    def __init__(
        self, step_dir: Path, manifest: Manifest, *, complete: bool, lock: int | None
    ) -> None:
        self.step_dir = step_dir
        self.manifest = manifest
        self.complete = complete
        self._lock = lock
        self._extra: dict[str, FileEntry] = {}

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, step_dir: str | Path, manifest: Manifest) -> StepWriter:
        """Start a new step, resume a partial one or recognise a complete one.

        Parameters
        ----------
        step_dir : str or Path
            The ``step_XXXXXX`` folder (created if missing).
        manifest : Manifest
            The settings of this extraction, status ``partial`` with no chunks or files.

        Raises
        ------
        InputError
            The folder holds a run with different settings (the message names the first
            differing field), a legacy run, or unlisted layer files; nothing is deleted.
        IntegrityError
            The existing manifest is unreadable or invalid.
        """
        step_dir = Path(step_dir)
        step_dir.mkdir(parents=True, exist_ok=True)
        lock = _acquire_lock(step_dir)
        try:
            writer = cls._open_locked(step_dir, manifest, lock)
        except BaseException:
            _release_lock(step_dir, lock)
            raise
        return writer

    @classmethod
    def _open_locked(cls, step_dir: Path, manifest: Manifest, lock: int | None) -> StepWriter:
        path = step_dir / MANIFEST_NAME
        remove_stale_temporaries(step_dir)
        remove_stale_temporaries(step_dir / PARTIAL_DIR)
        if not path.exists():
            unlisted = sorted(p.name for p in step_dir.iterdir() if _LAYERISH.match(p.name))
            if unlisted:
                raise InputError(
                    f"{step_dir} already holds layer files ({', '.join(unlisted[:3])}...) but no manifest "
                    "(a legacy run?); choose a new --out, nothing was changed"
                )
            write_manifest(path, manifest)
            logger.info("new run step %s", step_dir)
            return cls(step_dir, manifest, complete=False, lock=lock)
        raw = load_json(path)
        if "schema_version" not in raw:
            raise InputError(
                f"{path} is a legacy manifest (no schema_version); choose a new --out, nothing was changed"
            )
        existing = parse_manifest(raw, path)
        diff = first_difference(existing, manifest)
        if diff is not None:
            field, detail = diff
            verb = "overwrite" if existing.status == "complete" else "resume"
            raise InputError(
                f"{step_dir}: cannot {verb} this {existing.status} run: '{field}' differs ({detail}); "
                "use a new --out (nothing was changed)"
            )
        if existing.status == "complete":
            problems = inspect_step(existing.step, step_dir, check_hashes=True).problems
            if problems:
                raise IntegrityError(
                    f"{problems[0]}: this complete step no longer verifies; delete {step_dir} "
                    "to extract it again (nothing was changed)"
                )
            partial = step_dir / PARTIAL_DIR
            if partial.exists():  # crash after the commit, before the clean-up
                shutil.rmtree(partial, ignore_errors=True)
            logger.info("%s is already complete with the same settings; nothing to do", step_dir)
            return cls(step_dir, existing, complete=True, lock=lock)
        # Resume: keep the original plan (chunk size) and the chunks that still verify.
        good = {}
        for name, entry in existing.chunks.items():
            chunk_path = step_dir / PARTIAL_DIR / name
            if (
                chunk_path.is_file()
                and chunk_path.stat().st_size == entry.bytes
                and sha256_file(chunk_path) == entry.sha256
            ):
                good[name] = entry
            else:
                logger.warning("chunk %s failed verification; it will be recomputed", chunk_path)
        resumed = manifest.model_copy(
            update={
                "chunk_size": existing.chunk_size,
                "chunks": good,
                "timing": {
                    **existing.timing,
                    "resumes": int(existing.timing.get("resumes", 0)) + 1,
                },
            }
        )
        write_manifest(path, resumed)
        logger.info("resuming %s: %d chunk(s) already done", step_dir, len(good))
        return cls(step_dir, resumed, complete=False, lock=lock)

    # ------------------------------------------------------------------ writing

    @property
    def done_chunks(self) -> set[int]:
        """Numbers of the chunks already on disk (to skip)."""
        return {int(name[6:11]) for name in self.manifest.chunks}

    def write_chunk(self, chunk: PooledChunk) -> None:
        """Write one chunk (all layers) and record it in the partial manifest."""
        import torch  # here, not at the top: reading runs (inspect, compare) needs no torch

        self._check_open()
        tensors = {
            "index": torch.from_numpy(np.ascontiguousarray(chunk.sample_indices, dtype=np.int64)),
            "lengths": torch.from_numpy(np.ascontiguousarray(chunk.lengths, dtype=np.int64)),
        }
        for name in self.manifest.layers:
            tensors[f"layer/{name}"] = chunk.layers[name].to(torch.float32).contiguous()
        partial = self.step_dir / PARTIAL_DIR
        partial.mkdir(exist_ok=True)
        name = chunk_file_name(chunk.index)
        path = partial / name
        atomic_write_with(path, lambda tmp: save_safetensors(tensors, tmp))
        # The chunk exists for readers only once the manifest lists it.
        self.manifest.chunks[name] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
        write_manifest(self.step_dir / MANIFEST_NAME, self.manifest)

    def add_file(self, relative: str, write: Callable[[Path], None]) -> None:
        """Write an extra file (e.g. ``adapter_weights/lora.safetensors``) to list at finish.

        ``write(tmp_path)`` must create the file; it is moved into place atomically.
        """
        self._check_open()
        target = self.step_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_with(target, write)
        self._extra[relative] = FileEntry(sha256=sha256_file(target), bytes=target.stat().st_size)

    def finish(
        self, *, n_chunks: int, timing: dict | None = None, peak_memory: dict | None = None
    ) -> Manifest:
        """Assemble the layer files in original order and commit the complete manifest.

        Parameters
        ----------
        n_chunks : int
            Number of chunks in the plan; all must be on disk.
        timing, peak_memory : dict, optional
            Merged into the manifest.
        """
        self._check_open()
        m = self.manifest
        missing = [k for k in range(n_chunks) if chunk_file_name(k) not in m.chunks]
        if missing:
            raise IntegrityError(
                f"{self.step_dir}: chunk(s) {missing[:5]} were never written; cannot assemble"
            )
        chunk_paths = [self.step_dir / PARTIAL_DIR / chunk_file_name(k) for k in range(n_chunks)]
        index, lengths, sizes = plan_from_chunks(chunk_paths, m.n_samples)
        files: dict[str, FileEntry] = {}
        dims: dict[str, int] = {}
        for name in m.layers:  # one layer in memory at a time
            tensors = assemble_layer(
                chunk_paths, sizes, name, m.pooling == "tokens", index, lengths
            )
            dims[name] = int(next(iter(tensors.values())).shape[1])
            rel = m.layer_file(name)
            atomic_write_with(self.step_dir / rel, layer_writer(tensors, m.format, name, m.pooling))
            path = self.step_dir / rel
            files[rel] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
            del tensors
        files.update(self._extra)
        done = m.model_copy(
            update={
                "status": "complete",
                "chunks": {},
                "files": files,
                "dims": dims,
                "timing": {**m.timing, **(timing or {})},
                "peak_memory": {**m.peak_memory, **(peak_memory or {})},
            }
        )
        parse_manifest(done.model_dump(mode="json"), self.step_dir / MANIFEST_NAME)  # re-validate
        write_manifest(self.step_dir / MANIFEST_NAME, done)
        shutil.rmtree(self.step_dir / PARTIAL_DIR, ignore_errors=True)
        fsync_dir(self.step_dir)
        self.manifest, self.complete = done, True
        logger.info("wrote %s (%d layers)", self.step_dir, len(m.layers))
        return done

    def close(self) -> None:
        """Release the folder lock."""
        if self._lock is not None:
            _release_lock(self.step_dir, self._lock)
            self._lock = None

    def __enter__(self) -> StepWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.complete:
            raise InputError(f"{self.step_dir} is complete; nothing more can be written")


# ---------------------------------------------------------------------- helpers


def _acquire_lock(step_dir: Path) -> int | None:
    if fcntl is None:  # pragma: no cover
        return None
    fd = os.open(step_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InputError(
            f"{step_dir} is being written by another process; wait for it or use a new --out"
        ) from None
    return fd


def _release_lock(step_dir: Path, fd: int | None) -> None:
    if fd is None:  # pragma: no cover
        return
    # Unlink while still holding the lock, so no other writer can hold it on this inode.
    with contextlib.suppress(OSError):
        (step_dir / _LOCK_NAME).unlink()
    os.close(fd)


def write_run(
    path: str | Path,
    layers: dict[str, np.ndarray],
    *,
    task: str,
    kind: str,
    sample_ids: list[str],
    step: int = 0,
    model: dict | None = None,
    pooling: str = "mean",
    split: str | None = None,
    extra: dict | None = None,
) -> Path:
    """Write pooled representations computed elsewhere as a verified run step.

    Parameters
    ----------
    path : str or Path
        Run directory; the step goes to ``path/step_XXXXXX``.
    layers : dict of str to (n, d) arrays
        Canonical layer name (``embeddings``, ``layer_0``, ...) to pooled vectors, rows in
        ``sample_ids`` order.
    task, kind, sample_ids, step, model, pooling, split, extra
        Manifest fields (``kind``: ``base``, ``full`` or ``lora``; ``model`` is the source
        description, e.g. ``{"path": ..., "training": {"seed": 42}}``).

    Returns
    -------
    Path
        The step folder.
    """
    import torch

    if not layers:
        raise InputError("write_run needs at least one layer")
    n = len(sample_ids)
    arrays = {name: np.asarray(a, dtype=np.float32) for name, a in layers.items()}
    for name, a in arrays.items():
        if a.ndim != 2 or a.shape[0] != n:
            raise InputError(
                f"layer {name!r} has shape {a.shape}; expected ({n}, d) for {n} sample ids"
            )
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        repdrift_version=__version__,
        status="partial",
        step=step,
        kind=kind,
        model=dict(model or {}),
        task=task,
        split=split,
        n_samples=n,
        sample_ids=list(sample_ids),
        pooling=pooling,
        dtype="float32",
        token_ids_sha256=EXTERNAL_TOKEN_IDS,
        layers=list(arrays),
        batch_size=n,
        chunk_size=n,
        extra=dict(extra or {}),
    )
    step_dir = Path(path) / step_dir_name(step)
    with StepWriter.open(step_dir, manifest) as writer:
        if not writer.complete:
            chunk = PooledChunk(
                index=0,
                sample_indices=np.arange(n, dtype=np.int64),
                lengths=np.ones(n, dtype=np.int64),
                layers={name: torch.from_numpy(a) for name, a in arrays.items()},
            )
            writer.write_chunk(chunk)
            writer.finish(n_chunks=1)
    return step_dir


