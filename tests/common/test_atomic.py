"""Crash-safe writes: a reader sees the old file or the whole new one; hashes match hashlib."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from repdrift.common.atomic import (
    TMP_MARK,
    atomic_path,
    atomic_write_bytes,
    atomic_write_with,
    remove_stale_temporaries,
    sha256_bytes,
    sha256_file,
)


def _others(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_write_creates_and_replaces_with_the_umask_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert _others(tmp_path, "a.json") == []  # no temporary left behind
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "layer.bin"
    path.write_bytes(b"complete old file")

    def torn(tmp: Path) -> None:
        tmp.write_bytes(b"half of the ne")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write_with(path, torn)
    assert path.read_bytes() == b"complete old file"
    assert _others(tmp_path, "layer.bin") == []


def test_the_temporary_lives_beside_the_destination_until_the_body_ends(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    with atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and TMP_MARK in tmp.name and tmp.name.startswith(".")
        tmp.write_bytes(b"1")
        assert not path.exists()  # invisible under its name until renamed
    assert path.read_bytes() == b"1" and not tmp.exists()


def test_hashes_equal_hashlib_across_block_boundaries(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) * 2 + 17)  # two 1 MiB blocks and a tail
    path = tmp_path / "big"
    path.write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == want == sha256_bytes(data)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = tmp_path / f".layer_0.safetensors{TMP_MARK}4242"
    stale.write_bytes(b"torn")
    keep = [tmp_path / "layer_0.safetensors", tmp_path / ".hidden", tmp_path / f"a{TMP_MARK}1"]
    for p in keep:
        p.write_bytes(b"x")
    (tmp_path / f".folder{TMP_MARK}1").mkdir()  # only files are temporaries
    remove_stale_temporaries(tmp_path)
    assert not stale.exists()
    assert all(p.exists() for p in keep) and (tmp_path / f".folder{TMP_MARK}1").is_dir()
    remove_stale_temporaries(tmp_path / "missing")  # no folder: nothing to do
