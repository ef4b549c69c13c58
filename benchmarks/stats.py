"""Benchmark: intervals and permutation nulls for cka_debiased on the original study's shape.

25 layers × 750 samples × d = 1024 (float32 activations, two runs: base and fine-tuned),
1,000 half-sample replicates and 1,000 shuffled pairings per layer, through the real
``repdrift.compare`` (run directories on disk, cross-layer matrix included) and through the
stats core alone. Baseline in the same run: the loop people usually write, which recomputes
``cka_debiased`` from the features for every replicate, timed on a few replicates of one
layer and extrapolated to the full workload.

    .venv/bin/python benchmarks/stats.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from repdrift import metrics
from repdrift.analysis import stats
from repdrift.analysis.compare_runs import compare
from repdrift.store.writer import write_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 layers, 200 replicates")
    args = parser.parse_args()
    layers, n, d = (8, 750, 1024) if args.quick else (25, 750, 1024)
    reps = 200 if args.quick else 1000
    rng = np.random.default_rng(0)
    base = {f"layer_{i}": rng.normal(size=(n, d)).astype(np.float32) for i in range(layers)}
    tuned = {
        k: (v + 0.05 * (i + 1) * rng.normal(size=v.shape)).astype(np.float32)
        for i, (k, v) in enumerate(base.items())
    }
    ids = [f"s{i}" for i in range(n)]

    print(
        f"workload: {layers} layers x n={n} x d={d}, {reps} half-samples + {reps} permutations, cka_debiased"
    )
    # Baseline: recompute the metric from features for each replicate (one layer, few reps).
    X, Y = base["layer_0"].astype(np.float64), tuned["layer_0"].astype(np.float64)
    few = 10
    t = time.perf_counter()
    for _ in range(few):
        r = rng.choice(n, size=n // 2, replace=False)
        metrics.compute("cka_debiased", X[r], Y[r])
        p = rng.permutation(n)
        metrics.compute("cka_debiased", X, Y[p])
    per_pair = (time.perf_counter() - t) / few
    baseline = per_pair * reps * layers
    print(f"baseline (recompute per replicate, extrapolated from {few}): {baseline:8.1f} s")

    # Core: Grams once per layer, subsets via indicator GEMMs, permutations of the base Gram.
    idx = stats.half_samples(n, reps, rng)
    perms = stats.permutations(n, reps, rng)
    t = time.perf_counter()
    for k in base:
        K = metrics.centered_gram(base[k].astype(np.float64))
        L = metrics.centered_gram(tuned[k].astype(np.float64))
        metrics.gram_cka_subsets(K, L, idx, debiased=True)
        metrics.gram_cka_permuted(metrics.u_center_gram(K), metrics.u_center_gram(L), perms)
    core = time.perf_counter() - t
    print(
        f"repdrift stats core:                                  {core:8.1f} s   ({baseline / core:5.1f}x faster)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        write_run(Path(tmp) / "base", base, task="bench", kind="base", sample_ids=ids)
        write_run(Path(tmp) / "full", tuned, task="bench", kind="full", sample_ids=ids)
        t = time.perf_counter()
        compare(
            [Path(tmp) / "base", Path(tmp) / "full"],
            metrics=["cka_debiased"],
            n_boot=reps,
            n_perm=reps,
            progress=False,
        )
        full = time.perf_counter() - t
    print(
        f"repdrift.compare end to end (I/O, cross-layer matrix): {full:8.1f} s   ({baseline / full:5.1f}x faster)"
    )


if __name__ == "__main__":
    main()
