"""The deterministic safetensors writer: standard files, the same bytes every time, one dtype table."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from repdrift.store.tensorfile import DTYPE_CODES, save_safetensors


def _header(path: Path) -> tuple[int, dict]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return n, json.loads(raw[8 : 8 + n])


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "layer_1": torch.randn(5, 3, generator=gen, dtype=torch.float64),
        "layer_0": torch.randn(4, 2, generator=gen).to(torch.bfloat16),
        "ids": torch.arange(7, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }


def test_round_trip_through_safe_open_with_metadata(tmp_path: Path) -> None:
    tensors = _tensors()
    path = tmp_path / "t.safetensors"
    save_safetensors(tensors, path, {"b": "2", "a": 1})
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata() == {"a": "1", "b": "2"}  # values as strings
        assert sorted(fh.keys()) == sorted(tensors)
        for name, t in tensors.items():
            got = fh.get_tensor(name)
            assert got.dtype == t.dtype and got.shape == t.shape
            assert torch.equal(got, t)


def test_bytes_do_not_depend_on_insertion_order(tmp_path: Path) -> None:
    tensors = _tensors()
    save_safetensors(tensors, tmp_path / "a", {"x": "1", "y": "2"})
    reverse = dict(reversed(list(tensors.items())))
    save_safetensors(reverse, tmp_path / "b", {"y": "2", "x": "1"})
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    n, header = _header(tmp_path / "a")
    assert n % 8 == 0  # data starts 8-byte aligned, as the reference writer's
    names = [k for k in header if k != "__metadata__"]
    assert names == sorted(names)
    offsets = [header[k]["data_offsets"] for k in names]
    assert offsets[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(offsets))


def test_dtype_codes_match_the_reference_writer_and_numpy(tmp_path: Path) -> None:
    for code, (torch_name, np_dtype) in DTYPE_CODES.items():
        dtype = getattr(torch, torch_name.removeprefix("torch."))
        t = torch.ones(2, dtype=dtype)
        save_file({"t": t}, str(tmp_path / "ref"))
        save_safetensors({"t": t}, tmp_path / "ours")
        assert _header(tmp_path / "ref")[1]["t"]["dtype"] == code
        assert _header(tmp_path / "ours")[1]["t"]["dtype"] == code
        if np_dtype is not None:  # what the reader memory-maps the bytes as
            assert np.dtype(np_dtype).itemsize == t.element_size()
            raw = (tmp_path / "ours").read_bytes()[-2 * t.element_size() :]
            assert np.frombuffer(raw, dtype=np_dtype).tolist() == t.tolist()


def test_a_dtype_without_a_code_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="complex64"):
        save_safetensors({"z": torch.zeros(2, dtype=torch.complex64)}, tmp_path / "z")
