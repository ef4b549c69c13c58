"""Headline numbers of a results folder: mean drift per task × method, LoRA vs full per task.

Pure functions of the result tables (:func:`repdrift.store.results.load_results`); the CLI prints
them after ``repdrift run`` and ``repdrift demo``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from repdrift.store.results import Results


@dataclass(frozen=True)
class Headline:
    """The numbers a study is summarised by.

    Attributes
    ----------
    metric : str
        The metric they use (the first of the analysis).
    mean_drift : DataFrame
        task × method: drift averaged over layers and seeds (final step).
    top_layer_drift : DataFrame
        task × method: drift of the last layer, averaged over seeds.
    methods : DataFrame
        One row per task: mean drift of each method, their mean difference (a − b) over
        layers, the layers where a drifts less / more than b, the layers whose difference
        is significant after Holm correction (p_holm < 0.05), the layers whose interval of
        the difference excludes 0, seeds per method.
    accuracy : DataFrame
        task × method: validation accuracy recorded by :func:`repdrift.training.recipe.train`,
        averaged over seeds (empty when the runs carry no training record).
    """

    metric: str
    mean_drift: pd.DataFrame
    top_layer_drift: pd.DataFrame
    methods: pd.DataFrame
    accuracy: pd.DataFrame


def headline(results: Results, metric: str | None = None, alpha: float = 0.05) -> Headline:
    """Summarise ``results`` for ``metric`` (default: the first one analysed)."""
    drift = results.drift
    metric = metric or str(results.summary.get("settings", {}).get("metrics", [None])[0] or drift["metric"].iloc[0])  # fmt: skip
    final = drift[(drift["metric"] == metric) & (drift["step"] == 0) & (drift["layer_index"] >= 0)]
    mean = final.pivot_table(index="task", columns="method", values="drift", aggfunc="mean")
    top = final[final["layer_index"] == final.groupby("task")["layer_index"].transform("max")]
    top_mean = top.pivot_table(index="task", columns="method", values="drift", aggfunc="mean")
    rows = []
    comp = results.comparison
    if not comp.empty:
        comp = comp[(comp["metric"] == metric) & (comp["layer_index"] >= 0)]
        for task, part in comp.groupby("task", sort=True):
            part = part.sort_values("layer_index")
            diff = part["drift_diff"].to_numpy()
            p = part["p_holm"].to_numpy() if "p_holm" in part else np.full(len(part), np.nan)
            layers = part["layer_index"].to_numpy()
            nan = np.full(len(part), np.nan)
            low = part["ci_low"].to_numpy(float) if "ci_low" in part else nan
            high = part["ci_high"].to_numpy(float) if "ci_high" in part else nan
            apart = (low > 0) | (high < 0)  # NaN compares False: no interval, not apart
            rows.append(
                {
                    "task": task,
                    "method_a": part["method_a"].iloc[0],
                    "method_b": part["method_b"].iloc[0],
                    "drift_a": float(part["drift_a"].mean()),
                    "drift_b": float(part["drift_b"].mean()),
                    "mean_diff": float(np.nanmean(diff)),
                    "layers_a_less": [int(i) for i in layers[diff < 0]],
                    "layers_a_more": [int(i) for i in layers[diff > 0]],
                    "layers_significant": [
                        int(i) for i in layers[np.nan_to_num(p, nan=1.0) < alpha]
                    ],
                    "layers_interval_excludes_zero": [int(i) for i in layers[apart]],
                    "n_seeds_a": int(part["n_seeds_a"].iloc[0]),
                    "n_seeds_b": int(part["n_seeds_b"].iloc[0]),
                }
            )
    return Headline(metric, mean, top_mean, pd.DataFrame(rows), _accuracy(results))


def _accuracy(results: Results) -> pd.DataFrame:
    """Validation accuracy per task × method from the training records in the manifests."""
    rows = []
    for task, entry in (results.summary.get("tasks") or {}).items():
        for run in entry.get("runs", []):
            training = (run.get("model") or {}).get("training") or {}
            value = training.get("validation_accuracy")
            if value is not None:
                rows.append({"task": task, "method": run["method"], "accuracy": float(value)})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).pivot_table(
        index="task", columns="method", values="accuracy", aggfunc="mean"
    )


__all__ = ["Headline", "headline"]
