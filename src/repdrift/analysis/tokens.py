"""Drift of token-level runs (``--pooling tokens``) over all tokens, with intervals and a null.

How it is measured
------------------
Rows are tokens, paired by sample id and token position (pairing refuses runs whose token
ids differ, so both sides hold the same tokens). ``cka_debiased`` and ``cka_linear`` over all
tokens come from exact streaming accumulators
(:class:`~repdrift.metrics.streaming_debiased.StreamingDebiasedCKA`, whose state also gives
linear CKA), ``cosine`` is the mean per-token cosine; all in float64, equal to one-shot
computations on the concatenated tokens.

Intervals: the unit of resampling is the sample (its block of tokens). Samples are dealt at
random (``seed``) into ``B = min(n_blocks, n)`` blocks of nearly equal sample counts, each
with its own accumulator; a half-sample of blocks (the same half-sample interval as the
pooled analysis, :func:`repdrift.analysis.stats.half_samples` over blocks) is the exact merge
of those blocks' accumulators, computed in closed form by
:class:`~repdrift.metrics.token_blocks.BlockStatistics` (O(B³) per replicate).

Null (:mod:`repdrift.analysis.token_null`): none by default. With ``max_null = N > 0``
(``compare``'s ``token_null``, CLI ``--token-null``) whole samples are re-paired within
groups of nearly equal length (each truncated to its group's shortest), ``min(N, n_perm)``
shuffles, one pass over the tokens each; it asks whether the variant's tokens carry
information about their own sample beyond position and length (not whether they drifted),
and its p-values are no smaller than ``1 / (1 + min(N, n_perm))``. ``p_perm``,
``null_mean`` and ``calibrated`` compare the similarity over the kept tokens
(``null_shuffled``: their fraction) with the null; ``n_null`` is the shuffles drawn.

Progress: one bar per task over layers × pairs × (1 + null passes).

Memory: ``B`` accumulators of ``3 d²`` float64 each (B = 50: 177 MB at d = 384, 1.26 GB at
d = 1024) plus one chunk of at most :data:`CHUNK_ROWS` tokens and one float64 per token (the
per-token cosines); token files are memory-mapped, never read whole.

The pooled answer sits beside it: compare also analyses each token-level run mean-pooled
over its tokens (:class:`MeanPooledRun`, the same vectors ``--pooling mean`` extracts up to
rounding), in the ordinary ``drift`` table.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from repdrift.analysis import stats
from repdrift.analysis.intervals import half_sample_interval, metric_drift_range
from repdrift.analysis.pairing import RunInfo, TaskGroup
from repdrift.analysis.settings import AnalysisSettings
from repdrift.analysis.token_null import (
    SampleShuffles,
    null_replicates,
    null_text,
)
from repdrift.analysis.token_profile import profile_rows, sample_rows, token_layout
from repdrift.analysis.token_rows import chunk_cosines, read_rows
from repdrift.common.naming import layer_index
from repdrift.common.progress import ProgressCallback, progress_bar
from repdrift.errors import InputError
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA
from repdrift.metrics.token_blocks import BlockStatistics
from repdrift.store.reader import Run
from repdrift.store.results import Results

__all__ = ["TOKEN_METRICS", "MeanPooledRun", "add_token_results", "pool_token_runs", "token_tables"]

#: Metrics computed over tokens (the others are computed on the mean-pooled runs only).
TOKEN_METRICS = ("cka_debiased", "cka_linear", "cosine")
#: Tokens per chunk fed to an accumulator (bounds the working memory).
CHUNK_ROWS = 8192
INTERVAL_TEXT = (
    "token level: half-samples of min({blocks}, n) random blocks of whole samples, each block's "
    "exact accumulator merged in closed form"
)


class MeanPooledRun:
    """A token-level run seen as a pooled one: :meth:`layer` is the mean of each sample's
    tokens (float64); everything else is the wrapped :class:`Run`'s."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._cache: dict[tuple[str | int, int | None], np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._run, name)

    @property
    def pooling(self) -> str:
        return "mean of tokens"

    def layer(self, name: str | int, step: int | None = None, *, mmap: bool = False) -> np.ndarray:
        key = (name, step)
        if key not in self._cache:
            tokens, offsets = self._run.tokens(name, step, mmap=True)
            sums = np.add.reduceat(np.asarray(tokens, dtype=np.float64), offsets[:-1], axis=0)
            self._cache[key] = sums / np.diff(offsets)[:, None]
        return self._cache[key]


def _is_tokens(info: RunInfo) -> bool:
    return info.run.pooling == "tokens"


def pool_token_runs(groups: list[TaskGroup]) -> tuple[list[TaskGroup], list[TaskGroup]]:
    """(groups with token-level runs seen mean-pooled, the token-level groups as they are)."""
    pooled, token_groups = [], []
    for g in groups:
        if not _is_tokens(g.reference):
            pooled.append(g)
            continue
        token_groups.append(g)

        def wrap(info: RunInfo) -> RunInfo:
            return dataclasses.replace(info, run=MeanPooledRun(info.run))

        pooled.append(dataclasses.replace(
            g, reference=wrap(g.reference), variants=[wrap(v) for v in g.variants]
        ))  # fmt: skip
    return pooled, token_groups


def _labels(info: RunInfo, step: int, layer: str) -> dict[str, Any]:
    return {
        "task": info.task, "method": info.method, "seed": info.seed, "run": info.name,
        "step": step, "layer": layer, "layer_index": layer_index(layer),
    }  # fmt: skip


def _blocks(n: int, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) block of each sample: a random deal into min(n_blocks, n) near-equal blocks."""
    B = min(n_blocks, n)
    block = np.empty(n, dtype=np.int64)
    block[rng.permutation(n)] = np.arange(n) * B // n
    return block


def _rows_of(offsets: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Token rows of ``samples`` (in that order), concatenated."""
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in samples])


def _pass(
    X: np.ndarray, Y: np.ndarray, x_rows: np.ndarray, y_rows: np.ndarray, device: Any = None
) -> tuple[StreamingDebiasedCKA, np.ndarray]:
    """One accumulator over the paired rows, chunk by chunk, and their per-row cosines
    (``device``: None for numpy, else the torch device the accumulator runs on)."""
    acc = StreamingDebiasedCKA(device)
    cos = np.empty(len(x_rows))
    for start in range(0, len(x_rows), CHUNK_ROWS):
        xs, ys = x_rows[start : start + CHUNK_ROWS], y_rows[start : start + CHUNK_ROWS]
        Xc, Yc = read_rows(X, xs, device), read_rows(Y, ys, device)
        acc.update(Xc, Yc)
        if Xc.shape[1] == Yc.shape[1]:
            cos[start : start + len(xs)] = chunk_cosines(Xc, Yc)
    return acc, cos


def _measure(
    X: np.ndarray, Y: np.ndarray, offsets: np.ndarray, block: np.ndarray,
    W: np.ndarray | None, shuffles: SampleShuffles | None,
    advance: ProgressCallback = lambda _n: None, device: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Values, half-sample replicates and null of the three token metrics for one pair
    (``advance(1)`` after the values and after each null pass; ``device`` as for
    :func:`token_tables`)."""
    B = int(block.max()) + 1
    per_token_cos = np.empty(int(offsets[-1]))
    accs, cos_sum, cos_n = [], np.zeros(B), np.zeros(B)
    for b in range(B):
        rows = _rows_of(offsets, np.flatnonzero(block == b))
        acc, cos = _pass(X, Y, rows, rows, device)
        accs.append(acc)
        per_token_cos[rows] = cos
        cos_sum[b], cos_n[b] = cos.sum(), len(cos)
    total = copy.deepcopy(accs[0])
    for acc in accs[1:]:
        total.merge(acc)
    same_width = X.shape[1] == Y.shape[1]
    values = {
        "cka_debiased": total.compute(),
        "cka_linear": total.linear_cka(),
        "cosine": float(per_token_cos.mean()) if same_width else math.nan,
    }
    boot: dict[str, np.ndarray] = {}
    if W is not None:
        deb, lin = BlockStatistics(accs).cka(W)
        boot = {"cka_debiased": deb, "cka_linear": lin, "cosine": (W @ cos_sum) / (W @ cos_n)}
    advance(1)
    null: dict[str, np.ndarray] = {}
    null_observed: dict[str, float] = {}
    if shuffles is not None and len(shuffles):
        null_observed, null = null_replicates(X, Y, shuffles, advance, device)
    return {
        "values": values, "boot": boot, "null": null, "null_observed": null_observed,
        "per_token_cos": per_token_cos,
    }  # fmt: skip


def token_tables(
    groups: Sequence[TaskGroup], settings: AnalysisSettings, *, progress: bool = False
) -> dict[str, pd.DataFrame]:
    """``token_drift``, ``token_profile`` and ``token_samples`` tables of token-level groups.

    ``settings`` (resolved, :meth:`~repdrift.analysis.settings.AnalysisSettings.resolved`):
    ``metrics`` selects among :data:`TOKEN_METRICS`; ``n_boot`` half-samples of
    ``token_blocks`` sample blocks; ``min(n_perm, token_null)`` null passes; ``device``: None
    (numpy, float64) or a torch device the accumulators run on (see
    :mod:`repdrift.metrics.streaming` for its dtypes); see the module docstring for the rest.
    """
    wanted = [m for m in TOKEN_METRICS if m in settings.metrics]
    n_boot, level, seed, device = settings.n_boot, settings.level, settings.seed, settings.device
    n_blocks = settings.token_blocks
    drift, profile, samples = [], [], []
    n_null = min(settings.n_perm, settings.token_null)
    for g in groups:
        ref = g.reference.run
        _, offsets = ref.tokens(ref.layers[0], mmap=True)
        n = len(offsets) - 1
        rng = np.random.default_rng(seed)
        block = _blocks(n, n_blocks, rng)
        B = int(block.max()) + 1
        W = None
        if n_boot and B >= 8:
            W = np.zeros((n_boot, B))
            np.put_along_axis(W, stats.half_samples(B, n_boot, rng), 1.0, axis=1)
        shuffles = SampleShuffles(offsets, n_null, seed) if n_null else None
        shuffled = shuffles.movable if shuffles is not None else math.nan
        layout = token_layout(ref, offsets)
        jobs = [(v, s) for v in g.variants for s in v.run.steps]
        described = (
            f"{g.task}: tokens, {len(jobs)} pair(s) x {len(ref.layers)} layers"
            + (f" x (1 + {n_null} null passes)" if n_null else "")
        )
        units = len(jobs) * len(ref.layers) * (1 + n_null)
        with progress_bar(units, enabled=progress, description=described) as advance:
            for layer in ref.layers:
                X, _ = ref.tokens(layer, mmap=True)
                for info, step in jobs:
                    Y, y_offsets = info.run.tokens(layer, step, mmap=True)
                    if not np.array_equal(y_offsets, offsets):
                        raise InputError(
                            f"{info.run.path} step {step}, {layer}: token counts per sample "
                            f"differ from {ref.path}'s; tokens cannot be paired"
                        )
                    res = _measure(X, Y, offsets, block, W, shuffles, advance, device)
                    labels = _labels(info, step, layer)
                    for name in wanted:
                        drift.append(
                            _row(labels, name, res, level, n, int(offsets[-1]), B, shuffled)
                            | {"n_null": n_null}
                        )
                    if X.shape[1] == Y.shape[1]:
                        per_token = 1 - res["per_token_cos"]
                        profile += profile_rows(labels, layout, per_token)
                        samples += sample_rows(labels, layout, per_token, ref.sample_ids)
    table = pd.DataFrame(drift)
    if not table.empty:
        table["p_perm_holm"] = np.nan
        for _, part in table.groupby("metric"):
            table.loc[part.index, "p_perm_holm"] = stats.adjust_pvalues(part["p_perm"], "holm")
    return {
        "token_drift": table,
        "token_profile": pd.DataFrame(profile),
        "token_samples": pd.DataFrame(samples),
    }


def _row(
    labels: dict[str, Any], name: str, res: dict[str, Any], level: float, n: int,
    n_tokens: int, n_blocks: int, shuffled: float,
) -> dict[str, Any]:  # fmt: skip
    value = float(res["values"][name])
    nan = math.nan
    row = {
        **labels, "metric": name, "level": "tokens", "similarity": value, "drift": 1 - value,
        "ci_low": nan, "ci_high": nan, "p_perm": nan, "null_mean": nan, "calibrated": nan,
        "n": n, "n_tokens": n_tokens, "n_blocks": n_blocks, "null_shuffled": shuffled,
    }  # fmt: skip
    if name in res["boot"]:
        low, high = half_sample_interval(
            1 - value, 1 - res["boot"][name], level, metric_drift_range(name), paired=False
        )  # blocks of unequal token counts: the plain spread (see half_sample_interval)
        row.update(ci_low=low, ci_high=high)
    if name in res["null"] and math.isfinite(res["null_observed"][name]):
        # the null's own observed value: the same (truncated) tokens as its shuffles
        observed, null = res["null_observed"][name], res["null"][name]
        null_mean = float(np.mean(null))
        row.update(
            p_perm=stats.permutation_pvalue(observed, null), null_mean=null_mean,
            calibrated=stats.calibrated_similarity(observed, null_mean),
        )  # fmt: skip
    return row


def add_token_results(
    results: Results,
    groups: Sequence[TaskGroup],
    settings: AnalysisSettings,
    *,
    progress: bool = False,
) -> Results:
    """Fill ``results``' token tables from the token-level ``groups`` (the hook of
    :func:`repdrift.analysis.compare_runs.compare`, with its resolved settings)."""
    tables = token_tables(groups, settings, progress=progress)
    for name, table in tables.items():
        setattr(results, name, table)
    described = results.summary.setdefault("settings", {})
    described["token_interval"] = INTERVAL_TEXT.format(blocks=settings.token_blocks)
    n_null = min(settings.n_perm, settings.token_null)
    described["token_null"] = null_text(n_null, settings.token_null)
    described["token_pooled"] = (
        "the drift table analyses token-level runs mean-pooled over each sample's tokens"
    )
    return results
