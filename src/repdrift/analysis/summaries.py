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
from repdrift.analysis.intervals import metric_drift_range
from repdrift.analysis.pairing import RunInfo, TaskGroup
from repdrift.analysis.structural import structural_zeros, zero_methods
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
                    np.asarray(i.run.layer(layer, i.run.step), dtype=np.float64) for i in infos
                ]
                for name in metric_names:
                    # One self-comparison matrix: each seed's state (Gram, QR) computed once,
                    # not once per pair; the pairs are its upper triangle.
                    M = registry.matrix(name, Ys, Ys, **metric_params.get(name, {}))
                    sims = [M[a, b] for a, b in itertools.combinations(range(len(Ys)), 2)]
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
    """Method a vs method b per task × layer × metric at the final step, seeds as the unit.

    Layers that one of the methods left unchanged in every seed (structural zeros, see
    :mod:`repdrift.analysis.structural`) keep their difference but get no test, effect size or
    relative change (``test = "structural zero"``, ``unchanged_in`` names the method) and stay
    out of the Holm and Benjamini–Hochberg families.
    """
    a_name, b_name = methods
    final = final_step(drift)
    zeros = structural_zeros(final)
    rng = np.random.default_rng(seed + 1)
    rows = []
    for (task, layer, metric), part in final.groupby(["task", "layer", "metric"], sort=False):
        a, b = part[part["method"] == a_name], part[part["method"] == b_name]
        if a.empty or b.empty:
            continue
        unchanged = [
            m for m in zero_methods(zeros, task, metric, int(a["layer_index"].iloc[0]))
            if m in methods
        ]  # fmt: skip
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
                within=metric_drift_range(metric),
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
            unchanged_in=", ".join(unchanged),
        )
        if unchanged:  # known by construction: nothing to test, no relative change
            row.update(p=np.nan, test="structural zero", effect_size=np.nan, rel_diff=np.nan)
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
    # One family per metric: layers × tasks (NaN p-values, i.e. structural zeros, not counted).
    for _, part in df.groupby("metric"):
        df.loc[part.index, "p_holm"] = stats.adjust_pvalues(part["p"], "holm")
        df.loc[part.index, "p_bh"] = stats.adjust_pvalues(part["p"], "bh")
    return df


def rank_tasks(
    drift: pd.DataFrame, replicates: Mapping | None = None, *, level: float = 0.95
) -> pd.DataFrame:
    """Mean drift per task × method × layer × metric (final step) with its method-level interval,
    ranked within layer (1 = most).

    ``ci_low``/``ci_high`` are the hierarchical interval of the mean over seeds (seeds, then
    samples; :func:`repdrift.analysis.stats.hierarchical_interval`) with ``interval =
    "seeds+samples"``, or with one seed that run's half-sample interval (``interval =
    "samples"``, a statement about one training only). ``replicates`` maps (run, step, layer,
    metric) to half-sample drifts; without them an interval uses the seeds alone. Intervals
    stay inside the range drift of the metric can take (drawn on its logit scale).
    ``structural_zero`` marks layers every seed of the method left unchanged.
    """
    final = final_step(drift)
    replicates = replicates or {}
    keys = ["method", "metric", "layer", "layer_index", "task"]
    zeros = structural_zeros(final)
    rows = []
    for key, part in final.groupby(keys, sort=False):
        row = dict(zip(keys, key, strict=True))
        reps = [replicates.get((r, s, row["layer"], row["metric"]))
                for r, s in zip(part["run"], part["step"], strict=True)]  # fmt: skip
        stacked = np.stack(reps) if reps and all(r is not None for r in reps) else None
        values = part["drift"].to_numpy(float)
        iv = stats.hierarchical_interval(values, stacked, level, metric_drift_range(row["metric"]))
        known = len(values) >= 2 or stacked is not None
        row.update(
            mean_drift=float(values.mean()),
            ci_low=iv.low,
            ci_high=iv.high,
            interval=iv.kind if known else "",
            n_seeds=len(values),
            structural_zero=bool(
                row["method"] in zero_methods(zeros, row["task"], row["metric"], row["layer_index"])
            ),
        )
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*keys, "mean_drift", "ci_low", "ci_high", "interval",
                                     "n_seeds", "structural_zero"])  # fmt: skip
    df["rank"] = df.groupby(["method", "metric", "layer"])["mean_drift"].rank(
        ascending=False, method="min"
    )
    return df.sort_values(["method", "metric", "layer_index", "rank"]).reset_index(drop=True)
