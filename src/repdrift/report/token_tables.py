"""The report's token-level section: pooled and token-level drift side by side, drift by token
type, and the most-moved samples with their text (token-level runs only)."""

from __future__ import annotations

import pandas as pd

from repdrift.analysis.tokens import TOKEN_METRICS
from repdrift.report.headlines import layer_ranges
from repdrift.report.tables import Table, fmt_num, layer_label
from repdrift.store.results import PREFERRED_METRIC, Results, final_step

__all__ = ["null_note", "token_section"]

_TEXT_CHARS = 300


def _interval(row: pd.Series) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    if pd.isna(low) or pd.isna(high):
        return fmt_num(row["drift"], 4)
    return f"{fmt_num(row['drift'], 4)} [{fmt_num(low, 4)}, {fmt_num(high, 4)}]"


def null_note(drift: pd.DataFrame) -> str:
    """What the token-level p column is, and its floor (1 / (1 + shuffles)), in words.

    ``drift`` is the token_drift rows of one metric (Holm runs over all of them).
    """
    if drift["p_perm"].notna().any() and "n_null" not in drift:
        return "p (tokens): the token-level null of an older repdrift (see results.json)."
    shuffles = int(drift["n_null"].max()) if "n_null" in drift else 0
    if shuffles == 0 or drift["p_perm"].isna().all():
        return (
            "No token-level null was drawn (the default; --token-null N draws N shuffles of "
            "whole samples within groups of nearly equal length: a test that the variant's "
            "tokens still carry their own sample's information beyond position and length, "
            "not of drift, with p no smaller than 1/(N + 1))."
        )
    floor = 1 / (shuffles + 1)
    return (
        f"p (tokens): token-level null, {shuffles} shuffles of whole samples within groups of "
        "nearly equal length (each truncated to its group's shortest), tokens paired by "
        "position; it tests whether the variant's tokens carry information about their own "
        "sample beyond position and length (true for any two models on the same tokens), not "
        f"drift. Its floor is 1/({shuffles} + 1) = "
        f"{fmt_num(floor, 4)}, and after Holm over the {len(drift)} rows of this metric "
        f"no adjusted p is below {fmt_num(min(1.0, len(drift) * floor), 4)}."
    )


def _side_by_side(results: Results, task: str, metric: str) -> Table:
    every = results.token_drift[results.token_drift["metric"] == metric]
    tokens = final_step(results.token_drift)
    tokens = tokens[(tokens["task"] == task) & (tokens["metric"] == metric)]
    pooled = final_step(results.drift) if not results.drift.empty else results.drift
    if not pooled.empty:
        pooled = pooled[(pooled["task"] == task) & (pooled["metric"] == metric)]
    with_p = bool(tokens["p_perm"].notna().any())
    table = Table(
        f"{task}: drift (1 − {metric}) per layer, pooled (each sample's tokens averaged) and "
        f"over all tokens, with intervals. {null_note(every)}",
        ["run", "layer", "pooled drift [CI]", "token drift [CI]",
         *(["p (tokens)"] if with_p else []), "tokens"],
        numeric=[False, False, True, True, *([True] if with_p else []), True],
    )  # fmt: skip
    for _, row in tokens.sort_values(["run", "layer_index"]).iterrows():
        match = (
            pooled[(pooled["run"] == row["run"]) & (pooled["layer"] == row["layer"])]
            if not pooled.empty
            else pooled
        )
        table.add([
            str(row["run"]), layer_label(int(row["layer_index"])),
            _interval(match.iloc[0]) if not match.empty else "–", _interval(row),
            *([fmt_num(row["p_perm"], 4)] if with_p else []), str(int(row["n_tokens"])),
        ])  # fmt: skip
    return table


def _by_type(results: Results, task: str) -> Table | None:
    prof = final_step(results.token_profile)
    prof = prof[(prof["task"] == task) & (prof["by"] == "type")]
    if prof.empty:
        return None
    means = prof.groupby(["method", "layer_index", "key"])["drift"].mean().unstack("key")
    kinds = list(means.columns)
    table = Table(
        f"{task}: mean per-token drift (1 − cosine) by token type, final checkpoints "
        "(runs of a method averaged).",
        ["method", "layer", *kinds],
        numeric=[False, False, *([True] * len(kinds))],
    )
    for (method, layer), row in means.iterrows():
        table.add([str(method), layer_label(int(layer)), *(fmt_num(row[k], 4) for k in kinds)])
    return table


def _moved(results: Results, task: str) -> Table | None:
    rows = final_step(results.token_samples)
    rows = rows[rows["task"] == task]
    if rows.empty:
        return None
    deepest = rows["layer_index"].max()
    rows = rows[rows["layer_index"] == deepest].sort_values(["run", "rank"])
    table = Table(
        f"{task}: the most-moved samples at {layer_ranges([deepest])} (mean per-token drift "
        "1 − cosine), their most-moved tokens (token@position) and text.",
        ["run", "#", "sample", "drift", "most-moved tokens", "text"],
        numeric=[False, True, False, True, False, False],
        prose=[False, False, False, False, True, True],
    )
    for _, row in rows.iterrows():
        text = str(row["text"])
        text = text if len(text) <= _TEXT_CHARS else text[:_TEXT_CHARS] + "…"
        table.add([
            str(row["run"]), str(int(row["rank"])), str(row["sample_id"]),
            fmt_num(row["drift"], 4), str(row["top_tokens"]), text,
        ])  # fmt: skip
    return table


def token_section(results: Results, metric: str) -> dict | None:
    """Tables of the token-level section, or None when no run was token-level.

    Returns ``{"metric", "side_by_side", "by_type", "moved", "interval", "null"}`` (lists of
    :class:`~repdrift.report.tables.Table` and the recorded method texts).
    """
    drift = results.token_drift
    if drift is None or drift.empty:
        return None
    metric = metric if metric in TOKEN_METRICS else PREFERRED_METRIC
    if metric not in set(drift["metric"]):
        metric = str(drift["metric"].iloc[0])
    tasks = sorted(drift["task"].unique())
    settings = results.summary.get("settings", {})
    return {
        "metric": metric,
        "side_by_side": [_side_by_side(results, t, metric) for t in tasks],
        "by_type": [t for t in (_by_type(results, t) for t in tasks) if t is not None],
        "moved": [t for t in (_moved(results, t) for t in tasks) if t is not None],
        "interval": settings.get("token_interval", ""),
        "null": settings.get("token_null", ""),
    }
