"""The headline stored in results.json: computed once by the analysis, read by every summary.

:func:`repdrift.analysis.compare_runs.compare` computes :func:`repdrift.analysis.headline.headline`
(default metric, Holm, alpha 0.05) and writes it under :data:`KEY` in results.json. The console
(after ``repdrift compare``, ``run`` and ``demo``) and the report read it with
:func:`headline_of`, so the three say what one computation says. The record carries a
fingerprint of the tables it was computed from: asked for another metric, correction or level
(``repdrift report --metric``), given tables that are not those (results filtered in code), or
reading a folder written before it was stored, :func:`headline_of` computes it with the same
function instead.

The record is plain JSON: tables as ``{"columns": [...], "data": [[...], ...]}`` (pivot tables
with their ``index``), NaN as null.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pandas as pd

from repdrift.analysis.answer import StudyAnswer
from repdrift.analysis.headline import Headline, headline
from repdrift.store.results import Results, default_metric

#: The results.json key of the stored headline.
KEY = "headline"
#: Version of the record's layout; a record of another version is recomputed, not read.
#: 2: the study answer is the Welch-type test blocked by task, with the permutation beside it.
SCHEMA = 2
#: Headline tables indexed by task with one column per method (pivot tables).
_PIVOTS = ("mean_drift", "top_layer_drift", "accuracy")
#: The result tables and settings a headline is computed from (its fingerprint covers them).
_SOURCES = ("drift", "comparison", "noise_floor")
_SETTINGS = ("methods", "level", "seed")


def fingerprint(results: Results) -> str:
    """sha256 of what :func:`repdrift.analysis.headline.headline` reads: the drift, comparison
    and noise-floor tables (values and dtypes survive the parquet round trip) and the
    analysis settings it uses."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        table = getattr(results, name)
        columns = sorted(map(str, table.columns))
        digest.update(repr((name, columns, len(table))).encode())
        if len(table) and columns:
            hashed = pd.util.hash_pandas_object(table[columns], index=False)
            digest.update(hashed.to_numpy().tobytes())
    settings = results.summary.get("settings") or {}
    used = {key: settings.get(key) for key in _SETTINGS}
    digest.update(json.dumps(used, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python ones, NaN as None, containers walked."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # an infinity stays a float: json writes and reads it as Infinity
    return value


def _frame(record: dict) -> pd.DataFrame:
    table = pd.DataFrame(record["data"], columns=record["columns"])
    for column in table.columns:  # a column of nulls was a column of NaN
        if len(table) and table[column].isna().all():
            table[column] = np.nan
    if "index" in record:
        table.index = pd.Index(record["index"], name="task")
        table.columns.name = "method"
    return table


def to_record(h: Headline) -> dict[str, Any]:
    """``h`` as a JSON-ready dict (see the module docstring)."""
    out: dict[str, Any] = {"schema": SCHEMA}
    for f in fields(Headline):
        value = getattr(h, f.name)
        if isinstance(value, pd.DataFrame):
            table: dict[str, Any] = {
                "columns": [str(c) for c in value.columns],
                "data": _plain(value.to_numpy(dtype=object).tolist()),
            }
            if f.name in _PIVOTS:
                table["index"] = [str(i) for i in value.index]
            out[f.name] = table
        elif isinstance(value, StudyAnswer):
            out[f.name] = _plain(asdict(value))
        else:
            out[f.name] = _plain(value)
    return out


def from_record(record: dict[str, Any]) -> Headline:
    """The :class:`Headline` a :func:`to_record` dict holds."""
    values: dict[str, Any] = {}
    for f in fields(Headline):
        value = record[f.name]
        if f.name == "study":
            value = (
                StudyAnswer(**{k: math.nan if v is None else v for k, v in value.items()})
                if value
                else None
            )
        elif isinstance(value, dict) and "columns" in value:
            value = _frame(value)
        values[f.name] = value
    answers = values["answers"]
    if "p_maxt" in answers:  # JSON keys are strings; the layers are ints
        answers["p_maxt"] = [
            {int(k): math.nan if v is None else v for k, v in (d or {}).items()}
            for d in answers["p_maxt"]
        ]
    return Headline(**values)


def headline_of(
    results: Results,
    metric: str | None = None,
    alpha: float = 0.05,
    *,
    correction: str = "p_holm",
) -> Headline:
    """The headline of ``results``: the one stored in results.json when it was computed for
    these settings from these tables, else :func:`repdrift.analysis.headline.headline` now."""
    metric = metric or default_metric(results)
    stored = results.summary.get(KEY)
    if (
        isinstance(stored, dict)
        and stored.get("schema") == SCHEMA
        and (stored.get("metric"), stored.get("correction"), stored.get("alpha"))
        == (metric, correction, alpha)
        and stored.get("tables") == fingerprint(results)
    ):
        return from_record(stored)
    return headline(results, metric, alpha, correction=correction)


def store_headline(results: Results) -> Headline:
    """Compute the default headline of ``results`` and keep it in ``results.summary`` (written
    to results.json by :meth:`repdrift.store.results.Results.save`)."""
    h = headline(results)
    results.summary[KEY] = {**to_record(h), "tables": fingerprint(results)}
    return h


__all__ = [
    "KEY",
    "SCHEMA",
    "fingerprint",
    "from_record",
    "headline_of",
    "store_headline",
    "to_record",
]
