"""The end-to-end study benchmark runs on a CPU in its quick shape (CI keeps it runnable)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_study_benchmark_quick_prints_the_stage_table():
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(
        [sys.executable, "benchmarks/study.py", "--quick"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for stage in ("extract", "compare", "weights", "figures", "report", "total"):
        row = re.search(rf"^{stage}\s+(\d+\.\d)\s+(\d+\.\d\d)", out, re.MULTILINE)
        assert row is not None, f"no {stage} row in:\n{out}"
        assert float(row.group(1)) >= 0 and float(row.group(2)) >= 0
    assert re.search(r"bare forward .*: \d+\.\d s; extraction [\d,]+ tokens/s", out)
    # the default keeps nothing: a temporary folder, with the report written before removal
    assert "report: (temporary folder, removed) (written)" in out
