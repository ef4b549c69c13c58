"""The report's tables, read back against the result tables they are made from (a synthetic
study where LoRA drifts much less than full fine-tuning in the top layers)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from _synthetic_results import IDS, PLANTED, build
from repdrift.plots.style import method_label
from repdrift.report.tables import (
    comparison_tables,
    describe_model,
    describe_variant,
    drift_tables,
    fmt_p,
    fmt_pct,
    layer_label,
    metrics_table,
    seed_stars,
    setup_table,
)
from repdrift.store.results import final_step, load_results

METRIC = "cka_linear"
LAYERS = ["embeddings", "0", "1", "2", "3", "4", "5"]  # as the tables show them
LORA, FULL = method_label("lora"), method_label("full")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("tables")
    return load_results(build(root, with_weights=False, tasks=("sst2",)))


def _num(x: float) -> str:
    """The plain reference of the report's number format: 3 decimals, typeset minus."""
    text = f"{x:.3f}"
    return "0.000" if float(text) == 0 else text.replace("-", "−")


def _stars(p: float) -> str:
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def test_comparison_table_rows_are_the_comparison_rows(results) -> None:
    (table,) = comparison_tables(results, METRIC, "p_holm", 0.05, 0.95)
    comp = results.comparison
    comp = comp[comp["metric"] == METRIC].sort_values("layer_index")
    assert table.columns[:4] == ["Layer", LORA, FULL, f"{LORA} − {FULL}"]
    assert [row[0] for row in table.rows] == LAYERS
    for row, strong, (_, r) in zip(table.rows, table.strong, comp.iterrows(), strict=True):
        assert row[1] == _num(r["drift_a"]) and row[2] == _num(r["drift_b"])
        assert row[3] == _num(r["drift_diff"]) + _stars(r["p_holm"])
        assert row[4] == f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
        assert strong == (r["p_holm"] < 0.05)
    # the planted layers, where LoRA moved much less, are the significant (bold) ones
    assert [row[0] for row, s in zip(table.rows, table.strong, strict=True) if s] == [
        str(i) for i in PLANTED
    ]


def test_drift_table_seed_ranges_from_the_drift_rows(results) -> None:
    (table,) = drift_tables(results, METRIC)
    assert table.columns == ["Layer"] + ["drift", "seed range", "interval", "seed floor"] * 2
    assert [g for g, _ in table.groups] == ["", LORA, FULL]
    assert [row[0] for row in table.rows] == LAYERS
    drift = final_step(results.drift)
    drift = drift[drift["metric"] == METRIC]
    for row in table.rows:
        layer = -1 if row[0] == "embeddings" else int(row[0])
        for k, method in enumerate(("lora", "full")):
            seeds = drift[(drift["method"] == method) & (drift["layer_index"] == layer)]["drift"]
            assert len(seeds) == 3
            assert row[2 + 4 * k] == f"{_num(seeds.min())}–{_num(seeds.max())}"


def test_metrics_table_has_a_column_per_metric(results) -> None:
    table = metrics_table(results, "p_holm", 0.05)
    metrics = list(dict.fromkeys(results.comparison["metric"]))
    assert len(metrics) >= 2 and table.columns == ["Task", "Layer", *metrics]
    assert [row[1] for row in table.rows] == LAYERS
    one = results.comparison[results.comparison["metric"] == METRIC]
    alone = dataclasses.replace(results, comparison=one)
    assert metrics_table(alone, "p_holm", 0.05) is None  # nothing to compare across


def test_setup_table_lists_each_method_and_its_seeds(results) -> None:
    table = setup_table(results)
    by_method = {row[2]: row for row in table.rows}
    assert set(by_method) == {LORA, FULL}
    for row in by_method.values():
        assert row[0] == "sst2" and row[1] == "toy-bert (BertModel)"
        assert row[4:] == ["3", "1, 2, 3", "final, 100, 200", str(len(IDS)), "mean"]


def test_formats() -> None:
    assert [fmt_p(p) for p in (None, float("nan"), 0.0004, 0.0123)] == ["–", "–", "< 0.001", "0.012"]
    assert [fmt_pct(x) for x in (None, float("inf"), 0.004, -0.68, 0.5)] == [
        "–", "–", "0%", "−68%", "+50%",
    ]  # fmt: skip
    assert layer_label(-1) == "embeddings" and layer_label(3) == "3"
    welch = pd.Series({"test": "welch", "p_holm": 0.004})
    assert seed_stars(welch, "p_holm") == "**"
    assert seed_stars(pd.Series({"test": "structural zero", "p_holm": 0.0}), "p_holm") == " ○"
    assert seed_stars(pd.Series({"test": "half-samples", "p_holm": 0.0}), "p_holm") == ""


def test_model_and_variant_descriptions() -> None:
    assert describe_model(None) == "–"
    assert describe_model({"name": "bert-base", "architecture": "BertModel"}) == (
        "bert-base (BertModel)"
    )
    long = str(Path("/data/users/someone/models/finetuned/sst2/lora_seed42_final"))
    assert describe_model({"path": long}) == "…/finetuned/sst2/lora_seed42_final"
    assert describe_model({"training": {"seed": 1}}) == "–"
    runs = [{"model": {"r": 8, "lora_alpha": 16}}, {"model": {"r": 8, "lora_alpha": 16}},
            {"model": {"r": 4}}, {"model": "full"}]  # fmt: skip
    assert describe_variant(runs) == "r = 4; r = 8, α = 16"
    assert describe_variant([{"model": None}]) == "–"
