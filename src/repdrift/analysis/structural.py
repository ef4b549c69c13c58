"""Structural zeros: layers a method left exactly as they were, found from the data.

LoRA cannot change the embeddings (or any module it has no adapter on, nor what only such
modules feed), so their representations are bit-for-bit the base model's and their drift is
0 by construction, not by measurement. Testing them would put a certainty into the test
families, a "−100 %" into relative changes and a huge effect size into the tables. They are
detected from the representations themselves (:func:`repdrift.analysis.compare_runs.compare`
records ``unchanged``: the fine-tuned layer equals the base layer), never from layer or
module names, and are reported, marked and left out of tests.
"""

from __future__ import annotations

import pandas as pd

from repdrift.store.results import final_step

#: Drift treated as exactly 0 for tables written before ``unchanged`` was recorded.
ZERO_DRIFT = 1e-12

_KEYS = ["task", "method", "metric", "layer_index"]


def unchanged_rows(drift: pd.DataFrame) -> pd.Series:
    """Per row of a drift table, whether the fine-tuned layer equals the base layer."""
    if "unchanged" in drift.columns:
        return drift["unchanged"].fillna(False).astype(bool)
    return drift["drift"].abs() <= ZERO_DRIFT


def structural_zeros(drift: pd.DataFrame) -> pd.DataFrame:
    """Task × method × metric × layer where every seed's final model left the layer unchanged.

    Returns
    -------
    DataFrame with columns task, method, metric, layer_index (one row per structural zero).
    """
    final = final_step(drift)
    if final.empty:
        return pd.DataFrame(columns=_KEYS)
    flags = final.assign(_unchanged=unchanged_rows(final))
    every = flags.groupby(_KEYS, as_index=False)["_unchanged"].all()
    return every[every["_unchanged"]][_KEYS].reset_index(drop=True)


def zero_methods(zeros: pd.DataFrame, task: str, metric: str, layer_index: int) -> list[str]:
    """Methods for which ``layer_index`` of ``task`` is a structural zero (for ``metric``)."""
    if zeros.empty:
        return []
    hit = zeros[
        (zeros["task"] == task) & (zeros["metric"] == metric) & (zeros["layer_index"] == layer_index)
    ]
    return sorted(map(str, hit["method"]))


__all__ = ["ZERO_DRIFT", "structural_zeros", "unchanged_rows", "zero_methods"]
