"""Summaries across runs of the drift table: seed noise floor, method vs method, task ranking.

Split from :mod:`repdrift.analysis`, which computes the per-run, per-layer values these
functions read. Seeds are the unit of replication for the method comparison
(:func:`repdrift.analysis.stats.compare_groups`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from repdrift.analysis import stats
from repdrift.analysis.pairing import RunInfo, TaskGroup
from repdrift.common.naming import layer_index
from repdrift.metrics import registry
from repdrift.store.results import final_step

logger = logging.getLogger(__name__)


def noise_floor(
    groups: list[TaskGroup],
    metric_names: Sequence[str],
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Similarity between seeds of one method (final step), a reference scale for drift.

    Two seeds that each moved away from the base are usually further from each other than
    from the base, so this is not a test: it says how much representations vary with the
    training seed alone, next to how much they moved from the base. ``metric_params`` holds
    per metric name the parameters to compute it with (e.g. cka_rbf's ``sigma``).
    """
    metric_params = metric_params or {}
    rows = []
    for group in groups:
        by_method: dict[str, list[RunInfo]] = {}
        for v in group.variants:
            by_method.setdefault(v.method, []).append(v)
        for method, infos in by_method.items():
            if len(infos) < 2:
                continue
            for layer in group.reference.run.layers:
                Ys = [
                    np.asarray(i.run.layer(layer, i.run.steps[0]), dtype=np.float64) for i in infos
                ]
                for name in metric_names:
                    params = metric_params.get(name, {})
                    sims = [
                        registry.compute(name, a, b, **params)
                        for a, b in itertools.combinations(Ys, 2)
                    ]
                    rows.append(
                        {
                            "task": group.task,
                            "method": method,
                            "layer": layer,
                            "layer_index": layer_index(layer),
                            "metric": name,
                            "similarity": float(np.mean(sims)),
                            "drift": 1 - float(np.mean(sims)),
                            "n_pairs": len(sims),
                        }
                    )
    return pd.DataFrame(rows)


def compare_methods(
    drift: pd.DataFrame,
    replicates: dict,
    *,
    methods: tuple[str, str],
    level: float,
    seed: int,
) -> pd.DataFrame:
    """Method a vs method b per task × layer × metric at the final step, seeds as the unit."""
    a_name, b_name = methods
    final = final_step(drift)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for (task, layer, metric), part in final.groupby(["task", "layer", "metric"], sort=False):
        a, b = part[part["method"] == a_name], part[part["method"] == b_name]
        if a.empty or b.empty:
            continue
        keys_a = [(r, s, layer, metric) for r, s in zip(a["run"], a["step"], strict=True)]
        keys_b = [(r, s, layer, metric) for r, s in zip(b["run"], b["step"], strict=True)]
        row = {
            "task": task,
            "layer": layer,
            "layer_index": int(a["layer_index"].iloc[0]),
            "metric": metric,
            "method_a": a_name,
            "method_b": b_name,
            "drift_a": float(a["drift"].mean()),
            "drift_b": float(b["drift"].mean()),
        }
        if all(k in replicates for k in keys_a + keys_b):
            res = stats.compare_groups(
                a["drift"].to_numpy(),
                b["drift"].to_numpy(),
                np.stack([replicates[k] for k in keys_a]),
                np.stack([replicates[k] for k in keys_b]),
                rng=rng,
                level=level,
            )
            row.update(
                drift_diff=res.diff,
                ci_low=res.low,
                ci_high=res.high,
                p=res.p,
                test=res.test,
                effect_size=res.effect_size,
            )
        elif len(a) >= 2 and len(b) >= 2:
            x, y = a["drift"].to_numpy(), b["drift"].to_numpy()
            row.update(
                drift_diff=float(x.mean() - y.mean()),
                ci_low=np.nan,
                ci_high=np.nan,
                p=stats.welch_pvalue(x, y),
                test="welch",
                effect_size=stats.hedges_g(x, y),
            )
        else:
            continue
        row.update(
            rel_diff=row["drift_diff"] / row["drift_b"] if row["drift_b"] else np.nan,
            n_seeds_a=len(a),
            n_seeds_b=len(b),
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    few = df[(df["n_seeds_a"] < 3) | (df["n_seeds_b"] < 3)]
    if not few.empty:
        logger.warning(
            "%s vs %s: fewer than 3 seeds per method for task(s) %s; seed-level p-values have "
            "little power and intervals are rough",
            a_name,
            b_name,
            ", ".join(sorted(few["task"].unique())),
        )
    df["p_holm"] = np.nan
    df["p_bh"] = np.nan
    for _, part in df.groupby("metric"):  # one family per metric: layers × tasks
        df.loc[part.index, "p_holm"] = stats.adjust_pvalues(part["p"], "holm")
        df.loc[part.index, "p_bh"] = stats.adjust_pvalues(part["p"], "bh")
    return df


def rank_tasks(drift: pd.DataFrame) -> pd.DataFrame:
    """Mean drift per task × method × layer × metric (final step), ranked within layer (1 = most)."""
    final = final_step(drift)
    df = (
        final.groupby(["method", "metric", "layer", "layer_index", "task"], as_index=False)["drift"]
        .mean()
        .rename(columns={"drift": "mean_drift"})
    )
    df["rank"] = df.groupby(["method", "metric", "layer"])["mean_drift"].rank(
        ascending=False, method="min"
    )
    return df.sort_values(["method", "metric", "layer_index", "rank"]).reset_index(drop=True)
