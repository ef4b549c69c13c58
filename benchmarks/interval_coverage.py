"""Benchmark: coverage of the single-run and per-method drift intervals (issue 23, items 3, 5).

1. ``coverage_table``: one run, the half-sample interval of linear-CKA drift. X ~ N(0, diag λ)
   with λ_k = 1 (``flat``) or 1/k (``decaying``), Y = X + s·E, s chosen so the population
   linear CKA ``‖Σ‖_F / ‖Σ + s²I‖_F`` (closed form; CKA is invariant to rotating Y) is the
   target. For each n, d = ratio·n and target: ``reps`` datasets, ``n_boot`` half-samples each;
   coverage of the population drift by the plain basic interval (as before issue 23) and by
   the analysis' interval (:func:`repdrift.analysis.intervals.half_sample_interval`: paired
   width, logit scale, cut to the range), their mean widths, and the width a 2·z·sd interval
   would have from the estimate's own spread over the datasets (``ideal``).
2. ``range_table``: the per-method interval over 3 seeds (t with 2 df), seeds' drift drawn
   from Beta distributions with mean μ near 0, in the middle and near 1 and wide spread:
   coverage of μ and how often the interval leaves [0, 1], as it was (raw t) and now
   (:func:`repdrift.analysis.stats.hierarchical_interval` with the drift range).

Monte-Carlo error of a coverage near 0.95 is sqrt(0.95·0.05/reps): 0.011 at 400.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/interval_coverage.py [--quick]
        [--reps 400] [--n-boot 200] [--ns 60 100 250 750] [--ratios 0.05 0.5 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from repdrift.analysis import stats
from repdrift.analysis.intervals import half_sample_interval, metric_drift_range
from repdrift.metrics.resampling import linear_cka_replicates

ESTIMATORS = {False: "cka_linear", True: "cka_debiased"}


def noise_for(lam: np.ndarray, target: float) -> float:
    """Noise variance s² with population linear CKA of (X, X + sE) equal to ``target``."""
    return brentq(lambda s2: np.linalg.norm(lam) / np.linalg.norm(lam + s2) - target, 0, 1e12)


def one_cell(
    n: int, d: int, spectrum: str, target: float, reps: int, n_boot: int,
    rng: np.random.Generator, level: float = 0.95,
) -> list[dict]:  # fmt: skip
    """Coverage of both estimators' intervals at one design point (one row per estimator)."""
    lam = np.ones(d) if spectrum == "flat" else 1.0 / np.arange(1, d + 1)
    s = np.sqrt(noise_for(lam, target))
    truth = 1 - target
    out = {e: [] for e in ESTIMATORS}
    for _ in range(reps):
        X = rng.standard_normal((n, d)) * np.sqrt(lam)
        Y = X + s * rng.standard_normal((n, d))
        res = linear_cka_replicates(X, [Y], stats.half_samples(n, n_boot, rng), None)
        for e, name in ESTIMATORS.items():
            est, boot = 1 - res[e].values[0], 1 - res[e].subsets[0]
            old = stats.basic_interval(est, boot, level)
            low, high = half_sample_interval(est, boot, level, metric_drift_range(name))
            out[e].append((est, old.low <= truth <= old.high, old.high - old.low,
                           low <= truth <= high, high - low))  # fmt: skip
    z = float(norm.ppf((1 + level) / 2))
    rows = []
    for e, name in ESTIMATORS.items():
        a = np.array(out[e], dtype=float)
        rows.append({
            "spectrum": spectrum, "n": n, "d": d, "drift": round(truth, 3), "metric": name,
            "cover_before": a[:, 1].mean(), "cover_now": a[:, 3].mean(),
            "width_before": a[:, 2].mean(), "width_now": a[:, 4].mean(),
            "width_ideal": 2 * z * a[:, 0].std(ddof=1), "bias": a[:, 0].mean() - truth,
            "reps": reps,
        })  # fmt: skip
    return rows


def coverage_table(
    ns: tuple[int, ...] = (60, 100, 250, 750),
    ratios: tuple[float, ...] = (0.05, 0.5, 2.0),
    targets: tuple[float, ...] = (0.5, 0.9),
    spectra: tuple[str, ...] = ("flat", "decaying"),
    reps: int = 400,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Coverage of the single-run drift interval over a grid (see the module notes).

    Returns one row per spectrum × n × d × drift × metric with ``cover_before``,
    ``cover_now``, ``width_before``, ``width_now``, ``width_ideal``, ``bias`` (of the estimate).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for spectrum in spectra:
        for n in ns:
            for ratio in ratios:
                d = max(2, round(ratio * n))
                for target in targets:
                    rows += one_cell(n, d, spectrum, target, reps, n_boot, rng, level)
    return pd.DataFrame(rows)


def range_table(reps: int = 2000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Per-method interval over 3 seeds of Beta-distributed drift: coverage and range."""
    rng = np.random.default_rng(seed)
    within = metric_drift_range("cka_linear")
    rows = []
    for mean in (0.02, 0.1, 0.5, 0.9, 0.98):
        for spread in (0.1, 0.3):  # Beta's sd as a share of its largest, sqrt(μ(1 − μ))
            k = 1 / spread**2 - 1  # Beta(μk, (1 − μ)k) has sd spread·sqrt(μ(1 − μ))
            hits_raw = hits_now = outside_raw = outside_now = 0
            for _ in range(reps):
                v = rng.beta(mean * k, (1 - mean) * k, size=3)
                raw = stats.hierarchical_interval(v, None, level)
                now = stats.hierarchical_interval(v, None, level, within)
                hits_raw += raw.low <= mean <= raw.high
                hits_now += now.low <= mean <= now.high
                outside_raw += raw.low < 0 or raw.high > 1
                outside_now += now.low < 0 or now.high > 1
            rows.append({"mean": mean, "seed_sd": spread * np.sqrt(mean * (1 - mean)),
                         "cover_before": hits_raw / reps, "cover_now": hits_now / reps,
                         "outside_before": outside_raw / reps,
                         "outside_now": outside_now / reps})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 60, 100; 100 datasets per cell")
    p.add_argument("--reps", type=int, default=400)
    p.add_argument("--n-boot", type=int, default=200)
    p.add_argument("--ns", type=int, nargs="+", default=[60, 100, 250, 750])
    p.add_argument("--ratios", type=float, nargs="+", default=[0.05, 0.5, 2.0])
    p.add_argument("--spectra", nargs="+", default=["flat", "decaying"])
    p.add_argument("--out", help="also write the table as CSV here")
    args = p.parse_args()
    ns, reps = (tuple(args.ns), args.reps) if not args.quick else ((60, 100), 100)
    pd.set_option("display.width", 200, "display.max_rows", 500)
    started = time.perf_counter()
    print(f"load {os.getloadavg()[0]:.1f}; {reps} datasets per cell, {args.n_boot} half-samples")
    print(range_table().round(3).to_string(index=False), flush=True)
    parts = []
    for n in ns:  # printed as each n finishes: the largest take longest
        parts.append(coverage_table((n,), tuple(args.ratios), spectra=tuple(args.spectra),
                                    reps=reps, n_boot=args.n_boot, seed=n))  # fmt: skip
        print(parts[-1].round(4).to_string(index=False), flush=True)
        if args.out:
            pd.concat(parts).to_csv(args.out, index=False)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
