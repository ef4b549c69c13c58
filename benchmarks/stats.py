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
5. ``--pair``: ``repdrift.compare`` of one base/variant pair end to end at the original
   study's shape (22 layers × 750 × 2048 written as float32 runs, untimed; 1,000 half-samples
   + 1,000 permutations of cka_debiased, cka_linear, cosine; procrustes values; the 22 × 22
   cross-layer matrix), against the metric side as it was before issue 16 (each linear CKA
   with its own Grams, nulls from whole-matrix bounds-checked gathers; extrapolated from two
   layers), plus the new metric side alone for a like-for-like ratio. ``--study`` also times
   one task of the 20-pair study (a base and 5 variants: 3 LoRA + 2 full seeds) and scales it
   to 4 tasks. ``--quick`` shrinks the pair to 3 layers × 300 × 512, 100 + 100.

The machine load (1-minute average) is printed with every timed section: on a shared
2-core machine the minimum is the figure to compare, the median shows the noise.

    .venv/bin/python benchmarks/stats.py [--quick] [--repeat 3] [--device cpu|cuda]
        [--compare] [--pair [--study]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from repdrift import metrics
from repdrift.analysis import stats
from repdrift.analysis.compare_runs import compare
from repdrift.metrics.gram_replicates import gram_cka_subsets
from repdrift.metrics.kernels import centered_gram, u_center_gram
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
    parser.add_argument("--study", action="store_true", help="with --pair: one task, 5 variants")
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
        _time_pair(args.device, quick=args.quick, repeat=args.repeat, study=args.study)


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


PAIR_METRICS = ("cka_debiased", "cka_linear", "cosine")  # resampled; procrustes: values


def _load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def _write(tmp: Path, name: str, layers: list, kind: str, seed: int | None = None) -> Path:
    ids = [f"s{i}" for i in range(layers[0].shape[0])]
    model = {"training": {"seed": seed}} if seed is not None else None
    named = {f"layer_{i}": X.astype(np.float32) for i, X in enumerate(layers)}
    write_run(tmp / name, named, task="bench", kind=kind, sample_ids=ids, model=model)
    return tmp / name


def _previous_permuted(Kc: np.ndarray, Lc: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """The null loop before issue 16: one metric, whole (n, n) gathers, bounds-checked takes."""
    inverse = np.argsort(perms, axis=1)
    rows, permuted, L = np.empty_like(Kc), np.empty_like(Kc), Lc.reshape(1, -1)
    out = np.empty((1, len(perms)))
    for i, q in enumerate(inverse):
        np.take(Kc, q, axis=0, out=rows)
        np.take(rows, q, axis=1, out=permuted)
        out[:, i] = L @ permuted.reshape(-1)
    return out


def _previous_metric_side(base: list, tuned: list, idx, perms) -> None:
    """cka_debiased, cka_linear (each with its own Grams) and cosine replicates, as before."""
    for X, Y in zip(base, tuned, strict=True):
        for debiased in (True, False):
            K, L = centered_gram(X), centered_gram(Y)
            Kc, Lc = (u_center_gram(K), u_center_gram(L)) if debiased else (K, L)
            gram_cka_subsets(K, L, idx, debiased=debiased)
            _previous_permuted(Kc, Lc, perms)
        metrics.resample("cosine", X, [Y], idx=idx, perms=perms)


def _time_pair(device: str | None, *, quick: bool = False, repeat: int = 3, study: bool = False):
    layers, n, d, reps = (3, 300, 512, 100) if quick else (22, 750, 2048, 1000)
    base, tuned = _runs(layers, n, d, seed=2)
    base = [X.astype(np.float32).astype(np.float64) for X in base]  # what compare reads
    tuned = [X.astype(np.float32).astype(np.float64) for X in tuned]
    rng = np.random.default_rng(3)
    idx, perms = stats.half_samples(n, reps, rng), stats.permutations(n, reps, rng)
    print(f"one pair: {layers} layers x {n} x {d}, {reps} + {reps} of {', '.join(PAIR_METRICS)}"
          f"; procrustes values; {_load()}")  # fmt: skip
    few = min(2, layers)
    # compare's defaults: the default metrics, the fast-path ones resampled, procrustes values
    settings = dict(n_boot=reps, n_perm=reps, progress=False, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [_write(Path(tmp), "base", base, "base"), _write(Path(tmp), "full", tuned, "full")]
        times = _alternate(
            {
                f"metric side before issue 16 ({few} layers timed)": lambda: _previous_metric_side(
                    base[:few], tuned[:few], idx, perms
                ),
                "metric side now (registry.resample_many)": lambda: [
                    metrics.resample_many(PAIR_METRICS, X, [Y], idx=idx, perms=perms, device=device)
                    for X, Y in zip(base, tuned, strict=True)
                ],
                "compare end to end (I/O, all tables)": lambda: compare(runs, **settings),
            },
            repeat,
        )
    before = f"metric side before issue 16 ({few} layers timed)"
    _report(times, before, scale={before: layers / few})
    pair = min(times["compare end to end (I/O, all tables)"])
    print(f"  study, 20 pairs as 20 separate compares (upper bound): {20 * pair:8.1f} s; {_load()}")
    if study and not quick:
        _time_study(base, tuned, settings)


def _time_study(base: list, tuned: list, settings: dict) -> None:
    """One task of the study in one compare: a base and 5 variants (3 LoRA + 2 full seeds; the
    runner passes all runs at once), scaled to the 4 tasks of the 20-pair study."""
    rng = np.random.default_rng(4)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [_write(Path(tmp), "bench_base", base, "base")]
        for method, seeds in (("lora", (1, 2, 3)), ("full", (1, 2))):
            for seed in seeds:
                layers = [Y + 0.01 * rng.normal(size=Y.shape) for Y in tuned]
                runs.append(_write(Path(tmp), f"bench_{method}_seed{seed}", layers, method, seed))
        t = time.perf_counter()
        compare(runs, **settings)
        task = time.perf_counter() - t
    print(f"  one task, base + 5 variants (noise floor included): {task:8.1f} s -> 4 tasks "
          f"(20 pairs): {4 * task:8.1f} s; {_load()}")  # fmt: skip


if __name__ == "__main__":
    main()
