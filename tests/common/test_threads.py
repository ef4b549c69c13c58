"""One thread setting for torch, OpenMP and BLAS (--threads, REPDRIFT_THREADS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from repdrift.common.threads import available_cores, resolve_threads
from repdrift.errors import InputError


def test_resolution_order(monkeypatch):
    monkeypatch.delenv("REPDRIFT_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resolve_threads() == available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a limit the user set for torch is kept
    assert resolve_threads() == 1
    monkeypatch.setenv("REPDRIFT_THREADS", "3")
    assert resolve_threads() == 3
    assert resolve_threads(1) == 1  # the option wins over the environment


@pytest.mark.parametrize(("value", "where"), [("x", "--threads"), (0, "--threads")])
def test_bad_counts_name_their_source(value, where, monkeypatch):
    with pytest.raises(InputError, match=f"{where}="):
        resolve_threads(value)
    monkeypatch.setenv("REPDRIFT_THREADS", "-2")
    with pytest.raises(InputError, match="REPDRIFT_THREADS='-2': expected at least 1"):
        resolve_threads()


def _probe(env: dict[str, str], code: str) -> dict:
    """Run ``code`` in a fresh interpreter (thread pools start once per process)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "OPENBLAS_", "REPDRIFT_"))}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


PROBE = """
import json, os, numpy, threadpoolctl
{before}
from repdrift.common.threads import configure_threads
n = configure_threads({arg})
import torch
blas = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({{"n": n, "torch": torch.get_num_threads(), "blas": blas,
                   "omp": os.environ["OMP_NUM_THREADS"], "wait": os.environ.get("OMP_WAIT_POLICY")}}))
"""


def test_configure_sets_torch_blas_and_openmp_in_a_fresh_process():
    out = _probe({}, PROBE.format(before="import torch", arg=1))  # torch already imported
    assert out == {"n": 1, "torch": 1, "blas": out["blas"], "omp": "1", "wait": None}
    assert out["blas"] and set(out["blas"]) == {1}
    env = _probe({"REPDRIFT_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"},
                 PROBE.format(before="", arg=None))  # fmt: skip
    assert env["torch"] == 1 and env["omp"] == "1" and env["wait"] == "ACTIVE"  # user's choice kept
