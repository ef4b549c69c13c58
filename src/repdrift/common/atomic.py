"""Crash-safe file writes and content hashes.

A file is written to a temporary name in its destination folder, flushed and fsynced, then
renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows), and the
folder is fsynced so the rename itself survives a power loss. A reader therefore sees either
the old file or the complete new one, never a torn write.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

_BLOCK = 1 << 20
TMP_MARK = ".tmp-"


def _file_mode() -> int:
    # Some writers (safetensors) create files 0600; finished files get the usual umask mode.
    # Read once at import, when no other thread can be changing the umask.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def fsync_dir(folder: Path) -> None:
    """fsync a directory so renames and creations in it are durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it atomically becomes ``path``.

    The body must write and close the temporary file (e.g. ``torch.save(x, tmp)``); the
    file is then fsynced, renamed over ``path`` and the folder fsynced. On an exception the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_with(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` to produce the file, then move it atomically to ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files a crashed writer left in ``folder`` (never listed anywhere)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name.startswith(".") and TMP_MARK in entry.name and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
