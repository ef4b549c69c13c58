"""Drift between base and fine-tuned runs, per layer, with intervals, nulls and comparisons.

:func:`compare` is the whole analysis stage: it reads run directories (never models) and
returns tidy tables (see :class:`repdrift.store.results.Results`). Resampling follows
:mod:`repdrift.analysis.stats`: half-sample intervals, shuffled-pairing permutation nulls,
seeds as the unit of replication for LoRA vs full fine-tuning, Holm and Benjamini–Hochberg
across layers × tasks. Every metric value and replicate comes from the metric registry
(:func:`repdrift.metrics.resample`), with the metric's parameters (``metric_params``).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repdrift.analysis import stats
from repdrift.analysis.intervals import half_sample_interval, metric_drift_range
from repdrift.analysis.pairing import RunInfo, TaskGroup, pair_runs
from repdrift.analysis.run_summary import run_summary
from repdrift.analysis.settings import AnalysisSettings
from repdrift.analysis.stored_headline import store_headline
from repdrift.analysis.summaries import compare_methods, noise_floor, rank_tasks
from repdrift.analysis.tokens import add_token_results, pool_token_runs
from repdrift.common.naming import layer_index
from repdrift.common.progress import progress_bar
from repdrift.metrics import registry
from repdrift.metrics.cosine import row_cosines
from repdrift.store.results import Results

logger = logging.getLogger(__name__)

__all__ = ["compare"]


def compare(
    runs: Iterable[str | Path],
    *,
    ref: str | Path | Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    labels: Mapping[str, Mapping[str, Any]] | None = None,
    settings: AnalysisSettings | None = None,
    progress: bool = True,
    **options: Any,
) -> Results:
    """Measure per-layer drift of fine-tuned runs from their base run.

    Parameters
    ----------
    runs
        Run directories: for each task a reference run and any number of fine-tuned runs
        (``full``, ``lora``) over seeds and checkpoint steps.
    ref
        The reference run (or one per task); every other run of its task is compared with
        it, whatever its manifest kind. A task without one takes its one base run (manifest
        kind ``base``). See :mod:`repdrift.analysis.pairing` for the lineage checks.
    out
        Results folder to write (tables as CSV and parquet, results.json); None keeps them
        in memory only.
    labels
        Per run path, overrides for ``task``, ``method`` and ``seed``.
    settings
        All analysis settings at once (:class:`~repdrift.analysis.settings.AnalysisSettings`,
        e.g. an experiment file's ``analysis:`` section); the ``options`` given replace its
        fields (None included: ``device=None`` is numpy on the CPU). Default: every default.
    progress
        Show a progress bar.
    **options
        Any field of :class:`~repdrift.analysis.settings.AnalysisSettings`, where each is
        described with its default: ``metrics``, ``metric_params``, ``resampled``, ``n_boot``,
        ``n_perm``, ``level``, ``seed``, ``cross_layer_metric``, ``methods``, ``device``,
        ``token_blocks``, ``token_null``, ``allow_foreign_reference``,
        ``allow_different_inputs``, ``verify``. An unknown or bad one is an ``InputError``
        naming it, before any run is read.
    """
    started = time.perf_counter()
    asked = (
        settings.replaced(**options) if settings is not None else AnalysisSettings.create(**options)
    )
    values_only = asked.values_only()  # said once the runs pair, not before an error
    chosen = asked.resolved()
    groups = pair_runs(
        runs, ref=ref, labels=labels, verify=chosen.verify,
        allow_foreign_reference=chosen.allow_foreign_reference,
        allow_different_inputs=chosen.allow_different_inputs,
    )  # fmt: skip
    if values_only:
        one = len(values_only) == 1
        logger.info(
            "%s: values only, without intervals or p-values (%s no fast resampling path; "
            "--resample %s, resampled= in Python, recomputes %s on every replicate, slowly)",
            " and ".join(values_only), "it has" if one else "they have",
            " --resample ".join(values_only), "it" if one else "them",
        )  # fmt: skip
    # token-level runs: analysed mean-pooled here, and over all tokens by analysis.tokens
    groups, token_groups = pool_token_runs(groups)

    drift, replicates, cross, cosines = [], {}, [], []
    for group in groups:
        n = len(group.reference.run.sample_ids or group.reference.run.layer(0))
        rng = np.random.default_rng(chosen.seed)
        idx = stats.half_samples(n, chosen.n_boot, rng) if chosen.n_boot else None
        perms = stats.permutations(n, chosen.n_perm, rng) if chosen.n_perm else None
        pairs = sum(len(v.run.steps) for v in group.variants)
        layers = group.reference.run.layers
        # one bar per task, counting pairs × layers (and the cross-layer matrix of each run)
        described = f"{group.task}: {pairs} pair(s) x {len(layers)} layers"
        with progress_bar(
            pairs * len(layers) + len(group.variants), enabled=progress, description=described
        ) as advance:
            for layer in layers:
                rows, reps, cos = _layer(group, layer, chosen, idx, perms)
                drift += rows
                replicates.update(reps)
                cosines += cos
                advance(pairs)
            cross_metric = chosen.cross_layer_metric
            cross += _cross_layer(group, cross_metric, chosen.params(cross_metric), chosen.device)
            advance(len(group.variants))

    drift_df = _finish_drift(pd.DataFrame(drift))
    noise = noise_floor(groups, chosen.metrics, chosen.metric_params)
    level = chosen.level
    comparison = compare_methods(
        drift_df, replicates, methods=chosen.methods, level=level, seed=chosen.seed
    )
    results = Results(
        drift=drift_df,
        comparison=comparison,
        noise_floor=noise,
        cross_layer=pd.DataFrame(cross),
        sample_cosine=pd.DataFrame(cosines),
        task_ranking=rank_tasks(drift_df, replicates, level=level),
        summary=run_summary(groups, chosen.summary(), time.perf_counter() - started),
    )
    if token_groups:
        add_token_results(results, token_groups, chosen, progress=progress)
    results.summary["seconds"] = round(time.perf_counter() - started, 2)  # token tables too
    store_headline(results)  # the one summary the console, the report and results.json show
    if out is not None:
        results.save(out)
    return results


def _layer(
    group: TaskGroup,
    layer: str,
    settings: AnalysisSettings,
    idx: np.ndarray | None,
    perms: np.ndarray | None,
) -> tuple[list[dict], dict, list[dict]]:
    """Every metric of every run of one task at one layer (all steps)."""
    X = np.asarray(group.reference.run.layer(layer), dtype=np.float64)
    jobs = [(v, s) for v in group.variants for s in v.run.steps]
    Ys = [np.asarray(v.run.layer(layer, s), dtype=np.float64) for v, s in jobs]
    rows, reps, cosines = [], {}, []
    # A layer the fine-tuning could not touch is the base layer bit for bit (a structural
    # zero, see repdrift.analysis.structural); recorded from the data, not from layer names.
    unchanged = [Y.shape == X.shape and bool(np.array_equal(X, Y)) for Y in Ys]
    every = registry.resample_many(
        settings.metrics, X, Ys, idx=idx, perms=perms, resampled=settings.resampled,
        device=settings.device, params=settings.metric_params,
    )  # fmt: skip
    for name in settings.metrics:
        res = every[name]
        values, boot, null = res.values, res.subsets, res.null
        for j, (info, step) in enumerate(jobs):
            row = _row(info, step, layer, name, values[j], len(X))
            row["unchanged"] = unchanged[j]
            if boot is not None:
                low, high = half_sample_interval(
                    1 - values[j], 1 - boot[j], settings.level, metric_drift_range(name)
                )
                row.update(ci_low=low, ci_high=high)
                reps[(info.name, step, layer, name)] = 1 - boot[j]
            if null is not None:
                null_mean = float(np.mean(null[j]))
                row.update(
                    p_perm=stats.permutation_pvalue(values[j], null[j]),
                    null_mean=null_mean,
                    calibrated=stats.calibrated_similarity(values[j], null_mean),
                )
            rows.append(row)
    for (info, step), Y in zip(jobs, Ys, strict=True):
        if Y.shape[1] == X.shape[1]:
            per_sample = row_cosines(X, Y)
            cosines += [
                {**_labels(info, step, layer), "sample": i, "cosine": float(c)}
                for i, c in enumerate(per_sample)
            ]
    return rows, reps, cosines


def _labels(info: RunInfo, step: int, layer: str) -> dict[str, Any]:
    return {
        "task": info.task,
        "method": info.method,
        "seed": info.seed,
        "run": info.name,
        "step": step,
        "layer": layer,
        "layer_index": layer_index(layer),
    }


def _row(info: RunInfo, step: int, layer: str, metric: str, value: float, n: int) -> dict[str, Any]:
    nan = float("nan")
    return {
        **_labels(info, step, layer),
        "metric": metric,
        "similarity": float(value),
        "drift": 1 - float(value),
        "ci_low": nan,
        "ci_high": nan,
        "p_perm": nan,
        "null_mean": nan,
        "calibrated": nan,
        "n": n,
    }


def _finish_drift(df: pd.DataFrame) -> pd.DataFrame:
    """Adjust permutation p-values within each metric across tasks × runs × layers × steps."""
    df["p_perm_holm"] = np.nan
    for _, part in df.groupby("metric"):
        df.loc[part.index, "p_perm_holm"] = stats.adjust_pvalues(part["p_perm"], "holm")
    return df


def _cross_layer(
    group: TaskGroup, metric: str, params: Mapping[str, Any], device: str | None
) -> list[dict]:
    """Base layer i × fine-tuned layer j similarity for each run's final step."""
    ref = group.reference.run
    base_layers = [np.asarray(ref.layer(layer), dtype=np.float64) for layer in ref.layers]
    rows = []
    for info in group.variants:
        step = info.run.step
        ft_layers = [
            np.asarray(info.run.layer(layer, step), dtype=np.float64) for layer in ref.layers
        ]
        M = registry.matrix(metric, base_layers, ft_layers, device=device, **params)
        for (i, a), (j, b) in itertools.product(enumerate(ref.layers), enumerate(ref.layers)):
            rows.append(
                {
                    **_labels(info, step, b),
                    "base_layer": a,
                    "metric": metric,
                    "similarity": float(M[i, j]),
                }
            )
    return rows
