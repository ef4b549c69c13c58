"""Benchmark: the seed study's whole shape end to end through the runner, stage by stage.

The seed study: TinyLlama-1.1B fine-tuned fully and with LoRA on 4 tasks, 3 training seeds
each, 750 validation samples per task of up to 384 tokens (mean about 154). Here, with nothing
downloaded:

- base: a randomly initialised decoder of TinyLlama-1.1B's shape (``LlamaConfig``: 22 blocks,
  width 2048, MLP 5632, 32 heads with 4 key/value heads, vocabulary 32000), saved with a
  word-level tokenizer (one token per word);
- full fine-tunes: copies of the base with every block perturbed by seeded noise
  (``tests/_perturbed.py``'s rule), one per task and seed;
- LoRA adapters: peft, rank 8 on ``q_proj`` / ``v_proj``, B drawn at random so they are no
  no-ops, one per task and seed;
- data: per task a local CSV of synthetic texts whose token counts follow the study's length
  distribution (log-normal, mean about 154, clipped to 24-384; ``benchmarks/gpu.py``);
- an experiment file (mean pooling, every layer, the default metrics, intervals and nulls,
  weights) run through the runner's stages in order, as ``repdrift run`` runs them: extract
  (every run), compare, weights, figures, report, each timed, with peak host memory (RSS, the
  running peak) and peak device memory (per stage).

Ratios are against the bare forward measured in the same process: the base backbone,
``model(**batch)`` without hooks over the batches the extraction plans for each task's samples
(same ``batch_size`` and ``max_tokens``), times the number of models extracted per task (LoRA
runs unmerged, so their own forward is somewhat dearer than the base's).

    .venv/bin/python -u benchmarks/study.py --quick              # tiny shape on a CPU, < 60 s
    .venv/bin/python -u benchmarks/study.py --device cuda        # the study's shape on a GPU

``--out DIR`` keeps everything (models, data, experiment file, runs, results, report) in DIR
for inspection; without it a temporary folder is used and removed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu import FULL, log, planned_batches, sample_lengths  # the sibling benchmark

QUICK = {
    "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 172,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}  # fmt: skip
STAGES = ("extract", "compare", "weights", "figures", "report")
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def quiet() -> None:
    """No per-file progress bars nor load reports from transformers / datasets."""
    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def tokenizer(vocab_size: int):
    """A word-level tokenizer: words ``w0`` ... one token each, ``<pad>`` for padding."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS)}
    vocab.update({f"w{i}": len(SPECIALS) + i for i in range(vocab_size - len(SPECIALS))})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>",
    )  # fmt: skip


def write_data(root: Path, tasks: list[str], n: int, max_len: int, vocab: int) -> dict[str, Path]:
    """One CSV per task: ``n`` texts of study-like token counts, an id and a label column."""
    import pandas as pd

    files = {}
    for k, task in enumerate(tasks):
        rng = np.random.default_rng(100 + k)
        lengths = sample_lengths(n, max_len, seed=k)
        texts = [" ".join(f"w{i}" for i in rng.integers(0, vocab - len(SPECIALS), m)) for m in lengths]
        files[task] = root / "data" / f"{task}.csv"
        files[task].parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"id": [f"{task}-{i}" for i in range(n)], "text": texts,
                      "label": rng.integers(0, 2, n)}).to_csv(files[task], index=False)  # fmt: skip
    return files


def build_models(root: Path, shape: dict, tasks: list[str], seeds: list[int], device, dtype) -> Path:
    """The base, a perturbed full copy and a LoRA adapter per task and seed; the base's path."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer(shape["vocab_size"])
    config = LlamaConfig(**shape, use_cache=False, pad_token_id=SPECIALS.index("<pad>"))
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device: 1.1B parameters on a CPU take long
        model = LlamaForCausalLM(config)
    model = model.to(dtype).eval().requires_grad_(False)
    base = root / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    state = {k: v.clone() for k, v in model.model.layers.state_dict().items()}
    for t, task in enumerate(tasks):
        for seed in seeds:
            gen = torch.Generator(device=device).manual_seed(1000 * t + seed)
            with torch.no_grad():  # tests/_perturbed.py: p += 0.05 std(p) N(0, 1)
                for p in model.model.layers.parameters():
                    noise = torch.randn(p.shape, generator=gen, device=device, dtype=torch.float32)
                    p.add_((0.05 * p.float().std() * noise).to(p.dtype))
            out = root / "models" / f"{task}_full_seed{seed}"
            model.save_pretrained(out)
            tok.save_pretrained(out)
            model.model.layers.load_state_dict(state)
            log(f"saved {out.name}")
    for t, task in enumerate(tasks):
        for seed in seeds:
            torch.manual_seed(5000 + 1000 * t + seed)
            lora = get_peft_model(model, LoraConfig(
                r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
            ))  # fmt: skip
            with torch.no_grad():
                for name, p in lora.named_parameters():
                    if "lora_B" in name:
                        p.normal_(0.0, 0.02)
            lora.save_pretrained(root / "adapters" / f"{task}_lora_seed{seed}")
            model = lora.unload()  # the base, without the adapter's layers
    log(f"saved {len(tasks) * len(seeds)} adapters")
    return base


def experiment_yaml(root: Path, base: Path, data: dict[str, Path], args, max_len: int) -> Path:
    """The experiment file (absolute paths), written to ``root/study.yaml``."""
    import yaml

    tasks = [{"name": t, "data": str(p), "split": "all", "text_fields": ["text"],
              "id_field": "id", "max_length": max_len} for t, p in data.items()]  # fmt: skip
    raw = {
        "name": "study-benchmark", "base_model": str(base), "tasks": tasks,
        "samples": args.samples, "seeds": args.seed_list,
        "variants": [
            {"method": "full", "path": str(root / "models" / "{task}_full_seed{seed}")},
            {"method": "lora", "path": str(root / "adapters" / "{task}_lora_seed{seed}")},
        ],
        "extraction": {"pooling": "mean", "layers": "all", "batch_size": args.batch_size,
                       "max_tokens": args.max_tokens, "dtype": args.dtype,
                       "device": args.device},
        "analysis": {"n_boot": args.n_boot, "n_perm": args.n_perm, "weights": True,
                     "device": "auto" if args.device == "auto" else args.device},
        "output": str(root / "output"),
    }  # fmt: skip
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def bare_forward(base: Path, data: dict[str, Path], args, device, dtype, n_layers, hidden) -> float:
    """Seconds of the bare backbone forward over every task's planned batches (best of 2)."""
    import pandas as pd
    from transformers import AutoModel, AutoTokenizer

    from repdrift.extraction.batching import pad_batch

    model = AutoModel.from_pretrained(base, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(base)
    per_task = []
    for path in data.values():
        texts = pd.read_csv(path)["text"].tolist()
        ids = [tok(t, truncation=True, max_length=args.max_len)["input_ids"] for t in texts]
        lengths = np.array([len(i) for i in ids])
        batches = planned_batches(lengths, n_layers, hidden, args.batch_size, args.max_tokens)
        per_task.append((ids, batches))
    best = float("inf")
    for _ in range(2):
        _sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            for ids, batches in per_task:
                for batch in batches:
                    x, mask = pad_batch([ids[i] for i in batch], pad_id=tok.pad_token_id,
                                        padding_side="right")  # fmt: skip
                    model(input_ids=x.to(device), attention_mask=mask.to(device), use_cache=False)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    del model
    return best


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_stages(path: Path, device) -> tuple[dict[str, dict[str, float]], Any]:
    """The runner's stages in ``repdrift run``'s order, each timed: {stage: measures}."""
    from repdrift.runner.executors import run_local
    from repdrift.runner.experiment_file import load_experiment
    from repdrift.runner.stages import run_analysis, run_figures, run_report, run_weights
    from repdrift.runner.study import make_plan

    exp = load_experiment(path)
    plan = make_plan(exp)
    problems = plan.problems()
    if problems:
        raise SystemExit("\n".join(problems))
    steps = {
        "extract": lambda: run_local(plan.todo, progress=False),
        "compare": lambda: run_analysis(exp, plan.jobs, progress=False),
        "weights": lambda: run_weights(exp, plan.jobs, progress=False),
        "figures": lambda: run_figures(exp),
        "report": lambda: run_report(exp),
    }
    out = {}
    for stage in STAGES:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        started = time.perf_counter()
        result = steps[stage]()
        _sync(device)
        seconds = time.perf_counter() - started
        if stage == "extract" and result.failed:
            raise SystemExit(f"extraction failed: {result.failed}")
        out[stage] = {
            "seconds": seconds,
            "host_peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "device_peak_gib": torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == "cuda" else float("nan"),
        }  # fmt: skip
        log(f"{stage}: {seconds:.1f} s")
    return out, exp


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny shape on a CPU (< 60 s)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (extract and compare)")
    parser.add_argument("--dtype", default="auto", help="model dtype: auto = bf16 on a GPU")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep everything in this folder (default: a temporary one)")  # fmt: skip
    parser.add_argument("--tasks", type=int, default=None, help="default 4 (quick: 2)")
    parser.add_argument("--seeds", type=int, default=None, help="per method; default 3 (quick: 2)")
    parser.add_argument("--samples", type=int, default=None, help="default 750 (quick: 24)")
    parser.add_argument("--max-len", type=int, default=None, help="default 384 (quick: 96)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=8192, help="padded tokens per batch")
    parser.add_argument("--n-boot", type=int, default=None, help="default 1000 (quick: 50)")
    parser.add_argument("--n-perm", type=int, default=None, help="default 1000 (quick: 50)")
    args = parser.parse_args(argv)
    q = args.quick
    shape = QUICK if q else FULL
    args.samples = args.samples or (24 if q else 750)
    args.max_len = args.max_len or (96 if q else 384)
    args.seed_list = list(range(1, (args.seeds or (2 if q else 3)) + 1))
    args.n_boot = args.n_boot if args.n_boot is not None else (50 if q else 1000)
    args.n_perm = args.n_perm if args.n_perm is not None else (50 if q else 1000)
    tasks = [f"task{k + 1}" for k in range(args.tasks or (2 if q else 4))]

    from repdrift.common.devices import resolve_device, resolve_dtype

    quiet()
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"{'quick' if q else 'TinyLlama-1.1B'} shape on {device} ({name}), {dtype}, "
        f"{len(tasks)} tasks x {len(args.seed_list)} seeds x 2 methods, {args.samples} samples, "
        f"torch threads {torch.get_num_threads()}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        data = write_data(root, tasks, args.samples, args.max_len, shape["vocab_size"])
        base = build_models(root, shape, tasks, args.seed_list, device, dtype)
        path = experiment_yaml(root, base, data, args, args.max_len)
        setup = time.perf_counter() - started
        log(f"models, adapters and data built in {setup:.1f} s; experiment file {path}")
        bare_one = bare_forward(base, data, args, device, dtype, shape["num_hidden_layers"],
                                shape["hidden_size"])  # fmt: skip
        models_per_task = 1 + 2 * len(args.seed_list)
        bare = bare_one * models_per_task
        log(f"bare forward, base, every task: {bare_one:.2f} s (x {models_per_task} models "
            f"per task = {bare:.2f} s)")  # fmt: skip
        stages, exp = run_stages(path, device)
        n_tokens = sum(
            min(int(n), args.max_len)
            for k in range(len(tasks))
            for n in sample_lengths(args.samples, args.max_len, seed=k)
        ) * models_per_task  # fmt: skip
        total = sum(s["seconds"] for s in stages.values())
        print(f"\n{'stage':10s} {'seconds':>9s} {'x bare':>8s} {'host peak GiB':>14s} "
              f"{'device peak GiB':>16s}")  # fmt: skip
        for stage, s in stages.items():
            print(f"{stage:10s} {s['seconds']:9.1f} {s['seconds'] / bare:8.2f} "
                  f"{s['host_peak_gib']:14.2f} {s['device_peak_gib']:16.2f}")  # fmt: skip
        print(f"{'total':10s} {total:9.1f} {total / bare:8.2f}")
        print(f"bare forward (base backbone, {models_per_task} models per task): {bare:.1f} s; "
              f"extraction {n_tokens / stages['extract']['seconds']:,.0f} tokens/s "
              f"({n_tokens:,} tokens), bare {n_tokens / bare:,.0f} tokens/s; setup (not in "
              f"total) {setup:.1f} s")  # fmt: skip
        report = exp.report_path
        print(f"report: {report if args.out else '(temporary folder, removed)'} "
              f"({'written' if report.exists() else 'MISSING'})")  # fmt: skip
        result = {"device": name, "dtype": str(dtype), "stages": stages, "bare_seconds": bare,
                  "tokens": n_tokens, "setup_seconds": setup}  # fmt: skip
        if args.out:
            (root / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
