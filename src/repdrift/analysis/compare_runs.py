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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repdrift.analysis import stats
from repdrift.analysis.intervals import half_sample_interval, metric_drift_range
from repdrift.analysis.pairing import RunInfo, TaskGroup, pair_runs
from repdrift.analysis.run_summary import run_summary
from repdrift.analysis.stored_headline import store_headline
from repdrift.analysis.summaries import compare_methods, noise_floor, rank_tasks
from repdrift.analysis.tokens import N_BLOCKS, TOKEN_NULL_PERMS, add_token_results, pool_token_runs
from repdrift.common.devices import metrics_device
from repdrift.common.naming import layer_index
from repdrift.common.progress import progress_bar
from repdrift.errors import InputError
from repdrift.metrics import registry
from repdrift.metrics.cosine import row_cosines
from repdrift.metrics.definitions import CROSS_LAYER_METRIC
from repdrift.metrics.registry import DEFAULT_METRICS
from repdrift.store.results import Results

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_METRICS", "Settings", "compare"]


@dataclass(frozen=True)
class Settings:
    """What :func:`compare` did; written to results.json."""

    metrics: tuple[str, ...]
    resampled: tuple[str, ...]
    n_boot: int
    n_perm: int
    level: float
    seed: int
    cross_layer_metric: str
    methods: tuple[str, str]
    #: Parameters of each metric that has any, defaults filled in (e.g. cka_rbf's sigma).
    metric_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Where the Gram / GEMM work ran: a CUDA device, or None for numpy on the CPU.
    device: str | None = None
    #: Token-level runs: sample blocks of the intervals, shuffles of the null (0: none).
    token_blocks: int = N_BLOCKS
    token_null: int = TOKEN_NULL_PERMS

    def params(self, metric: str) -> dict[str, Any]:
        """Keyword arguments for the registry when computing ``metric``."""
        return dict(self.metric_params.get(metric, {}))


def compare(
    runs: Iterable[str | Path],
    *,
    ref: str | Path | Sequence[str | Path] | None = None,
    out: str | Path | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
    metric_params: Mapping[str, Mapping[str, Any]] | None = None,
    resampled: Sequence[str] | None = None,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    cross_layer_metric: str = CROSS_LAYER_METRIC,
    methods: tuple[str, str] = ("lora", "full"),
    labels: Mapping[str, Mapping[str, Any]] | None = None,
    verify: bool = True,
    progress: bool = True,
    allow_foreign_reference: bool = False,
    allow_different_inputs: bool = False,
    device: str | None = "auto",
    token_blocks: int = N_BLOCKS,
    token_null: int = TOKEN_NULL_PERMS,
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
    metrics
        Similarity measures (see :func:`repdrift.metrics.names`).
    metric_params
        Per metric name, parameters other than its defaults (see
        ``repdrift.metrics.get(name).params``), e.g. ``{"cka_rbf": {"sigma": 0.5}}``; used for
        values, replicates, the noise floor and the cross-layer matrices alike.
    resampled
        Metrics that get half-sample intervals and permutation nulls (default: those of
        ``metrics`` with an exact fast resampling path: the CKA family reads its replicates
        off precomputed Grams, cosine off per-sample cosines). Any other metric named here is
        recomputed on each half-sample and shuffle through the registry's generic path
        (:func:`repdrift.metrics.resample`), ``n_boot + n_perm`` evaluations per run and layer
        (procrustes at 750 × 2048: minutes per layer); left out, it gets values only.
    n_boot, n_perm
        Half-sample replicates and shuffled pairings per layer (0 disables either).
    level
        Confidence level of the intervals.
    seed
        Seed of every random draw; the same half-samples and shufflings are used for every
        run of a task, so runs stay paired by sample.
    cross_layer_metric
        Metric of the base-layer × fine-tuned-layer matrices.
    methods
        The two methods compared against each other (``a − b`` in drift).
    labels
        Per run path, overrides for ``task``, ``method`` and ``seed``.
    allow_foreign_reference
        Compare runs whose recorded base weights are not the reference's (refused by
        default; the runs are flagged in the summary).
    allow_different_inputs
        Compare runs whose samples were tokenised differently from the reference's (other
        token ids or padding side: refused by default, see
        :mod:`repdrift.analysis.comparability`); the runs are flagged in the summary and the
        report.
    device
        Where the float64 Gram / GEMM work of values, intervals and nulls runs: ``"auto"`` (a
        CUDA device with fast float64 — P100, V100, A100, H100/H200 — else numpy on the CPU),
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; the results agree to 1e-10 either way.
    token_blocks, token_null
        Token-level runs only: blocks of whole samples the intervals resample, and shuffles
        of the token-level null (default 0: none; at most ``n_perm``); what that null tests and
        its floor ``1 / (1 + token_null)``: :mod:`repdrift.analysis.token_null`.
    """
    started = time.perf_counter()
    metric_names = tuple(metrics)
    for name in (*metric_names, cross_layer_metric):
        registry.get(name)  # unknown names fail here, before any work
    params = _resolve_params(metric_params, (*metric_names, cross_layer_metric))
    values_only: list[str] = []  # said once the runs pair, not before an error
    if resampled is None:
        resampled = tuple(m for m in metric_names if registry.get(m).fast_resampling)
        if n_boot or n_perm:
            values_only = [m for m in metric_names if m not in resampled]
    resampled = tuple(resampled)
    missing = set(resampled) - set(metric_names)
    if missing:
        raise InputError(
            f"resampled metric(s) {sorted(missing)} are not among the metrics {list(metric_names)}"
        )
    if token_blocks < 2 or token_null < 0:
        raise InputError(
            f"token_blocks must be at least 2 and token_null at least 0, got {token_blocks}, "
            f"{token_null}"
        )
    settings = Settings(
        metric_names, resampled, n_boot, n_perm, level, seed, cross_layer_metric, methods, params,
        metrics_device(device), token_blocks, token_null,
    )  # fmt: skip
    groups = pair_runs(
        runs, ref=ref, labels=labels, verify=verify,
        allow_foreign_reference=allow_foreign_reference,
        allow_different_inputs=allow_different_inputs,
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
        rng = np.random.default_rng(seed)
        idx = stats.half_samples(n, n_boot, rng) if n_boot else None
        perms = stats.permutations(n, n_perm, rng) if n_perm else None
        pairs = sum(len(v.run.steps) for v in group.variants)
        layers = group.reference.run.layers
        # one bar per task, counting pairs × layers (and the cross-layer matrix of each run)
        described = f"{group.task}: {pairs} pair(s) x {len(layers)} layers"
        with progress_bar(
            pairs * len(layers) + len(group.variants), enabled=progress, description=described
        ) as advance:
            for layer in layers:
                rows, reps, cos = _layer(group, layer, settings, idx, perms)
                drift += rows
                replicates.update(reps)
                cosines += cos
                advance(pairs)
            cross += _cross_layer(
                group, cross_layer_metric, settings.params(cross_layer_metric), settings.device
            )
            advance(len(group.variants))

    drift_df = _finish_drift(pd.DataFrame(drift))
    noise = noise_floor(groups, metric_names, params)
    comparison = compare_methods(drift_df, replicates, methods=methods, level=level, seed=seed)
    results = Results(
        drift=drift_df,
        comparison=comparison,
        noise_floor=noise,
        cross_layer=pd.DataFrame(cross),
        sample_cosine=pd.DataFrame(cosines),
        task_ranking=rank_tasks(drift_df, replicates, level=level),
        summary=run_summary(groups, settings.__dict__, time.perf_counter() - started),
    )
    if token_groups:
        add_token_results(results, token_groups, settings, progress=progress)
    results.summary["seconds"] = round(time.perf_counter() - started, 2)  # token tables too
    store_headline(results)  # the one summary the console, the report and results.json show
    if out is not None:
        results.save(out)
    return results


def _layer(
    group: TaskGroup,
    layer: str,
    settings: Settings,
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


def _resolve_params(
    given: Mapping[str, Mapping[str, Any]] | None, names: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Every parameter of each named metric that has any: defaults updated by ``given``."""
    given = dict(given or {})
    unused = set(given) - set(names)
    if unused:
        raise InputError(
            f"metric_params given for {sorted(unused)}, which are not among the metrics "
            f"{list(dict.fromkeys(names))}"
        )
    resolved = {name: registry.resolve_params(name, given.get(name)) for name in names}
    return {name: p for name, p in resolved.items() if p}


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
