"""Token-level tables (token_drift, token_profile, token_samples) made up for the plot and
report tests, shaped as repdrift.analysis.tokens writes them: texts of different lengths, so
that late positions are reached by few samples, and long texts and run names."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from repdrift.store.results import Results, final_step

#: A review of about 300 words, with a long URL that has no space to break at.
LONG_TEXT = (
    "I bought this after reading the reviews and honestly expected more. " * 20
    + "see https://example.com/"
    + "a-very-long-path-without-any-space-" * 6
    + " for details."
)


def sample_lengths(n_samples: int = 120, seed: int = 0) -> np.ndarray:
    """Token counts per sample: most texts short, a long tail up to 256 tokens."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.gamma(2.0, 35, n_samples).astype(int) + 8, 8, 256)


def profile_table(
    task: str = "t",
    runs: dict[str, str] | None = None,
    n_layers: int = 4,
    lengths: np.ndarray | None = None,
) -> pd.DataFrame:
    """``token_profile`` rows: per run, layer and position the mean drift over the samples
    that reach the position (``n_tokens`` of them) and its SD; per token type too.

    ``runs`` maps run name → method (default: two seeds of LoRA and of full fine-tuning).
    """
    runs = runs or {f"{task}_{m}_seed{s}": m for m in ("lora", "full") for s in (1, 2)}
    lengths = sample_lengths() if lengths is None else np.asarray(lengths)
    rng = np.random.default_rng(1)
    rows = []
    for run, method in runs.items():
        for layer in range(n_layers):
            base = {"task": task, "method": method, "run": run, "step": 0,
                    "layer": f"layer_{layer}", "layer_index": layer}  # fmt: skip
            for p in range(int(lengths.max())):
                n = int((lengths > p).sum())
                drift = 0.01 * (layer + 1) * (1 + p / 100) + rng.normal(0, 0.002)
                rows.append({**base, "by": "position", "key": str(p), "position": p,
                             "drift": drift, "drift_sd": 0.02 * (layer + 1),
                             "n_tokens": n})  # fmt: skip
            for k, kind in enumerate(("special", "text")):
                rows.append({**base, "by": "type", "key": kind, "position": -1,
                             "drift": 0.01 * layer + 0.002 * k, "drift_sd": 0.01,
                             "n_tokens": int(lengths.sum())})  # fmt: skip
    return pd.DataFrame(rows)


def with_token_tables(results: Results, n_layers: int | None = None) -> Results:
    """``results`` with token-level tables for its runs' final steps (cka_debiased drift
    beside the pooled one, per-position profiles, most-moved samples with a long text)."""
    final = final_step(results.drift)
    final = final[final["metric"] == "cka_debiased"]
    drift, profile, samples = [], [], []
    lengths = sample_lengths()
    for (task, run, method), part in final.groupby(["task", "run", "method"]):
        layers = sorted(part["layer_index"].unique())[-(n_layers or 99) :]
        for _, row in part[part["layer_index"].isin(layers)].iterrows():
            labels = {"task": task, "method": method, "run": run, "step": 0,
                      "layer": row["layer"], "layer_index": row["layer_index"]}  # fmt: skip
            value = float(row["drift"]) * 1.2
            drift.append({**labels, "metric": "cka_debiased", "level": "tokens",
                          "similarity": 1 - value, "drift": value, "ci_low": value * 0.9,
                          "ci_high": value * 1.1, "p_perm": np.nan, "n": len(lengths),
                          "n_tokens": int(lengths.sum()), "n_null": 0})  # fmt: skip
            for rank in (1, 2, 3):
                samples.append({**labels, "rank": rank, "sample": rank, "sample_id": f"s{rank}",
                                "n_tokens": 250, "drift": value / rank,
                                "top_tokens": "Ġexpected@12 (0.51), Ġhonestly@9 (0.48)",
                                "text": LONG_TEXT})  # fmt: skip
        profile.append(profile_table(task, {run: method}, len(layers), lengths))
    return replace(
        results, token_drift=pd.DataFrame(drift), token_profile=pd.concat(profile),
        token_samples=pd.DataFrame(samples),
    )  # fmt: skip
