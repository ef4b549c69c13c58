"""The results folder's shared rules: which rows are the final step, which metric summaries show
by default, and the one table writer (format by suffix, atomic)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from repdrift.errors import InputError
from repdrift.store.results import (
    FINAL_MODEL_STEP,
    WEIGHTS_FILES,
    Results,
    default_metric,
    final_step,
    load_results,
    write_table,
    write_weights,
)


def _results(drift: pd.DataFrame, metrics: list[str] | None = None) -> Results:
    empty = pd.DataFrame()
    summary = {"settings": {"metrics": metrics}} if metrics is not None else {}
    return Results(drift, empty, empty, empty, empty, empty, summary)


def _drift(metrics: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"run": "r", "step": 0, "metric": metrics, "drift": [0.1] * len(metrics)}
    )


# --------------------------------------------------------------------------- final_step


def test_final_step_is_step_0_when_a_run_has_it() -> None:
    drift = pd.DataFrame(
        {
            "run": ["a", "a", "a", "b", "b", "c", "c"],
            "step": [100, 200, 0, 0, 50, 100, 300],
            "drift": [1, 2, 3, 4, 5, 6, 7],
        }
    )
    final = final_step(drift)
    # a and b: step 0, the saved final model (step_000000), not their last checkpoint;
    # c has no step 0: its latest checkpoint, the most trained model it has
    assert final.set_index("run")["step"].to_dict() == {"a": 0, "b": 0, "c": 300}
    assert list(final["drift"]) == [3, 4, 7]
    assert FINAL_MODEL_STEP == 0


def test_final_step_keeps_every_layer_and_metric_of_the_step() -> None:
    drift = pd.DataFrame(
        {"run": "a", "step": [0, 0, 100, 100], "layer": ["l0", "l1", "l0", "l1"]}
    )
    assert list(final_step(drift)["layer"]) == ["l0", "l1"]


def test_final_step_passes_tables_without_steps() -> None:
    empty = pd.DataFrame()
    assert final_step(empty) is empty
    no_steps = pd.DataFrame({"run": ["a"], "x": [1]})
    assert final_step(no_steps) is no_steps


# --------------------------------------------------------------------------- default_metric


def test_default_metric_prefers_cka_debiased_when_computed() -> None:
    res = _results(_drift(["cka_linear", "cka_debiased"]), ["cka_linear", "cka_debiased"])
    assert default_metric(res) == "cka_debiased"


def test_default_metric_is_otherwise_the_first_analysed() -> None:
    # the settings' order decides, not the order rows happen to have in the table
    res = _results(_drift(["cosine", "cka_linear"]), ["cka_linear", "cosine"])
    assert default_metric(res) == "cka_linear"
    assert default_metric(_results(_drift(["cosine", "cka_linear"]))) == "cosine"
    # a metric listed in the settings but absent from the table is not shown
    assert default_metric(_results(_drift(["cosine"]), ["rsa", "cosine"])) == "cosine"


def test_default_metric_without_drift_rows() -> None:
    assert default_metric(_results(pd.DataFrame(), ["rsa"])) == "rsa"
    assert default_metric(_results(pd.DataFrame())) == "cka_debiased"


# --------------------------------------------------------------------------- write_table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_by_suffix(tmp_path: Path, suffix: str) -> None:
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[5, 6])
    path = write_table(table, tmp_path / "deep" / f"t{suffix}")
    assert path == tmp_path / "deep" / f"t{suffix}"
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, table.reset_index(drop=True))  # no index column
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_write_table_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"t\.xlsx: a table is written as \.csv or \.parquet"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.xlsx")


def test_write_table_never_leaves_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"a": [1]}), path)
    before = path.read_bytes()

    class Broken(pd.DataFrame):
        def to_parquet(self, *args, **kwargs):  # type: ignore[override]
            Path(args[0]).write_bytes(b"PAR1 half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_table(Broken({"a": [2]}), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_write_weights_to_a_file_or_a_results_folder(tmp_path: Path) -> None:
    table = pd.DataFrame({"module": ["q"], "rel_change": [0.5]})
    assert write_weights(table, tmp_path / "w.csv") == [tmp_path / "w.csv"]
    written = write_weights(table, tmp_path / "results")
    assert written == [tmp_path / "results" / name for name in WEIGHTS_FILES]
    pd.testing.assert_frame_equal(pd.read_parquet(written[0]), table)
    pd.testing.assert_frame_equal(pd.read_csv(written[1]), table)


def test_results_save_round_trips_through_the_table_writer(tmp_path: Path) -> None:
    drift = _drift(["cka_linear"])
    res = _results(drift, ["cka_linear"])
    res.save(tmp_path / "res")
    assert (tmp_path / "res" / "drift.csv").is_file()
    assert (tmp_path / "res" / "sample_cosine.parquet").is_file()
    assert not (tmp_path / "res" / "sample_cosine.csv").exists()
    back = load_results(tmp_path / "res")
    pd.testing.assert_frame_equal(back.drift, drift)
    assert default_metric(back) == "cka_linear"


def test_a_run_without_step_0_opens_at_its_latest_checkpoint(tmp_path) -> None:
    import numpy as np

    from repdrift.store.reader import load_run
    from repdrift.store.writer import write_run

    for step in (100, 300, 200):
        layers = {"layer_0": np.full((3, 2), step, dtype=np.float32)}
        write_run(tmp_path / "run", layers, task="t", kind="full", sample_ids=["a", "b", "c"], step=step)  # fmt: skip
    run = load_run(tmp_path / "run")
    assert run.steps == [100, 200, 300] and run.step == 300
    assert run.layer(0)[0, 0] == 300
    write_run(tmp_path / "run", {"layer_0": np.zeros((3, 2), np.float32)}, task="t", kind="full",
              sample_ids=["a", "b", "c"], step=0)  # fmt: skip
    assert load_run(tmp_path / "run").step == 0
