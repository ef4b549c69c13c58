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
    results.json                 settings, repdrift version, the runs compared, timing

CSV is for people and spreadsheets; parquet keeps dtypes for code. Files are written to a
temporary name and renamed, so a crash never leaves a half-written table under its real name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from repdrift.common.atomic import atomic_write_with
from repdrift.errors import IntegrityError

_CSV_TOO = ("drift", "comparison", "noise_floor", "cross_layer", "task_ranking")


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
    path: Path | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name → table, in layout order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "pd.DataFrame"}

    def save(self, out: str | Path) -> Path:
        """Write every table and results.json into ``out`` (created if needed)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            atomic_write_with(
                out / f"{name}.parquet", lambda p, df=df: df.to_parquet(p, index=False)
            )
            if name in _CSV_TOO:
                atomic_write_with(out / f"{name}.csv", lambda p, df=df: df.to_csv(p, index=False))
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
            raise IntegrityError(f"{file}: missing from the results folder") from None
        except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
            raise IntegrityError(f"{file}: unreadable parquet file ({exc})") from None
    return Results(**tables, summary=summary, path=path)
