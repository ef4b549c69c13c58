"""Benchmark: streaming debiased linear CKA over token-level rows (time and peak memory).

Default: 10⁵ rows × 1024 dims on both sides, in chunks of 4,096 rows (each chunk drawn from
its own seed, so no process ever holds the whole stream unless it is the one-shot baseline).
Each estimator runs in its own process, so its peak RSS is its own; the runs alternate
``--repeat`` times and print min / median time. Baselines measured in the same run:

- ``one-shot cka_debiased``: every row in memory (float32, converted to float64 by the
  registry), then :func:`repdrift.metrics.compute`; skipped above ``--one-shot-max`` rows.
- ``StreamingLinearCKA``: the existing (biased) streaming estimator on the same stream.
- ``idle``: the interpreter with numpy and repdrift imported (the RSS floor).

    .venv/bin/python benchmarks/streaming.py [--rows 1000000] [--dims 1024] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

from repdrift import metrics

WORKERS = ("idle", "one-shot cka_debiased", "StreamingLinearCKA", "StreamingDebiasedCKA")


def _chunk(i: int, rows: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Chunk i: token-like rows with a mean (X) and a noisy, partly rotated copy (Y)."""
    rng = np.random.default_rng(1000 + i)
    X = rng.standard_normal((rows, d), dtype=np.float32) + 0.5
    Y = np.roll(X, 1, axis=1) * 0.8 + rng.standard_normal((rows, d), dtype=np.float32)
    return X, Y


def _chunks(rows: int, d: int, size: int):
    for i, start in enumerate(range(0, rows, size)):
        yield _chunk(i, min(size, rows - start), d)


def _worker(kind: str, rows: int, d: int, size: int) -> dict[str, float]:
    value, seconds = float("nan"), 0.0
    if kind == "one-shot cka_debiased":
        parts = list(_chunks(rows, d, size))
        X = np.concatenate([p[0] for p in parts])
        Y = np.concatenate([p[1] for p in parts])
        del parts
        t = time.perf_counter()
        value = metrics.compute("cka_debiased", X, Y)
        seconds = time.perf_counter() - t
    elif kind != "idle":
        acc = (
            metrics.StreamingDebiasedCKA()
            if kind == "StreamingDebiasedCKA"
            else metrics.StreamingLinearCKA()
        )
        for X, Y in _chunks(rows, d, size):
            t = time.perf_counter()  # time the accumulator, not the data generation
            acc.update(X, Y)
            seconds += time.perf_counter() - t
        t = time.perf_counter()
        value = acc.compute()
        seconds += time.perf_counter() - t
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"seconds": seconds, "peak_mib": peak_kib / 1024, "value": value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows (tokens); 10**6 for big")
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=4096, help="rows per update")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--one-shot-max", type=int, default=200_000, help="skip the one-shot baseline above this"
    )
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.rows, args.dims, args.chunk)))
        return

    kinds = [k for k in WORKERS if k != "one-shot cka_debiased" or args.rows <= args.one_shot_max]
    print(f"workload: {args.rows} rows x {args.dims} dims (both sides), chunks of {args.chunk}")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            cmd = [sys.executable, __file__, "--worker", kind, "--rows", str(args.rows)]
            cmd += ["--dims", str(args.dims), "--chunk", str(args.chunk)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            results[kind].append(json.loads(out.strip().splitlines()[-1]))
    ref_kind = "one-shot cka_debiased" if "one-shot cka_debiased" in kinds else "StreamingLinearCKA"
    ref = min(r["seconds"] for r in results[ref_kind])
    for kind, runs in results.items():
        ts = [r["seconds"] for r in runs]
        peak = max(r["peak_mib"] for r in runs)
        line = f"  {kind:<24} peak RSS {peak:8.0f} MiB"
        if kind != "idle":
            line += f"  min {min(ts):7.2f} s  median {statistics.median(ts):7.2f} s"
            line += f"  {min(ts) / ref:5.2f}x the time of {ref_kind}  value {runs[0]['value']:.12f}"
        print(line)
    if "one-shot cka_debiased" in results:
        gap = abs(
            results["one-shot cka_debiased"][0]["value"]
            - results["StreamingDebiasedCKA"][0]["value"]
        )
        print(f"  |streaming - one-shot| = {gap:.2e}")


if __name__ == "__main__":
    main()
