"""Benchmark: repdrift extraction vs a bare length-sorted forward, at the original study's scale.

The model is a randomly initialised decoder of TinyLlama-1.1B's shape, built from its
``LlamaConfig`` (22 blocks, width 2048, 32 heads with 4 key/value heads, MLP 5632, vocabulary
32000; nothing is downloaded). The inputs are 750 synthetic samples of random token ids
(no tokenizer) with a SQuAD-v2-like length distribution: log-normal, mean about 154 tokens,
clipped to 24-384. Measured in one process, interleaved, ``--repeats`` times each:

(a) bare: the same length-sorted batches repdrift plans (same ``batch_size`` and token budget),
    a plain forward through every block, nothing returned;
(b) repdrift ``extract_to_run`` of every block with ``mean`` pooling, into a fresh run folder
    (chunks streamed to disk, layer files assembled, manifest written);
(c) the same with ``last`` pooling.

Printed and written to ``--out`` (JSON, rewritten after every measurement so a run cut short
keeps what it measured): seconds (best and median), the ratio (b)/(a) and (c)/(a), tokens per
second, model FLOP utilisation when the device's peak is known (``--peak-tflops``, default
from the device name for A100/H100/H200), and peak device memory (peak RSS on the CPU).

Run: ``.venv/bin/python -u benchmarks/gpu.py --out results.json`` on a GPU (a few minutes,
most of it building the model); ``--quick`` is a tiny shape (4 blocks, width 128, 96 samples of
at most 128 tokens) that runs on a CPU in seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

T0 = time.perf_counter()

FULL = {
    "vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632,
    "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4,
    "max_position_embeddings": 2048,
}  # fmt: skip
QUICK = {
    "vocab_size": 1000, "hidden_size": 128, "intermediate_size": 344,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}  # fmt: skip
# dense bf16 peak, TFLOP/s, by a substring of the device name
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def log(message: str) -> None:
    """One line, unbuffered, with the wall clock and the seconds since start."""
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp} +{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


def sample_lengths(n: int, max_len: int, seed: int) -> np.ndarray:
    """Log-normal lengths like SQuAD-v2 question + context (mean ~154 at max_len 384)."""
    rng = np.random.default_rng(seed)
    scale = max_len / 384
    lengths = rng.lognormal(np.log(142 * scale), 0.4, size=n)
    return np.clip(np.round(lengths), max(2, int(24 * scale)), max_len).astype(int)


def make_token_ids(lengths: np.ndarray, vocab: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed + 1)
    return [rng.integers(1, vocab, size=int(n)).tolist() for n in lengths]


def build_model(shape: dict[str, int], device: torch.device, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(**shape, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: 1.1B parameters on a CPU take long
        model = LlamaModel(config)
    return model.to(dtype).eval().requires_grad_(False)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def planned_batches(lengths: np.ndarray, n_layers: int, hidden: int, batch_size: int, budget):
    from repdrift.extraction.batching import plan_batches, plan_chunks
    from repdrift.extraction.to_run import default_chunk_size

    chunks = plan_chunks(lengths, default_chunk_size("mean", n_layers, hidden), token_level=False)
    return [
        b
        for c in chunks
        for b in plan_batches(c, lengths, batch_size=batch_size, max_tokens=budget)
    ]


def bare_forward(model, token_ids, batches, device: torch.device) -> float:
    """(a) The planned batches, padded, one plain forward each; nothing kept."""
    from repdrift.extraction.batching import pad_batch
    from repdrift.models.inputs import position_ids

    synchronize(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            ids, mask = pad_batch([token_ids[i] for i in batch], pad_id=0, padding_side="right")
            ids, mask = ids.to(device), mask.to(device)
            model(
                input_ids=ids, attention_mask=mask, position_ids=position_ids(mask),
                use_cache=False,
            )  # fmt: skip
    synchronize(device)
    return time.perf_counter() - t0


def repdrift_extract(model, token_ids, pooling: str, batch_size: int, budget, device) -> float:
    """(b), (c) The real code path into a fresh run folder."""
    from repdrift.extraction.model_parts import ModelParts
    from repdrift.extraction.options import ExtractionOptions
    from repdrift.extraction.to_run import StepRecord, extract_to_run

    options = ExtractionOptions(pooling=pooling, batch_size=batch_size, max_tokens=budget)
    record = StepRecord(sample_ids=[f"s{i}" for i in range(len(token_ids))], task="benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        synchronize(device)
        t0 = time.perf_counter()
        extract_to_run(
            ModelParts(model, list(model.layers)), token_ids, Path(tmp) / "step_000000",
            record=record, options=options, progress=False,
        )  # fmt: skip
        synchronize(device)
        return time.perf_counter() - t0


def model_flops(model, lengths: np.ndarray) -> float:
    """Forward FLOPs: 2 x (non-embedding parameters) per token, plus attention's
    QK^T and AV (4 x layers x width x length^2 per sample, causal half not subtracted)."""
    config = model.config
    params = sum(p.numel() for name, p in model.named_parameters() if "embed" not in name)
    tokens = float(lengths.sum())
    attention = 4.0 * config.num_hidden_layers * config.hidden_size * float((lengths**2).sum())
    return 2.0 * params * tokens + attention


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shape, runs on a CPU")
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--samples", type=int, default=None, help="default 750 (quick: 96)")
    parser.add_argument("--max-len", type=int, default=None, help="default 384 (quick: 128)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto: bf16 on a GPU that has it")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from repdrift.common.devices import resolve_device, resolve_dtype
    from repdrift.extraction.budget import default_max_tokens
    from repdrift.extraction.to_run import default_chunk_size

    shape = QUICK if args.quick else FULL
    n = args.samples or (96 if args.quick else 750)
    max_len = args.max_len or (128 if args.quick else 384)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    peak = args.peak_tflops
    if peak is None and device.type == "cuda":
        peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    results: dict[str, Any] = {
        "shape": "quick" if args.quick else "tinyllama-1.1b", "config": shape, "samples": n,
        "max_len": max_len, "batch_size": args.batch_size, "device": str(device),
        "device_name": name, "dtype": str(dtype).removeprefix("torch."),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": {},
    }  # fmt: skip

    def save() -> None:
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")

    log(f"device {device} ({name}), dtype {results['dtype']}, torch {torch.__version__}")
    lengths = sample_lengths(n, max_len, args.seed)
    token_ids = make_token_ids(lengths, shape["vocab_size"], args.seed)
    results["tokens"] = int(lengths.sum())
    results["mean_length"] = float(lengths.mean())
    log(f"{n} samples, {lengths.sum()} tokens, mean {lengths.mean():.1f}, max {lengths.max()}")
    model = build_model(shape, device, dtype)
    n_params = sum(p.numel() for p in model.parameters())
    results["parameters"] = n_params
    log(f"model built: {n_params / 1e6:.1f}M parameters, {shape['num_hidden_layers']} blocks")
    n_layers = shape["num_hidden_layers"]
    budget = default_max_tokens(
        model, n_layers=n_layers, chunk_rows=default_chunk_size("mean", n_layers, 0),
        longest=int(lengths.max()),
    )  # fmt: skip
    results["max_tokens"] = budget
    batches = planned_batches(lengths, n_layers, shape["hidden_size"], args.batch_size, budget)
    padded = int(sum(len(b) * lengths[b].max() for b in batches))
    results["batches"], results["padded_tokens"] = len(batches), padded
    log(f"{len(batches)} batches, {padded} padded tokens, token budget {budget}")
    flops = model_flops(model, lengths)
    save()

    runs = {
        "bare": lambda: bare_forward(model, token_ids, batches, device),
        "repdrift_mean": lambda: repdrift_extract(
            model, token_ids, "mean", args.batch_size, budget, device
        ),
        "repdrift_last": lambda: repdrift_extract(
            model, token_ids, "last", args.batch_size, budget, device
        ),
    }
    log("warm-up (one pass of each, not timed)")
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    peaks: dict[str, int] = {}
    for repeat in range(args.repeats):
        for key, run in runs.items():
            reset_peak(device)
            seconds = run()
            times[key].append(seconds)
            peaks[key] = max(peaks.get(key, 0), peak_bytes(device))
            best = min(times[key])
            entry = {
                "seconds": times[key], "best_s": best, "median_s": statistics.median(times[key]),
                "tokens_per_s": results["tokens"] / best, "peak_memory_bytes": peaks[key],
                "tflops": flops / best / 1e12,
                "mfu": flops / best / (peak * 1e12) if peak else None,
            }  # fmt: skip
            results["runs"][key] = entry
            log(f"repeat {repeat + 1}/{args.repeats} {key:14s} {seconds:8.3f} s")
        for key in ("repdrift_mean", "repdrift_last"):
            ratio = results["runs"][key]["best_s"] / results["runs"]["bare"]["best_s"]
            results["runs"][key]["ratio_to_bare"] = ratio
        save()

    log("results (best of repeats):")
    for key, entry in results["runs"].items():
        mfu = f", MFU {entry['mfu']:.1%}" if entry["mfu"] is not None else ""
        ratio = f", {entry['ratio_to_bare']:.2f}x bare" if "ratio_to_bare" in entry else ""
        log(
            f"  {key:14s} {entry['best_s']:8.3f} s{ratio}, {entry['tokens_per_s']:,.0f} tokens/s"
            f"{mfu}, peak {'device' if device.type == 'cuda' else 'RSS'} memory "
            f"{entry['peak_memory_bytes'] / 2**30:.2f} GiB"
        )
    save()
    if args.out is not None:
        log(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
