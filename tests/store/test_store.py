"""Run directories: crash safety and resume, verification, legacy and pt formats.

Runs are written by the real extraction path on the bundled MiniLM; crashes are real
(``kill -9`` of a subprocess, or an exception raised from the progress callback).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from repdrift.errors import InputError, IntegrityError
from repdrift.extraction.capture import extract_pooled, iter_pooled_chunks
from repdrift.extraction.model_parts import ModelParts, PassPlan
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.to_run import StepRecord, extract_to_run
from repdrift.models.load import load_model
from repdrift.store.legacy_pt import load_pt_safely
from repdrift.store.manifest import read_manifest
from repdrift.store.reader import load_run, run_summary
from repdrift.store.steps import verify_run
from repdrift.store.writer import StepWriter

WORDS = "the a film movie plot was is not very good bad slow tedious delight actors scene".split()
N = 16


class Crash(Exception):
    """Raised from the progress callback to interrupt an extraction midway."""


@pytest.fixture(scope="module")
def minilm(minilm_path: Path):
    return load_model(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def token_ids(minilm) -> list[list[int]]:
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 25)))) for _ in range(N)]
    return [minilm.tokenizer(t)["input_ids"] for t in texts]


def write(minilm, token_ids, step_dir: Path, **kw):
    """extract_to_run with this file's defaults; ``kw``: extraction settings, fields of the
    manifest record (task, max_length, model_info, ...), model parts (forward_inputs, ...) or
    arguments of extract_to_run."""
    settings = {"layers": "all", "batch_size": 3}
    settings |= {k: kw.pop(k) for k in list(kw) if k in ExtractionOptions.model_fields}
    recorded = {"model": kw.pop("model_info", minilm.source)}
    recorded |= {k: kw.pop(k) for k in list(kw) if k in StepRecord.__dataclass_fields__}
    recorded.setdefault("sample_ids", [f"s{i}" for i in range(len(token_ids))])
    parts = ModelParts.of(minilm)
    parts = replace(parts, **{k: kw.pop(k) for k in list(kw) if k in parts.__dataclass_fields__})
    options = {
        "options": ExtractionOptions(**settings),
        "record": StepRecord(**recorded),
        "chunk_size": 4,
        "progress": False,
        **kw,
    }
    return extract_to_run(parts, token_ids, step_dir, **options)


def crash_after(samples: int):
    """A progress callback that raises once ``samples`` samples are done."""
    done = [0]

    def callback(n: int) -> None:
        done[0] += n
        if done[0] >= samples:
            raise Crash

    return callback


def layer_bytes(run: Path) -> dict[str, bytes]:
    step = run / "step_000000"
    return {
        p.name: p.read_bytes()
        for p in sorted(step.iterdir())
        if p.name.startswith(("layer_", "embeddings"))
    }


@pytest.fixture(scope="module")
def complete_run(minilm, token_ids, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "complete"
    write(minilm, token_ids, run / "step_000000")
    return run


@pytest.fixture(scope="module")
def partial_run(minilm, token_ids, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run interrupted in its second chunk."""
    run = tmp_path_factory.mktemp("runs") / "partial"
    with pytest.raises(Crash):
        write(minilm, token_ids, run / "step_000000", progress=crash_after(5))
    return run


@pytest.fixture
def run_copy(complete_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(complete_run, tmp_path / "copy"))


# --------------------------------------------------------------------------- round trips


def test_complete_run_reads_back_in_sample_order(complete_run: Path, minilm, token_ids) -> None:
    assert verify_run(complete_run) == []
    run = load_run(complete_run)
    assert run.sample_ids == [f"s{i}" for i in range(N)]
    assert run.layers == ["embeddings"] + [f"layer_{i}" for i in range(6)]
    ref = extract_pooled(replace(ModelParts.of(minilm), pad_id=0), token_ids, layers="all")
    for name in run.layers:
        got = run.layer(name)
        assert got.shape == (N, 384) and got.dtype == np.float32
        np.testing.assert_allclose(got, ref.layers[name].numpy(), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(run.layer(name, mmap=True), got)
    assert run.layer(3).shape == (N, 384)
    m = run.manifest
    assert m.status == "complete" and m.schema_version == 1 and m.pooling == "mean"
    assert set(m.files) == {f"{name}.safetensors" for name in run.layers}
    assert m.model["weights_sha256"] == minilm.source["weights_sha256"]
    assert not (complete_run / "step_000000" / ".partial").exists()


def test_rerunning_a_complete_run_is_a_noop(run_copy: Path, minilm, token_ids, caplog) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (run_copy / "step_000000").iterdir()}
    calls = []
    with caplog.at_level(logging.INFO, logger="repdrift.store"):
        write(minilm, token_ids, run_copy / "step_000000", progress=calls.append)
    assert calls == [] and "already complete" in caplog.text
    after = {p.name: p.stat().st_mtime_ns for p in (run_copy / "step_000000").iterdir()}
    assert after == before


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_token_level_round_trip(minilm, token_ids, tmp_path: Path, fmt: str) -> None:
    write(
        minilm,
        token_ids,
        tmp_path / "tok" / "step_000000",
        pooling="tokens",
        layers=[0, 5],
        chunk_size=40,
        format=fmt,
    )
    run = load_run(tmp_path / "tok")
    ref = extract_pooled(
        replace(ModelParts.of(minilm), pad_id=0), token_ids, layers=[0, 5], pooling="tokens"
    )
    for name in ("layer_0", "layer_5"):
        tokens, offsets = run.tokens(name)
        np.testing.assert_array_equal(offsets, ref.offsets.numpy())
        np.testing.assert_allclose(tokens, ref.layers[name].numpy(), rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="tokens"):
        run.layer("layer_0")


def test_pt_format_round_trip(complete_run: Path, minilm, token_ids, tmp_path: Path) -> None:
    write(minilm, token_ids, tmp_path / "pt" / "step_000000", format="pt")
    run = load_run(tmp_path / "pt")
    reference = load_run(complete_run)
    assert sorted(run.manifest.files) == sorted(f"{name}.pt" for name in run.layers)
    for name in run.layers:
        plain = torch.load(
            tmp_path / "pt" / "step_000000" / f"{name}.pt", weights_only=True
        )  # what old scripts do
        assert isinstance(plain, torch.Tensor) and plain.shape == (N, 384)
        np.testing.assert_array_equal(run.layer(name), plain.numpy())
        np.testing.assert_array_equal(run.layer(name), reference.layer(name))  # same computation


# --------------------------------------------------------------------------- crashes and resume


CHILD = """
import json, sys, time
from repdrift.models.load import load_model
from repdrift.extraction.options import ExtractionOptions
from repdrift.extraction.model_parts import ModelParts
from repdrift.extraction.to_run import StepRecord, extract_to_run
ids = json.load(open(sys.argv[1]))
loaded = load_model(sys.argv[3], device="cpu")
def slow(n):
    time.sleep(0.4)
record = StepRecord(sample_ids=[f"s{i}" for i in range(len(ids))], model=loaded.source)
extract_to_run(ModelParts.of(loaded), ids, sys.argv[2], record=record,
    options=ExtractionOptions(layers="all", batch_size=3), chunk_size=4, progress=slow)
"""


def test_kill_9_then_resume_is_byte_identical(
    minilm_path: Path, minilm, token_ids, complete_run: Path, tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(token_ids))
    step = tmp_path / "killed" / "step_000000"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(ids_file), str(step), str(minilm_path)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            manifest = step / "metadata.json"
            if manifest.exists() and json.loads(manifest.read_text())["chunks"]:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the child finished or died before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL

    # A killed run is partial: readers refuse it, inspect says so.
    assert any("partial" in p for p in verify_run(step.parent))
    with pytest.raises(IntegrityError, match="partial"):
        load_run(step.parent)
    assert run_summary(step.parent)["status"] == "partial"
    done_before = len(json.loads((step / "metadata.json").read_text())["chunks"])
    assert 1 <= done_before < 4

    computed = []
    write(minilm, token_ids, step, progress=computed.append)
    assert sum(computed) == N - 4 * done_before  # finished chunks were not recomputed
    assert verify_run(step.parent) == []
    assert layer_bytes(step.parent) == layer_bytes(complete_run)
    resumed, clean = (
        read_manifest(step / "metadata.json"),
        read_manifest(complete_run / "step_000000" / "metadata.json"),
    )
    ignore = {"timing", "peak_memory"}
    assert resumed.model_dump(exclude=ignore) == clean.model_dump(exclude=ignore)
    assert not (step / ".partial").exists()


def test_interrupted_run_resumes_and_matches(
    minilm, token_ids, complete_run: Path, tmp_path: Path
) -> None:
    step = tmp_path / "run" / "step_000000"
    with pytest.raises(Crash):
        write(minilm, token_ids, step, progress=crash_after(9))  # dies inside chunk 2
    assert len(read_manifest(step / "metadata.json").chunks) == 2
    write(minilm, token_ids, step)
    assert layer_bytes(step.parent) == layer_bytes(complete_run)


def test_a_failing_forward_keeps_the_chunks_already_finished(
    minilm, token_ids, complete_run: Path, tmp_path: Path
) -> None:
    """Chunks are handed to the writer one batch late (so host copies overlap the next
    forward); a forward that fails must still leave every finished chunk on disk."""
    calls = [0]

    def failing(ids, mask):
        calls[0] += 1
        if calls[0] == 5:  # the first batch of the third chunk (chunks of 4, batches of 3 + 1)
            raise Crash
        return minilm.forward_inputs(ids, mask)

    step = tmp_path / "run" / "step_000000"
    with pytest.raises(Crash):
        # the complete run's batching: other batch shapes may round differently on several
        # BLAS threads, and the resumed run is compared byte for byte
        write(minilm, token_ids, step, forward_inputs=failing)
    assert len(read_manifest(step / "metadata.json").chunks) == 2
    write(minilm, token_ids, step)
    assert layer_bytes(step.parent) == layer_bytes(complete_run)


def test_crash_during_assembly_leaves_unlisted_files_ignored(
    minilm, token_ids, complete_run: Path, tmp_path: Path
) -> None:
    """All chunks written, a torn layer file on disk, no commit: resume reassembles only."""
    step = tmp_path / "run" / "step_000000"
    with pytest.raises(Crash):
        write(minilm, token_ids, step, progress=crash_after(N))  # dies after the last batch
    writer = StepWriter.open(step, read_manifest(step / "metadata.json"))
    plan = PassPlan(tuple(writer.manifest.layers), batch_size=3, chunk_size=4)
    parts = replace(ModelParts.of(minilm), pad_id=0, final_norm=None)
    for chunk in iter_pooled_chunks(parts, token_ids, plan, skip_chunks=writer.done_chunks):
        writer.write_chunk(chunk)
    writer.close()  # a crash before finish(): no layer file is listed anywhere
    (step / "layer_2.safetensors").write_bytes(b"torn write")
    with pytest.raises(IntegrityError, match="partial"):
        load_run(step.parent)
    computed = []
    write(minilm, token_ids, step, progress=computed.append)
    assert computed == []  # nothing recomputed
    assert layer_bytes(step.parent) == layer_bytes(complete_run)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pooling": "max"}, "pooling"),
        ({"layers": [0, 1]}, "layers"),
        ({"dtype": "bfloat16"}, "dtype"),
        ({"max_length": 64}, "max_length"),
        ({"task": "rte"}, "task"),
        ({"model_info": {"weights_sha256": "0" * 64}}, "model.weights_sha256"),
    ],
)
def test_resume_with_other_settings_is_refused(
    minilm, token_ids, partial_run: Path, tmp_path: Path, change: dict, field: str
) -> None:
    step = Path(shutil.copytree(partial_run, tmp_path / "run")) / "step_000000"
    before = {p.relative_to(step): p.read_bytes() for p in step.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match=rf"'{field}' differs.*new --out"):
        write(minilm, token_ids, step, **change)
    after = {p.relative_to(step): p.read_bytes() for p in step.rglob("*") if p.is_file()}
    assert after == before  # nothing written or deleted


def test_other_samples_are_refused_naming_the_position(minilm, token_ids, run_copy: Path) -> None:
    ids = [f"s{i}" for i in range(N)]
    ids[3] = "other"
    with pytest.raises(
        InputError, match=r"'sample_ids' differs \(position 3: 's3' on disk vs 'other' now\)"
    ):
        write(minilm, token_ids, run_copy / "step_000000", sample_ids=ids)
    with pytest.raises(InputError, match="token_ids_sha256"):  # same ids, other inputs
        write(
            minilm,
            [[*t[:-2], t[-1]] if len(t) > 3 else t for t in token_ids],
            run_copy / "step_000000",
        )


def test_second_writer_is_locked_out(minilm, token_ids, tmp_path: Path) -> None:
    step = tmp_path / "run" / "step_000000"
    with pytest.raises(Crash):
        write(minilm, token_ids, step, progress=crash_after(1))
    with (
        StepWriter.open(step, read_manifest(step / "metadata.json")),
        pytest.raises(InputError, match="another process"),
    ):
        write(minilm, token_ids, step)


# --------------------------------------------------------------------------- verification


def test_truncated_layer_file_is_reported_and_refused(run_copy: Path) -> None:
    path = run_copy / "step_000000" / "layer_2.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    problems = verify_run(run_copy)
    assert (
        len(problems) == 1 and "layer_2.safetensors" in problems[0] and "truncated" in problems[0]
    )
    with pytest.raises(IntegrityError, match=r"layer_2\.safetensors"):
        load_run(run_copy)
    with pytest.raises(IntegrityError, match=r"layer_2\.safetensors"):
        load_run(run_copy, verify=False)  # the size check still runs


def test_edited_layer_file_is_reported_and_refused(run_copy: Path) -> None:
    path = run_copy / "step_000000" / "layer_4.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # same size, one bit of one float changed
    path.write_bytes(bytes(data))
    problems = verify_run(run_copy)
    assert len(problems) == 1 and "layer_4.safetensors" in problems[0] and "sha256" in problems[0]
    with pytest.raises(IntegrityError, match=r"layer_4\.safetensors"):
        load_run(run_copy)


def test_missing_file_and_invalid_manifest(run_copy: Path) -> None:
    step = run_copy / "step_000000"
    (step / "layer_0.safetensors").unlink()
    assert any("layer_0.safetensors: missing" in p for p in verify_run(run_copy))
    raw = json.loads((step / "metadata.json").read_text())
    raw["pooling"] = "avg"
    (step / "metadata.json").write_text(json.dumps(raw))
    with pytest.raises(IntegrityError, match=r"metadata.json: field 'pooling'"):
        load_run(run_copy)
    raw["pooling"], raw["schema_version"] = "mean", 99
    (step / "metadata.json").write_text(json.dumps(raw))
    assert "newer than this repdrift" in verify_run(run_copy)[0]
    (step / "metadata.json").write_text('{"schema_version": 1, ')
    assert "not a readable JSON" in verify_run(run_copy)[0]


def test_run_summary(minilm_path: Path, complete_run: Path) -> None:
    s = run_summary(complete_run)
    assert s["status"] == "complete" and s["problems"] == []
    assert s["n_samples"] == N and s["pooling"] == "mean" and s["steps"] == [0]
    assert (
        s["dims"]["layer_5"] == 384 and s["kind"] == "base" and s["model"] == str(minilm_path.resolve())
    )
    assert s["size_bytes"] > 7 * N * 384 * 4 and s["seconds"][0] > 0


# --------------------------------------------------------------------------- legacy .pt runs


def test_legacy_pt_run_loads_with_a_warning(tmp_path: Path, caplog) -> None:
    step = tmp_path / "legacy" / "step_000000"
    step.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((5, 8)).astype(np.float32) for _ in range(3)]
    for i, a in enumerate(arrays):
        torch.save(torch.from_numpy(a), step / f"layer_{i}.pt")
    (step / "metadata.json").write_text(
        json.dumps({"task": "sst2", "model_name": "bert", "sample_ids": list("abcde")})
    )
    with caplog.at_level(logging.WARNING, logger="repdrift.runs"):
        run = load_run(tmp_path / "legacy")
    assert "legacy" in caplog.text and run.legacy and run.manifest is None
    assert run.layers == ["layer_0", "layer_1", "layer_2"] and run.sample_ids == list("abcde")
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(run.layer(i), a)
    assert run_summary(tmp_path / "legacy")["status"] == "legacy"
    with pytest.raises(InputError, match="legacy"):
        StepWriter.open(step, read_manifest_like(step))


def read_manifest_like(step: Path):
    """Any manifest (the writer must refuse before looking at it)."""
    from repdrift.store.manifest import Manifest

    return Manifest.model_construct(layers=["layer_0"])


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    step = tmp_path / "legacy" / "step_000000"
    step.mkdir(parents=True)
    torch.save(torch.zeros(3, 4), step / "layer_0.pt")
    torch.save({"pooled": Evil(marker)}, step / "layer_1.pt")
    with pytest.raises(IntegrityError, match=r"layer_1\.pt: refused to load"):
        load_pt_safely(step / "layer_1.pt")
    assert any("layer_1.pt" in p for p in verify_run(tmp_path / "legacy"))
    with pytest.raises(IntegrityError, match=r"layer_1\.pt"):
        load_run(tmp_path / "legacy")
    with pytest.raises(IntegrityError, match=r"layer_1\.pt"):
        load_run(tmp_path / "legacy", verify=False).layer(1)
    assert not marker.exists()
