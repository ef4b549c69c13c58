"""The results folder: tidy tables written by the analysis, read by plots and the report.

Layout of ``RESULTS/``::

    drift.{csv,parquet}          task × method × seed × run × step × layer × metric:
                                 similarity, drift, ci_low/ci_high (of drift), p_perm,
                                 p_perm_holm, null_mean, calibrated, n
    comparison.{csv,parquet}     method a vs b per task × layer × metric: drift_a, drift_b,
                                 drift_diff (a − b), ci_low/ci_high, p, p_holm, p_bh, test,
                                 effect_size (Hedges' g over seeds), rel_diff, n_seeds_a/b
    noise_floor.{csv,parquet}    seed-vs-seed similarity per task × method × layer × metric
    cross_layer.{csv,parquet}    base layer × fine-tuned layer similarity per run
    sample_cosine.parquet        per-sample cosine per run × layer (the distributions)
    task_ranking.{csv,parquet}   mean drift per task, ranked within method × layer × metric
    token_drift.{csv,parquet}    token-level runs: drift over all tokens, same columns as drift
                                 plus level ("tokens"), n_tokens, n_blocks, null
    token_profile.parquet        token-level runs: mean per-token drift (1 − cosine) by
                                 position and by token type, per run × layer
    token_samples.parquet        token-level runs: the most-moved samples per run × layer, text
    results.json                 settings, repdrift version, the runs compared, timing

CSV is for people and spreadsheets; parquet keeps dtypes for code. Every table repdrift writes
goes through :func:`write_table` (the format from the suffix, written to a temporary name and
renamed), so a crash never leaves a half-written table under its real name.

What a summary of the folder shows is decided here once, for the CLI headline, the figures and
the report alike: :func:`final_step` (which rows are each run's final model) and
:func:`default_metric` (the metric shown when none is asked for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from repdrift.common.atomic import atomic_write_with
from repdrift.errors import InputError, IntegrityError

_CSV_TOO = ("drift", "comparison", "noise_floor", "cross_layer", "task_ranking", "token_drift")
#: Tables only token-level analyses write; a folder without them reads them as empty.
_OPTIONAL = ("token_drift", "token_profile", "token_samples")

#: Suffixes :func:`write_table` writes (and the format each one means).
TABLE_SUFFIXES = (".csv", ".parquet")
#: Step of a run's final model: extraction writes the finished model as ``step_000000``, a
#: training checkpoint N as ``step_N``.
FINAL_MODEL_STEP = 0
#: Metric shown when none is asked for, if the analysis computed it.
PREFERRED_METRIC = "cka_debiased"
#: The weight-space drift table in a results folder (:func:`write_weights`), parquet first.
WEIGHTS_FILES = ("weights.parquet", "weights.csv")


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` (without its index) to ``path`` atomically: CSV or parquet by suffix.

    Raises
    ------
    InputError
        ``path`` ends in neither ``.csv`` nor ``.parquet``.
    """
    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise InputError(f"{path}: a table is written as {' or '.join(TABLE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        atomic_write_with(path, lambda tmp: table.to_csv(tmp, index=False))
    else:
        atomic_write_with(path, lambda tmp: table.to_parquet(tmp, index=False))
    return path


def write_weights(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write the weight-drift table to ``out`` when it names a .csv / .parquet file, else as
    ``weights.parquet`` and ``weights.csv`` in the folder ``out`` (a results folder)."""
    out = Path(out)
    targets = [out] if out.suffix in TABLE_SUFFIXES else [out / name for name in WEIGHTS_FILES]
    return [write_table(table, target) for target in targets]


def final_step(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of each run's final model: step 0 (``step_000000``, the saved final model) when the
    run has it, else its latest checkpoint (:func:`repdrift.store.steps.final_step_number`).

    The analysis compares methods and ranks tasks at this step, so every summary of a results
    folder uses this rule. A table without ``step`` (or empty) is returned as is.
    """
    if table.empty or "step" not in table.columns:
        return table
    steps = table.groupby("run")["step"]
    has_final = steps.transform("min") == 0
    final = steps.transform("max").where(~has_final, 0)
    return table[table["step"] == final]


def default_metric(results: Results) -> str:
    """The metric summaries show when none is asked for: ``cka_debiased`` when the analysis
    computed it, else the first metric analysed (the order of the analysis settings, then
    of the drift table)."""
    drift = results.drift
    in_table = (
        list(dict.fromkeys(map(str, drift["metric"])))
        if not drift.empty and "metric" in drift.columns
        else []
    )
    analysed = [str(m) for m in (results.summary.get("settings") or {}).get("metrics") or []]
    metrics = (
        [m for m in analysed if m in in_table] + [m for m in in_table if m not in analysed]
        if in_table
        else analysed
    )
    if PREFERRED_METRIC in metrics or not metrics:
        return PREFERRED_METRIC
    return metrics[0]


@dataclass
class Results:
    """Tables of one analysis (see the module docstring for their columns)."""

    drift: pd.DataFrame
    comparison: pd.DataFrame
    noise_floor: pd.DataFrame
    cross_layer: pd.DataFrame
    sample_cosine: pd.DataFrame
    task_ranking: pd.DataFrame
    summary: dict[str, Any]
    #: Token-level runs only (empty otherwise; see repdrift.analysis.tokens).
    token_drift: pd.DataFrame = field(default_factory=pd.DataFrame)
    token_profile: pd.DataFrame = field(default_factory=pd.DataFrame)
    token_samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    path: Path | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name → table, in layout order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "pd.DataFrame"}

    def save(self, out: str | Path) -> Path:
        """Write every table and results.json into ``out`` (created if needed)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            write_table(df, out / f"{name}.parquet")
            if name in _CSV_TOO:
                write_table(df, out / f"{name}.csv")
        atomic_write_with(
            out / "results.json",
            lambda p: p.write_text(json.dumps(self.summary, indent=2, default=str)),
        )
        self.path = out
        return out


def load_results(path: str | Path) -> Results:
    """Read a results folder written by :func:`repdrift.compare`.

    Raises
    ------
    IntegrityError
        The folder or one of its files is missing or unreadable (the message names it).
    """
    path = Path(path)
    if not (path / "results.json").is_file():
        raise IntegrityError(
            f"{path}: not a results folder (no results.json); run `repdrift compare` first"
        )
    try:
        summary = json.loads((path / "results.json").read_text())
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{path / 'results.json'}: not valid JSON ({exc})") from None
    tables = {}
    for f in fields(Results):
        if f.type != "pd.DataFrame":
            continue
        file = path / f"{f.name}.parquet"
        try:
            tables[f.name] = pd.read_parquet(file)
        except FileNotFoundError:
            if f.name in _OPTIONAL:
                tables[f.name] = pd.DataFrame()
                continue
            raise IntegrityError(f"{file}: missing from the results folder") from None
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise IntegrityError(f"{file}: unreadable parquet file ({exc})") from None
    return Results(**tables, summary=summary, path=path)
