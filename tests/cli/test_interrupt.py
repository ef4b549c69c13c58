"""Ctrl-C on the real command line: the resume line, exit 130, the finished chunks kept, and a
re-run that resumes from them (issue 20, case 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repdrift.extraction.to_run import MIN_CHUNKS, POOLED_CHUNK_SAMPLES, default_chunk_size

REPDRIFT = Path(sys.executable).with_name("repdrift")
RESUME_LINE = "interrupted; finished files are kept, re-run the command to resume"


def _chunks_listed(manifest: Path) -> int:
    try:
        return len(json.loads(manifest.read_text())["chunks"])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet, or being replaced


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_line_keeps_chunks_and_the_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        str(REPDRIFT), "extract", "bundled:minilm", "--task", "demo-sst", "--samples", "200",
        "--batch-size", "4", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # as from a shell: Ctrl-C not ignored (a library earlier in the test session may have set
    # SIGINT to SIG_IGN, which children inherit and Python then leaves alone)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    manifest = out / "step_000000" / "metadata.json"
    deadline = time.monotonic() + 240
    while _chunks_listed(manifest) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == RESUME_LINE
    kept = json.loads(manifest.read_text())
    # 200 samples in batches of 4: chunks of ceil(200 / 8) = 25 samples, recorded in the
    # manifest (enough work after the first chunk that a loaded machine still interrupts it)
    assert kept["status"] == "partial" and kept["chunk_size"] == 25
    assert 1 <= len(kept["chunks"]) < 8
    shown = subprocess.run([str(REPDRIFT), "inspect", str(out)], capture_output=True, text=True)
    assert f"step 0: not finished ({len(kept['chunks'])} chunk(s) done)" in shown.stdout

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(kept['chunks'])} chunk(s) already done" in " ".join(again.stderr.split())
    done = json.loads(manifest.read_text())
    assert done["status"] == "complete" and done["n_samples"] == 200 and done["chunk_size"] == 25


@pytest.mark.parametrize(
    ("n", "batch_size", "expected"),
    [
        (120, 8, 15),  # several chunks, not one of 256 that an interrupt would lose
        (120, 32, 32),  # never below one batch: batches do not cross chunks
        (10, 32, 32),  # a run within one batch is one chunk
        (750, 32, 94),
        (100_000, 32, POOLED_CHUNK_SAMPLES),  # large runs keep the cap
    ],
)
def test_pooled_chunks_keep_finished_work_at_any_size(n: int, batch_size: int, expected: int) -> None:
    size = default_chunk_size("mean", 6, 384, lengths=[20] * n, batch_size=batch_size)
    assert size == expected
    assert size == POOLED_CHUNK_SAMPLES or size == batch_size or -(-n // size) == MIN_CHUNKS


def test_token_chunks_hold_at_least_one_batch_of_tokens_and_at_most_the_byte_cap() -> None:
    lengths = [100] * 120  # 12,000 tokens
    assert default_chunk_size("tokens", 6, 384, lengths=lengths, batch_size=8) == 1500
    assert default_chunk_size("tokens", 6, 384, lengths=lengths, batch_size=32) == 3200
    cap = default_chunk_size("tokens", 6, 384)
    assert default_chunk_size("tokens", 6, 384, lengths=[100] * 10**6, batch_size=8) == cap
