"""Benchmark: the original study's cross-layer CKA workload, and streaming CKA at 10^6 rows.

Part 1 — two models x 25 layers, n = 750 samples, d = 1024, float32 activations (seeded
synthetic data with cross-layer structure) -> the 25 x 25 linear-CKA matrix, timed for

- repdrift: ``repdrift.metrics.matrix("cka_linear", layers_a, layers_b)`` (float32 input,
  conversion to float64 included in the time);
- ckatorch: ``ckatorch.core.cka_base(x, y)`` per pair (given float64 tensors, converted
  before the clock starts; it computes in float64);
- repsim: ``repsim.cka(mats, kernel_type="linear", estimator="gretton")`` (given float64
  arrays). Its API returns the full M x M matrix of a list, so it is called once on the
  50 layers and the 25 x 25 cross block is taken; it therefore also computes the two
  within-model blocks.

Part 2 — ``StreamingLinearCKA`` over n rows x d dims generated chunk by chunk (never the
whole array), each n in its own subprocess, reporting wall time and peak RSS (VmHWM) to
show that memory does not grow with n.

Usage::

    .venv/bin/python benchmarks/cka.py            # full run (several minutes)
    .venv/bin/python benchmarks/cka.py --quick    # small shapes, seconds

Prints numbers only; there are no pass/fail thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def make_layers(
    n_layers: int, n: int, d: int, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two models' layers, float32 (n, d): shared latent factors drifting across depth."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 64))
    w = rng.standard_normal((64, d))
    base, tuned = [], []
    for layer in range(n_layers):
        w = 0.8 * w + 0.6 * rng.standard_normal((64, d))  # slowly rotating features
        h = z @ w + 4.0 * rng.standard_normal((n, d))
        base.append(h.astype(np.float32))
        drift = 1.0 + 20.0 * layer / max(n_layers - 1, 1)  # later layers move more
        tuned.append((h + drift * rng.standard_normal((n, d))).astype(np.float32))
    return base, tuned


def time_repdrift(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, np.ndarray]:
    from repdrift import metrics

    metrics.matrix("cka_linear", a[:2], b[:2])  # warm-up (imports, BLAS threads)
    t0 = time.perf_counter()
    m = metrics.matrix("cka_linear", a, b)
    return time.perf_counter() - t0, m


def median(xs: list[float]) -> float:
    return float(np.median(xs))


def time_ckatorch(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, np.ndarray]:
    import torch
    from ckatorch.core import cka_base

    ta = [torch.from_numpy(x.astype(np.float64)) for x in a]
    tb = [torch.from_numpy(x.astype(np.float64)) for x in b]
    cka_base(ta[0], tb[0])  # warm-up
    out = np.empty((len(a), len(b)))
    t0 = time.perf_counter()
    for i, x in enumerate(ta):
        for j, y in enumerate(tb):
            out[i, j] = float(cka_base(x, y, kernel="linear"))
    return time.perf_counter() - t0, out


def time_repsim(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, np.ndarray]:
    import repsim

    mats = [x.astype(np.float64) for x in a + b]
    repsim.cka(mats[:2], kernel_type="linear", estimator="gretton")  # warm-up
    t0 = time.perf_counter()
    full = np.asarray(repsim.cka(mats, kernel_type="linear", estimator="gretton"))
    elapsed = time.perf_counter() - t0
    return elapsed, full[: len(a), len(a) :]


def stream_worker(n: int, d: int, chunk: int, seed: int, full: bool) -> None:
    """Run in a subprocess: stream n rows, print one JSON line with time and peak memory."""
    from repdrift import metrics

    def chunks():
        rng = np.random.default_rng(seed)
        perm = np.random.default_rng(seed + 1).permutation(d)
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            x = rng.random((m, d), dtype=np.float32)
            y = 0.6 * x[:, perm] + 0.4 * rng.random((m, d), dtype=np.float32)
            yield x, y

    if full:  # one-shot reference on the same data (holds everything: only for small n)
        xs, ys = zip(*chunks(), strict=True)
        t0 = time.perf_counter()
        value = metrics.compute("cka_linear", np.concatenate(xs), np.concatenate(ys))
    else:
        t0 = time.perf_counter()
        acc = metrics.StreamingLinearCKA()
        for x, y in chunks():
            acc.update(x, y)
        value = acc.compute()
    elapsed = time.perf_counter() - t0
    print(json.dumps({"n": n, "seconds": elapsed, "peak_mib": peak_rss_mib(), "cka": value}))


def peak_rss_mib() -> float:
    """Peak resident memory of this process.

    VmHWM belongs to the process's own address space; ru_maxrss is not used because Linux
    carries the forking parent's high-water mark across exec into the child.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stream(n: int, d: int, chunk: int, full: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--_stream-worker", str(n), str(d), str(chunk)]
    if full:
        cmd.append("--_full")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small shapes for a fast smoke run")
    p.add_argument("--layers", type=int, default=25)
    p.add_argument("--n", type=int, default=750)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--skip-ckatorch", action="store_true")
    p.add_argument("--skip-repsim", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--stream-n", type=int, nargs="+", default=None, help="default 1e5 1e6")
    p.add_argument("--stream-d", type=int, default=None, help="default 1024")
    p.add_argument("--chunk", type=int, default=4096)
    p.add_argument(
        "--check-n", type=int, default=20_000, help="n for the streaming == one-shot check"
    )
    p.add_argument("--_stream-worker", nargs=3, type=int, help=argparse.SUPPRESS)
    p.add_argument("--_full", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args._stream_worker:
        n, d, chunk = args._stream_worker
        stream_worker(n, d, chunk, seed=0, full=args._full)
        return
    if args.quick:
        args.layers, args.n, args.d = 6, 300, 256
    args.stream_n = args.stream_n or ([20_000, 200_000] if args.quick else [100_000, 1_000_000])
    if args.quick:
        args.check_n = min(args.check_n, 5_000)
    args.stream_d = args.stream_d or (256 if args.quick else 1024)

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(
        f"workload: 2 models x {args.layers} layers, n={args.n}, d={args.d}, float32 "
        f"-> {args.layers}x{args.layers} cka_linear"
    )
    a, b = make_layers(args.layers, args.n, args.d, seed=0)

    # repdrift is timed 3 times before and 3 times after the (slow) competitors; the ratios
    # use the median of all six, so a load change on a shared machine hits both sides.
    runs = [time_repdrift(a, b) for _ in range(3)]
    results = {}
    if not args.skip_ckatorch:
        results["ckatorch (cka_base per pair)"] = time_ckatorch(a, b)
    if not args.skip_repsim:
        results["repsim (cka on all 2L layers)"] = time_repsim(a, b)
    runs += [time_repdrift(a, b) for _ in range(3)]
    times = [t for t, _ in runs]
    t_rd, m_rd = median(times), runs[0][1]
    print(
        f"  repdrift matrix(): median {t_rd:.2f} s over 6 runs (before: "
        f"{', '.join(f'{t:.2f}' for t in times[:3])}; after: "
        f"{', '.join(f'{t:.2f}' for t in times[3:])})"
    )
    for name, (t, m) in results.items():
        diff = float(np.max(np.abs(m - m_rd)))
        print(
            f"  {name:32s} {t:8.2f} s   repdrift speed-up {t / t_rd:6.1f}x   "
            f"max |diff| {diff:.1e} (float64 in both)"
        )
    print(f"  CKA range in the matrix: {m_rd.min():.3f} .. {m_rd.max():.3f}")

    if args.no_stream:
        return
    print(
        f"streaming StreamingLinearCKA: d={args.stream_d}, chunks of {args.chunk} rows "
        "generated on the fly, one subprocess per n"
    )
    for n in args.stream_n:
        r = run_stream(n, args.stream_d, args.chunk)
        print(
            f"  n={n:>9,d}: {r['seconds']:8.2f} s  ({n / r['seconds']:,.0f} rows/s)  "
            f"peak RSS {r['peak_mib']:7.1f} MiB  cka={r['cka']:.12f}"
        )
    small = args.check_n
    ref = run_stream(small, args.stream_d, args.chunk, full=True)
    streamed = run_stream(small, args.stream_d, args.chunk)
    print(
        f"  exactness at n={small:,d}: one-shot cka_linear (whole array in memory, peak "
        f"{ref['peak_mib']:.0f} MiB) vs streaming: |difference| = "
        f"{abs(ref['cka'] - streamed['cka']):.1e}"
    )


if __name__ == "__main__":
    main()
