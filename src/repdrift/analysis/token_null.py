"""The token-level null: whole samples re-paired within groups of nearly equal length.

What it tests
-------------
Observed: base token ``t`` of sample ``i`` is paired with the variant's token ``t`` of sample
``i``. The samples are sorted by token count and dealt, in that order, into groups of
:data:`NULL_GROUP` (the last group takes the remainder); every sample is truncated to its
group's shortest, so a group's samples are blocks of equal length. A null pass pairs base
sample ``i``'s block with the variant's block of another sample of its group, position by
position (an independent uniform permutation within each group, :class:`SampleShuffles`).
Every sample takes part (``null_shuffled`` is the fraction of tokens kept after truncation,
typically > 0.95), so the null mean is the similarity that position and length structure
alone give, and the p-value asks: *do the variant's tokens carry information about their own
sample beyond position and length?* The observed similarity it is compared with is computed
on the same truncated tokens, and samples move as whole blocks, so the test is exact (type I
error at most α) whenever the variant's blocks are exchangeable within a group: tested by
simulation (tests/analysis/test_token_null.py). Shuffling single tokens within a position
instead breaks each sample's coherence and is far too liberal (48 % rejections at α = 0.05 in
that simulation); shuffling only samples of equal length, as repdrift did before, moves few
tokens on short texts.

It is not a test of drift. Two models run on the same token ids share every token's identity,
so for any real base / variant pair the answer is yes and p sits at its floor
``1 / (1 + n_null)``; the calibrated similarity (observed rescaled between the null mean and 1)
is the informative number. That is why :func:`repdrift.analysis.compare_runs.compare` draws
none by default (``token_null=0``).

Cost
----
A re-pairing permutes the variant's kept rows, which leaves both means, ``Sxx``, ``Syy`` and
the fourth-order self terms unchanged; a pass needs only the cross co-moment ``Uᵀ V_π`` (one
float64 GEMM per chunk, ``2 N d1 d2`` FLOPs), ``Σ ‖u_i‖² ‖v_π(i)‖²`` and, for ``cosine``, the
row dot products: about a third of a full accumulator pass. Each replicate equals the
streaming accumulator (and one-shot CKA) on the re-paired rows (tested to 1e-10). With a
``device`` the cross co-moment and the dot products run there in torch (float32 products
added in float64 where the device lacks fast float64, as in
:mod:`repdrift.metrics.streaming`); the per-row norms come back to numpy once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from repdrift.analysis.token_rows import read_rows, to_numpy
from repdrift.metrics.streaming import cross, row_sq, sq_sum, trace
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA

__all__ = ["NULL_GROUP", "SampleShuffles", "null_replicates", "null_text"]

#: Samples per group of nearly equal length that the null shuffles among.
NULL_GROUP = 10
#: Tokens per chunk of a null pass (bounds the working memory).
CHUNK_ROWS = 8192


class SampleShuffles:
    """Random re-pairings of whole samples within groups of nearly equal length.

    Parameters
    ----------
    offsets : (n + 1,) int array
        Token offsets of the samples (sample ``i`` holds rows ``offsets[i]:offsets[i+1]``).
    n_perm : int
        Number of shuffles.
    seed : int
        Shuffle ``r`` is drawn from the ``r``-th child of ``SeedSequence(seed)``: the same for
        every layer and run of a task, drawn one at a time (no (n_perm, N) array is held).
    group : int
        Samples per group (the last group takes the remainder; a lone sample joins the
        previous group).

    Attributes
    ----------
    rows : (K,) int64 the base rows the test uses (each sample truncated to its group's
        shortest), in sample order
    movable : float K / N, the fraction of tokens the null re-pairs
    """

    def __init__(self, offsets: np.ndarray, n_perm: int, seed: int, group: int = NULL_GROUP):
        offsets = np.asarray(offsets, dtype=np.int64)
        lengths = np.diff(offsets)
        n = len(lengths)
        self.n_perm = int(n_perm)
        order = np.argsort(lengths, kind="stable")
        starts = list(range(0, n, group))
        if len(starts) > 1 and n - starts[-1] < 2:
            starts.pop()
        self._groups = [order[s:e] for s, e in zip(starts, [*starts[1:], n], strict=True)]
        self._groups = [g for g in self._groups if len(g) > 1]
        keep = np.zeros(n, dtype=np.int64)  # tokens kept of each sample
        for g in self._groups:
            keep[g] = lengths[g].min()
        self._sample = np.repeat(np.arange(n), keep)
        self._position = np.arange(keep.sum()) - np.repeat(np.cumsum(keep) - keep, keep)
        self._offsets = offsets
        self.rows = offsets[:-1][self._sample] + self._position
        self.movable = float(keep.sum() / max(int(offsets[-1]), 1))
        self._seeds = np.random.SeedSequence(seed).spawn(self.n_perm)

    def __len__(self) -> int:
        return self.n_perm

    def perm(self, r: int) -> np.ndarray:
        """(K,) the variant's row paired with each of :attr:`rows` in shuffle ``r``."""
        rng = np.random.default_rng(self._seeds[r])
        partner = np.arange(len(self._offsets) - 1)
        for g in self._groups:
            partner[g] = rng.permutation(g)
        return self._offsets[:-1][partner[self._sample]] + self._position


def null_replicates(
    X: np.ndarray, Y: np.ndarray, shuffles: SampleShuffles,
    advance: Callable[[int], None] = lambda _n: None, device: Any = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:  # fmt: skip
    """The observed similarity on the test's rows and each re-pairing's.

    Parameters
    ----------
    X, Y : (N, d1), (N, d2) arrays (memory-maps welcome; read chunk by chunk)
        Base and variant tokens, paired row by row.
    shuffles : SampleShuffles
    advance : called with 1 after each null pass (a progress bar)
    device : None (numpy) or the torch device the passes run on

    Returns
    -------
    ``cka_debiased``, ``cka_linear`` and ``cosine`` of the identity pairing on
    ``shuffles.rows`` (floats) and of each shuffle ((n_perm,) arrays).
    """
    rows = shuffles.rows
    total = StreamingDebiasedCKA(device)
    for start in range(0, len(rows), CHUNK_ROWS):
        part = rows[start : start + CHUNK_ROWS]
        total.update(read_rows(X, part, device), read_rows(Y, part, device))
    terms = _Terms(X, Y, rows, total)
    observed = terms.similarities(rows)
    null = {k: np.full(len(shuffles), math.nan) for k in observed}
    for r in range(len(shuffles)):
        for name, value in terms.similarities(shuffles.perm(r)).items():
            null[name][r] = value
        advance(1)
    return observed, null


class _Terms:
    """What a re-pairing of the variant's rows leaves unchanged, and its cross terms."""

    def __init__(self, X: np.ndarray, Y: np.ndarray, rows: np.ndarray, total: StreamingDebiasedCKA):
        self.X, self.Y, self.rows, self.n = X, Y, rows, total.n
        self.device, self.fast64 = total.device, total.fast64
        self.mx, self.my = total.mean_x, total.mean_y
        self.same_width = X.shape[1] == Y.shape[1]
        k = len(rows)
        # per kept row: centred squared norms (for Σ‖u‖²‖v‖²) and norms (for the cosine);
        # the variant's indexed by row, as a shuffle addresses them
        self.a, self.norm_x = np.empty(k), np.empty(k)
        self.b, self.norm_y = np.zeros(len(Y)), np.ones(len(Y))
        for start in range(0, k, CHUNK_ROWS):
            part = rows[start : start + CHUNK_ROWS]
            Xc, Yc = read_rows(X, part, self.device), read_rows(Y, part, self.device)
            self.a[start : start + len(part)] = _sq_norms(Xc - self.mx)
            self.norm_x[start : start + len(part)] = np.sqrt(_sq_norms(Xc))
            self.b[part], self.norm_y[part] = _sq_norms(Yc - self.my), np.sqrt(_sq_norms(Yc))
        _, self.xx, self.yy = total.numerators()
        self.qx, self.qy = trace(total.sxx), trace(total.syy)
        self.linear_den = math.sqrt(sq_sum(total.sxx) * sq_sum(total.syy))

    def similarities(self, y_rows: np.ndarray) -> dict[str, float]:
        """The three similarities of base :attr:`rows` paired with the variant's ``y_rows``."""
        n = self.n
        sxy, dots = 0.0, np.empty(len(y_rows))
        for start in range(0, len(y_rows), CHUNK_ROWS):
            ys = y_rows[start : start + CHUNK_ROWS]
            Xc = read_rows(self.X, self.rows[start : start + CHUNK_ROWS], self.device)
            order = np.argsort(ys)  # read the variant's rows in file order
            Yc = read_rows(self.Y, ys[order], self.device)[_inverse(order, self.device)]
            sxy = sxy + cross(Xc - self.mx, Yc - self.my, self.fast64)
            if self.same_width:
                dots[start : start + len(ys)] = to_numpy(row_sq_dot(Xc, Yc))
        fxy = float(self.a @ self.b[y_rows])
        sxy2 = sq_sum(sxy)
        xy = sxy2 - fxy + self.qx * self.qy / ((n - 1) * (n - 2)) - 2.0 * fxy / (n - 2)
        good = n >= 4 and self.xx > 0 and self.yy > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.mean(dots / (self.norm_x * self.norm_y[y_rows]))
        return {
            "cka_debiased": xy / math.sqrt(self.xx * self.yy) if good else math.nan,
            "cka_linear": sxy2 / self.linear_den if self.linear_den > 0 else math.nan,
            "cosine": float(cosine) if self.same_width else math.nan,
        }


def null_text(n_null: int, requested: int) -> str:
    """The results' description of the token-level null (``settings['token_null']``)."""
    what = (
        f"whole samples re-paired within groups of {NULL_GROUP} samples of nearly equal "
        "length, each truncated to its group's shortest, tokens paired by position; it tests "
        "whether the variant's tokens carry information about their own sample beyond "
        "position and length (true for any two models on the same token ids), not drift"
    )
    if n_null == 0:
        why = "token_null = 0, the default" if requested == 0 else "n_perm = 0"
        return (
            f"token level: no null drawn ({why}), so p_perm is empty. token_null = N "
            f"(--token-null N) draws N shuffles, one pass over the tokens each: {what}; its "
            "p-values are no smaller than 1/(N + 1)"
        )
    return (
        f"token level: {what}; null_shuffled = fraction of tokens kept; {n_null} shuffles, one "
        "pass over the tokens each; p = (1 + #null >= observed on the kept tokens) / "
        f"(1 + {n_null}), so p >= {1 / (n_null + 1):.4g} (its floor)"
    )


def _sq_norms(A: Any) -> np.ndarray:
    """(m,) squared row norms of A (m, d), numpy or torch, as numpy."""
    return to_numpy(row_sq(A))


def row_sq_dot(A: Any, B: Any) -> Any:
    """(m,) dot product of each pair of rows of A, B (m, d), numpy or torch."""
    return (A * B).sum(1)


def _inverse(order: np.ndarray, device: Any) -> Any:
    """The permutation undoing ``order`` (indexes rows read in ``order``), for numpy or torch."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    if device is None:
        return inverse
    import torch

    return torch.from_numpy(inverse).to(device)
