"""Metrics resolve devices by the package's one rule (repdrift.common.devices), lazily."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from repdrift import metrics
from repdrift.common.devices import resolve_device
from repdrift.errors import InputError
from repdrift.metrics._inputs import resolve_device as metrics_device


def test_metrics_accept_what_the_rest_of_the_package_accepts() -> None:
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 4))
    on_cpu = metrics.compute("cka_linear", X, Y)
    for device in ("auto", "cpu", torch.device("cpu")):
        assert metrics_device(device) == resolve_device(device)
        assert metrics.compute("cka_linear", X, Y, device=device) == pytest.approx(
            on_cpu, abs=1e-12
        )
    assert metrics_device(None) is None


@pytest.mark.parametrize("device", ["gpu0", "cuda:99"])
def test_bad_or_absent_device_names_the_value(device: str) -> None:
    X = np.eye(6)
    if device == "cuda:99" and torch.cuda.device_count() > 99:  # pragma: no cover
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(InputError, match=f"device='{device}'"):
        metrics.compute("cka_linear", X, X, device=device)
    with pytest.raises(InputError, match=f"device='{device}'"):
        resolve_device(device)


def test_import_repdrift_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, repdrift, repdrift.common.devices;"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
