"""Benchmark: intervals and permutation nulls (the resampling paths of the default metrics).

Sections, each with its baseline measured in the same run (timings alternate old / new,
``--repeat`` times, and print min / median; the ratio is of the minima):

1. ``cosine`` replicates: per-replicate recomputation (the generic path cosine used before it
   had a resampling hook) vs the hook (per-sample cosines and one cross-product matrix).
   Default shape 4 layers × n = 750 × d = 2048, 200 half-samples + 200 permutations.
2. ``cka_debiased`` replicates: recomputation from the features (a few replicates timed and
   extrapolated: the full loop takes minutes) vs the Gram hook.
3. ``--device DEV``: the hooks of cosine, cka_linear and cka_debiased in torch float64 on DEV
   vs numpy (on a CPU-only machine ``--device cpu`` times the torch path on the CPU).
4. ``--compare``: ``repdrift.compare`` end to end on two run directories (I/O, cross-layer
   matrix, every default metric).
5. ``--pair``: the metrics side of one pair at the original study's shape (22 layers × 750 ×
   2048, 1,000 + 1,000 replicates of the fast-resampled default metrics).

    .venv/bin/python benchmarks/stats.py [--quick] [--repeat 3] [--device cpu|cuda]
        [--compare] [--pair]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from repdrift import metrics
from repdrift.analysis import stats
from repdrift.analysis.compare_runs import compare
from repdrift.metrics.resampling import by_recomputing
from repdrift.store.writer import write_run


def _runs(layers: int, n: int, d: int, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    base = [rng.normal(size=(n, d)) for _ in range(layers)]
    tuned = [X + 0.05 * (i + 1) * rng.normal(size=X.shape) for i, X in enumerate(base)]
    return base, tuned


def _alternate(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Time each function ``repeat`` times, interleaved (old, new, old, new, ...)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    return times


def _report(times: dict[str, list[float]], baseline: str, scale: dict[str, float] | None = None):
    scale = scale or {}
    ref = min(times[baseline]) * scale.get(baseline, 1.0)
    for key, ts in times.items():
        s = scale.get(key, 1.0)
        lo, med = min(ts) * s, statistics.median(ts) * s
        note = " (extrapolated)" if s != 1.0 else ""
        print(f"  {key:<44} min {lo:8.3f} s  median {med:8.3f} s  {ref / lo:7.1f}x{note}")


def _replicates(name: str, base, tuned, idx, perms, *, device=None, recompute=False):
    for X, Y in zip(base, tuned, strict=True):
        if recompute:
            by_recomputing(lambda A, B: metrics.compute(name, A, B), X, [Y], idx, perms)
        else:
            metrics.resample(name, X, [Y], idx=idx, perms=perms, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 layers x 300 x 512, 50 + 50")
    parser.add_argument("--repeat", type=int, default=3, help="timings per path (alternated)")
    parser.add_argument("--device", help="also time the torch path on this device")
    parser.add_argument("--compare", action="store_true", help="time repdrift.compare too")
    parser.add_argument("--pair", action="store_true", help="22 layers x 750 x 2048, 1000+1000")
    args = parser.parse_args()
    layers, n, d, reps = (2, 300, 512, 50) if args.quick else (4, 750, 2048, 200)
    base, tuned = _runs(layers, n, d)
    rng = np.random.default_rng(1)
    idx, perms = stats.half_samples(n, reps, rng), stats.permutations(n, reps, rng)
    print(f"workload: {layers} layers x n={n} x d={d}, {reps} half-samples + {reps} permutations")

    print("cosine: recompute every replicate vs the cosine hook")
    _report(
        _alternate(
            {
                "recompute per replicate (old)": lambda: _replicates(
                    "cosine", base, tuned, idx, perms, recompute=True
                ),
                "per-sample cosines + cross products (new)": lambda: _replicates(
                    "cosine", base, tuned, idx, perms
                ),
            },
            args.repeat,
        ),
        "recompute per replicate (old)",
    )

    few = 5  # the recomputing loop of cka_debiased takes minutes: time a few, extrapolate
    print(f"cka_debiased: recompute (extrapolated from {few} + {few}) vs the Gram hook")
    sub_idx, sub_perms = idx[:few], perms[:few]
    _report(
        _alternate(
            {
                "recompute per replicate (old)": lambda: _replicates(
                    "cka_debiased", base, tuned, sub_idx, sub_perms, recompute=True
                ),
                "Gram hook (new)": lambda: _replicates("cka_debiased", base, tuned, idx, perms),
            },
            args.repeat,
        ),
        "recompute per replicate (old)",
        scale={"recompute per replicate (old)": reps / few},
    )

    if args.device:
        for name in ("cosine", "cka_linear", "cka_debiased"):
            print(f"{name}: numpy vs torch on {args.device}")
            _replicates(name, base[:1], tuned[:1], idx, perms, device=args.device)  # warm up
            _report(
                _alternate(
                    {
                        "numpy": lambda nm=name: _replicates(nm, base, tuned, idx, perms),
                        f"torch float64 on {args.device}": lambda nm=name: _replicates(
                            nm, base, tuned, idx, perms, device=args.device
                        ),
                    },
                    args.repeat,
                ),
                "numpy",
            )

    if args.compare:
        _time_compare(base, tuned, reps, args.device)
    if args.pair:
        _time_pair(args.device)


def _time_compare(base: list, tuned: list, reps: int, device: str | None) -> None:
    n = base[0].shape[0]
    ids = [f"s{i}" for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        for kind, reps_ in (("base", base), ("full", tuned)):
            layers = {f"layer_{i}": X.astype(np.float32) for i, X in enumerate(reps_)}
            write_run(Path(tmp) / kind, layers, task="bench", kind=kind, sample_ids=ids)
        t = time.perf_counter()
        compare([Path(tmp) / "base", Path(tmp) / "full"], n_boot=reps, n_perm=reps, progress=False)
        print(f"repdrift.compare end to end, default metrics: {time.perf_counter() - t:8.1f} s")


def _time_pair(device: str | None) -> None:
    layers, n, d, reps = 22, 750, 2048, 1000
    base, tuned = _runs(layers, n, d, seed=2)
    rng = np.random.default_rng(3)
    idx, perms = stats.half_samples(n, reps, rng), stats.permutations(n, reps, rng)
    names = [m for m in metrics.DEFAULT_METRICS if metrics.get(m).fast_resampling]
    print(f"one pair: {layers} layers x {n} x {d}, {reps} + {reps}, {', '.join(names)}")
    for dev in (None, device) if device else (None,):
        t = time.perf_counter()
        for name in names:
            _replicates(name, base, tuned, idx, perms, device=dev)
        print(f"  {dev or 'numpy':<10} {time.perf_counter() - t:8.1f} s")


if __name__ == "__main__":
    main()
