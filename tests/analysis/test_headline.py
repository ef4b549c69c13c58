"""The headline of a results folder (the numbers the CLI prints and the report words), on real
results of a synthetic study: final step, default metric, the planted method difference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _synthetic_results import PLANTED, L, write_study
from repdrift.analysis.compare_runs import compare
from repdrift.analysis.headline import CORRECTIONS, headline
from repdrift.errors import InputError
from repdrift.report.headlines import headlines, layer_ranges
from repdrift.store.results import default_metric, final_step, load_results

TASKS = ("toy", "other")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two tasks, 3 seeds, checkpoints 100 and 200 besides the final model (step 0)."""
    root = tmp_path_factory.mktemp("headline")
    paths = write_study(root / "runs", tasks=TASKS)
    compare(paths, out=root / "results", n_boot=50, n_perm=20, progress=False)
    return load_results(root / "results")


def _final_blocks(res, metric: str) -> pd.DataFrame:
    final = final_step(res.drift)
    return final[(final.metric == metric) & (final.layer_index >= 0)]


def test_headline_summarises_the_final_step_of_the_default_metric(results) -> None:
    h = headline(results)
    assert h.metric == default_metric(results) == "cka_debiased"
    assert h.tasks == sorted(TASKS)
    assert (h.correction, h.alpha) == ("p_holm", 0.05)
    rows = _final_blocks(results, h.metric)
    assert set(rows.step) == {0}  # the final model, not the checkpoints
    for task in TASKS:
        for method in ("lora", "full"):
            mine = rows[(rows.task == task) & (rows.method == method)]
            assert h.mean_drift.loc[task, method] == pytest.approx(mine.drift.mean())
            top = mine[mine.layer_index == L - 1]
            assert h.top_layer_drift.loc[task, method] == pytest.approx(top.drift.mean())
    # the checkpoints drift less (a fraction of the final drift): averaging them in would show
    every = results.drift[(results.drift.metric == h.metric) & (results.drift.layer_index >= 0)]
    assert h.mean_drift.loc["toy", "full"] > every[(every.task == "toy") & (every.method == "full")].drift.mean()  # fmt: skip


def test_method_comparison_finds_the_planted_layers(results) -> None:
    h = headline(results)
    assert list(h.methods.task) == sorted(TASKS)
    comp = results.comparison[results.comparison.metric == h.metric]
    for task in TASKS:
        row = h.comparison(task)
        assert row is not None
        assert (row.method_a, row.method_b) == ("lora", "full")
        assert set(PLANTED) <= set(row.significant_less)
        assert row.significant_more == []
        assert row.layers_significant == sorted(row.significant_less + row.significant_more)
        assert set(row.significant_less) <= set(row.layers_a_less)
        mine = comp[comp.task == task]
        assert row.n_layers == len(mine) == L + 1  # the embeddings are compared too
        assert row.n_tested == mine.p_holm.notna().sum()
        assert row.p_less == pytest.approx(mine[mine.layer_index.isin(row.significant_less)].p_holm.max())  # fmt: skip
        blocks = mine[mine.layer_index >= 0]
        assert row.drift_a == pytest.approx(blocks.drift_a.mean())
        assert row.drift_b == pytest.approx(blocks.drift_b.mean())
        assert row.mean_diff == pytest.approx(blocks.drift_diff.mean()) and row.mean_diff < 0
        assert (row.n_seeds_a, row.n_seeds_b) == (3, 3) and not row.samples_test
    assert h.comparison("nonexistent") is None


def test_peaks_are_the_layers_of_largest_mean_drift(results) -> None:
    h = headline(results, metric="cka_linear")
    final = final_step(results.drift)
    final = final[final.metric == "cka_linear"]
    for task in TASKS:
        assert sorted(h.task_methods(task)) == ["full", "lora"]
        for method in ("full", "lora"):
            means = final[(final.task == task) & (final.method == method)].groupby("layer_index").drift.mean()  # fmt: skip
            peak = h.peaks[(h.peaks.task == task) & (h.peaks.method == method)].iloc[0]
            assert peak.layer_index == means.idxmax()
            assert peak.drift == pytest.approx(means.max())
    # drift grows with depth: full fine-tuning peaks in the last block
    assert set(h.peaks[h.peaks.method == "full"].layer_index) == {L - 1}


def test_the_report_words_the_headline(results) -> None:
    h = headline(results)
    text = headlines(results)
    for task in TASKS:
        row = h.comparison(task)
        assert layer_ranges(row.significant_less) in text[task][1]
        assert f"layer {L - 1} for" in text[task][-1] or f"layer {L - 1} for both" in text[task][-1]


def test_correction_and_alpha(results) -> None:
    holm = headline(results)
    raw = headline(results, correction="p", alpha=0.2)
    for task in TASKS:
        # unadjusted p-values at a looser level find at least as many layers
        assert set(holm.comparison(task).layers_significant) <= set(raw.comparison(task).layers_significant)  # fmt: skip
    assert CORRECTIONS == ("p_holm", "p_bh", "p")
    with pytest.raises(InputError, match="correction='holm'"):
        headline(results, correction="holm")
    with pytest.raises(InputError, match=r"alpha=1\.5"):
        headline(results, alpha=1.5)


def test_checkpoint_only_runs_are_summarised_at_their_latest_checkpoint(tmp_path: Path) -> None:
    """Runs without a step_000000: the headline uses each run's latest checkpoint (the most
    trained model it has), as the analysis, the report and the figures do."""
    paths = write_study(tmp_path / "runs", tasks=("toy",), steps=((100, 0.5), (200, 1.0)))
    compare(paths, out=tmp_path / "results", n_boot=0, n_perm=0, metrics=["cka_linear"], progress=False)  # fmt: skip
    res = load_results(tmp_path / "results")
    h = headline(res)
    assert h.metric == "cka_linear"
    rows = _final_blocks(res, "cka_linear")
    assert set(rows.step) == {200}
    assert h.mean_drift.loc["toy", "lora"] == pytest.approx(rows[rows.method == "lora"].drift.mean())  # fmt: skip
    assert np.isfinite(h.mean_drift.to_numpy()).all()


def test_study_answer_line_and_single_seed_claims_nothing(results, tmp_path: Path) -> None:
    h = headline(results)
    assert h.study is not None and h.study.n_tasks == len(TASKS)
    line = h.study_line()
    assert line.startswith(
        f"answer (cka_debiased, drift averaged over blocks, seeds as the unit, in these "
        f"{len(TASKS)} tasks)"
    )
    assert f"{h.study.estimate:+.4f}" in line and "95% CI" in line
    assert "Welch-type t-test of the task differences over" in line
    assert "permutation of the method labels within tasks" in line
    assert "tasks in general" not in line
    one = compare(
        write_study(tmp_path / "runs", seeds=(1,), steps=((0, 1.0),), tasks=("toy",)),
        n_boot=50, n_perm=0, progress=False, metrics=["cka_debiased"],
    )  # fmt: skip
    h1 = headline(one)
    assert h1.study is None and h1.answers["test"].tolist() == ["none"]
    row = h1.comparison("toy")
    assert row.layers_significant == [] and row.n_tested == 0 and row.samples_test
    assert "no seed-level test" in h1.study_line()
