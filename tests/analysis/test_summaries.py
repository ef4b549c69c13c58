"""Summaries across runs: task ranking, method comparison, seed noise floor.

Each is checked against plain computations written here on small hand-made tables and runs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from repdrift.analysis.pairing import describe, group_by_task
from repdrift.analysis.summaries import compare_methods, noise_floor, rank_tasks
from repdrift.metrics import compute
from repdrift.store.writer import write_run


def _drift_table(values: dict[tuple[str, str, int], list[float]], *, layers=("layer_0", "layer_1"),
                 metric="cka_debiased", checkpoint_noise=True) -> pd.DataFrame:  # fmt: skip
    """values[(task, method, layer i)] = drift per seed; also a checkpoint step 50 per run
    with a wildly different drift, which every summary must ignore (step 0 is the final model)."""
    rows = []
    for (task, method, li), drifts in values.items():
        for seed, d in enumerate(drifts, start=1):
            run = f"{task}_{method}_seed{seed}"
            base = {"run": run, "task": task, "method": method, "seed": seed,
                    "layer": layers[li], "layer_index": li, "metric": metric}  # fmt: skip
            rows.append({**base, "step": 0, "drift": d})
            if checkpoint_noise:
                rows.append({**base, "step": 50, "drift": 9.0})
    return pd.DataFrame(rows)


def test_rank_tasks_means_final_step_and_ranks_within_layer():
    drift = _drift_table({
        ("sst2", "full", 0): [0.125, 0.375], ("mrpc", "full", 0): [0.5, 0.7],
        ("rte", "full", 0): [0.25, 0.25],
        ("sst2", "full", 1): [0.6, 0.6], ("mrpc", "full", 1): [0.1, 0.3],
        ("rte", "full", 1): [0.6, 0.6],
    })  # fmt: skip
    ranked = rank_tasks(drift).set_index(["layer", "task"])
    assert ranked.loc[("layer_0", "mrpc"), "mean_drift"] == pytest.approx(0.6)
    assert ranked.loc[("layer_0", "sst2"), "mean_drift"] == 0.25  # exact, so the tie is real
    assert ranked.loc[("layer_0", "mrpc"), "rank"] == 1
    assert {ranked.loc[("layer_0", t), "rank"] for t in ("sst2", "rte")} == {2}  # tie: min rank
    assert ranked.loc[("layer_1", "sst2"), "rank"] == ranked.loc[("layer_1", "rte"), "rank"] == 1
    assert ranked.loc[("layer_1", "mrpc"), "rank"] == 3
    assert list(rank_tasks(drift)["layer_index"]) == sorted(rank_tasks(drift)["layer_index"])


def test_compare_methods_welch_on_seeds_without_replicates():
    lora0, full0 = [0.10, 0.12, 0.08], [0.30, 0.45, 0.35]
    lora1, full1 = [0.20, 0.22, 0.25], [0.21, 0.26, 0.19]
    drift = _drift_table({
        ("sst2", "lora", 0): lora0, ("sst2", "full", 0): full0,
        ("sst2", "lora", 1): lora1, ("sst2", "full", 1): full1,
    })  # fmt: skip
    out = compare_methods(drift, {}, methods=("lora", "full"), level=0.95, seed=0)
    out = out.set_index("layer")
    for layer, a, b in (("layer_0", lora0, full0), ("layer_1", lora1, full1)):
        row = out.loc[layer]
        x, y = np.array(a), np.array(b)
        assert row["drift_a"] == pytest.approx(x.mean()) and row["drift_b"] == pytest.approx(y.mean())
        assert row["drift_diff"] == pytest.approx(x.mean() - y.mean())
        assert row["p"] == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue)
        pooled = np.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1))
                         / (len(x) + len(y) - 2))  # fmt: skip
        correction = 1 - 3 / (4 * (len(x) + len(y)) - 9)
        assert row["effect_size"] == pytest.approx((x.mean() - y.mean()) / pooled * correction)
        assert row["rel_diff"] == pytest.approx((x.mean() - y.mean()) / y.mean())
        assert row["test"] == "welch" and row["n_seeds_a"] == row["n_seeds_b"] == 3
    # Holm over the family of one metric: the smaller p times 2, the larger max(p, that)
    p = out["p"].to_numpy()
    order = np.argsort(p)
    holm = np.minimum(1, np.maximum.accumulate(p[order] * np.array([2, 1])))
    assert out["p_holm"].to_numpy()[order] == pytest.approx(holm)


def test_compare_methods_skips_single_seeds_without_replicates_and_uses_them_with():
    drift = _drift_table({("sst2", "lora", 0): [0.1], ("sst2", "full", 0): [0.3]})
    assert compare_methods(drift, {}, methods=("lora", "full"), level=0.95, seed=0).empty
    rng = np.random.default_rng(0)
    replicates = {
        ("sst2_lora_seed1", 0, "layer_0", "cka_debiased"): 0.1 + 0.01 * rng.normal(size=200),
        ("sst2_full_seed1", 0, "layer_0", "cka_debiased"): 0.3 + 0.01 * rng.normal(size=200),
    }
    out = compare_methods(drift, replicates, methods=("lora", "full"), level=0.9, seed=0)
    row = out.iloc[0]
    assert row["test"] == "samples"  # one training per method: a sample-level description
    assert row["drift_diff"] == pytest.approx(-0.2)
    assert row["ci_low"] < -0.2 < row["ci_high"] and row["ci_high"] < 0
    assert np.isnan(row["effect_size"])


def test_noise_floor_is_mean_similarity_over_seed_pairs(tmp_path):
    rng = np.random.default_rng(3)
    ids = [f"s{i}" for i in range(40)]
    base = {f"layer_{i}": rng.normal(size=(40, 6)) for i in range(2)}
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=ids)
    runs = {}
    for seed in (1, 2, 3):
        layers = {k: v + 0.5 * rng.normal(size=v.shape) for k, v in base.items()}
        runs[seed] = layers
        write_run(tmp_path / f"full{seed}", layers, task="toy", kind="full", sample_ids=ids,
                  model={"training": {"seed": seed}})  # fmt: skip
    write_run(tmp_path / "lora1", base, task="toy", kind="lora", sample_ids=ids,
              model={"training": {"seed": 1}})  # fmt: skip
    infos = [describe(tmp_path / name) for name in ("base", "full1", "full2", "full3", "lora1")]
    table = noise_floor(group_by_task(infos), ["cka_linear", "cosine"])
    assert set(table["method"]) == {"full"}  # one LoRA seed: no pair, no row
    for _, row in table.iterrows():
        pairs = [compute(row["metric"], runs[a][row["layer"]], runs[b][row["layer"]])
                 for a, b in itertools.combinations((1, 2, 3), 2)]  # fmt: skip
        assert row["similarity"] == pytest.approx(np.mean(pairs), abs=1e-6)
        assert row["drift"] == pytest.approx(1 - row["similarity"])
        assert row["n_pairs"] == 3
