"""Synthetic studies for the plot and report tests: real run directories, real compare(),
and a weight table from real tiny BERT checkpoints and PEFT adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertModel

from _tiny_models import tiny_bert_config
from repdrift.analysis.compare_runs import compare
from repdrift.store.writer import write_run
from repdrift.weights import weight_drift

N, D, L = 80, 8, 6
IDS = [f"s{i}" for i in range(N)]
TASKS = ("sst2", "mrpc")
SEEDS = (1, 2, 3)
STEPS = ((100, 0.35), (200, 0.7), (0, 1.0))  # (step, fraction of the final drift); 0 = final
#: Layer indices (0-based blocks) where LoRA drifts much less than full fine-tuning.
PLANTED = (3, 4, 5)


def _layer_names(n_layers: int = L) -> list[str]:
    return ["embeddings", *(f"layer_{i}" for i in range(n_layers))]


def write_study(
    root: Path,
    *,
    identical: bool = False,
    seeds: tuple[int, ...] = SEEDS,
    steps: tuple[tuple[int, float], ...] = STEPS,
    tasks: tuple[str, ...] = TASKS,
    n_layers: int = L,
    lora_frozen: tuple[str, ...] = (),
) -> list[Path]:
    """Run folders: per task a base run and LoRA / full runs over seeds and steps.

    Drift grows with depth (noise scale ``profile``); LoRA's noise is 0.25× full's in the
    ``PLANTED`` layers and equal elsewhere. ``identical=True`` makes every fine-tuned run a
    copy of its base (no drift, no difference). Layers named in ``lora_frozen`` are copied
    unchanged into every LoRA run (structural zeros, as the embeddings under LoRA).
    """
    names = _layer_names(n_layers)
    profile = np.linspace(0.05, 1.0, len(names))
    paths = []
    for t, task in enumerate(tasks):
        rng = np.random.default_rng(t)
        base = {name: rng.normal(size=(N, D)) for name in names}
        write_run(
            root / f"{task}_base", base, task=task, kind="base", sample_ids=IDS,
            model={"name": "toy-bert", "architecture": "BertModel"},
        )  # fmt: skip
        paths.append(root / f"{task}_base")
        for m, method in enumerate(("lora", "full")):
            factor = np.ones(len(names))
            if method == "lora":
                factor[[names.index(f"layer_{i}") for i in PLANTED]] = 0.25
            for seed in seeds:
                path = root / f"{task}_{method}_seed{seed}"
                noise = np.random.default_rng(1000 * t + 100 * m + seed)
                draws = {name: noise.normal(size=(N, D)) for name in names}
                for step, frac in steps:
                    frozen = lora_frozen if method == "lora" else ()
                    layers = {
                        name: base[name]
                        + (0.0 if identical or name in frozen else frac * s * f) * draws[name]
                        for name, s, f in zip(names, profile, factor, strict=True)
                    }
                    write_run(
                        path, layers, task=task, kind=method, sample_ids=IDS, step=step,
                        model={"name": "toy-bert", "training": {"seed": seed}},
                    )  # fmt: skip
                paths.append(path)
    return paths


def tiny_weights(root: Path) -> pd.DataFrame:  # noqa: F821
    """weight_drift() of 2 full fine-tunes and 2 LoRA adapters of a tiny 4-layer BERT."""
    config = tiny_bert_config()
    torch.manual_seed(0)
    BertModel(config).save_pretrained(root / "base")
    variants = {}
    for seed in (1, 2):
        gen = torch.Generator().manual_seed(seed)
        full = BertModel.from_pretrained(root / "base")
        with torch.no_grad():
            for i, layer in enumerate(full.encoder.layer):
                grow = (i + 1) / len(full.encoder.layer)  # later layers change more
                for module in (layer.attention.self.query, layer.attention.self.value,
                               layer.intermediate.dense, layer.output.dense):  # fmt: skip
                    w = module.weight
                    u = torch.randn(w.shape[0], 1, generator=gen)
                    v = torch.randn(1, w.shape[1], generator=gen)
                    spike = u @ v / (u.norm() * v.norm())  # unit spectral norm, rank 1
                    noise = torch.randn(w.shape, generator=gen)
                    w += grow * (
                        0.1 * w.std() * noise + 0.3 * torch.linalg.matrix_norm(w, 2) * spike
                    )
        full.save_pretrained(root / f"full{seed}")
        variants[f"full{seed}"] = root / f"full{seed}"
        torch.manual_seed(10 + seed)
        lora = get_peft_model(
            BertModel.from_pretrained(root / "base"),
            LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                       init_lora_weights=False),
        )  # fmt: skip
        with torch.no_grad():
            for name, param in lora.named_parameters():
                if "lora_B" in name:
                    param.mul_(0.05)  # a small update, as after a short LoRA run
        lora.save_pretrained(root / f"lora{seed}")
        variants[f"lora{seed}"] = root / f"lora{seed}"
    # Tiny float64 SVDs are ~100x slower with intra-op threads on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return weight_drift(root / "base", variants, progress=False)
    finally:
        torch.set_num_threads(threads)


def build(root: Path, *, with_weights: bool = True, **study) -> Path:
    """The results folder of a synthetic study (plus weights.parquet when asked)."""
    paths = write_study(root / "runs", **study)
    out = root / "results"
    compare(paths, out=out, n_boot=100, n_perm=50, progress=False)
    if with_weights:
        tiny_weights(root / "models").to_parquet(out / "weights.parquet", index=False)
    return out
