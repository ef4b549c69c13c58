"""Exact linear and debiased CKA of any union of blocks of rows: :class:`BlockStatistics`.

Token-level resampling draws whole samples, i.e. whole blocks of rows. Each block keeps a
:class:`~repdrift.metrics.streaming_debiased.StreamingDebiasedCKA`; a half-sample of blocks is
their merge. Merging block by block costs O(B d²) per replicate; instead every block's
statistics are re-expressed about one common origin (the pooled means ``g``, ``h``), where
they simply add, and the re-centring on a subset's own mean is done in closed form. With
``u = x - g``, ``v = y - h`` and, per block, the raw sums ``Rxy = Σ u vᵀ`` (and ``Rxx``,
``Ryy``), ``su = Σ u``, ``sv = Σ v``, ``AX = Σ ‖u‖² u``, ``BX = Σ ‖v‖² u``, ``AY = Σ ‖v‖² v``,
``BY = Σ ‖u‖² v``, ``Fxy = Σ ‖u‖²‖v‖²`` (``Fxx``, ``Fyy``), ``Ax = Σ ‖u‖²``, ``Ay = Σ ‖v‖²``, a
subset with weights ``w`` (0/1 per block; counts also work) has ``n = Σ w n_b``,
``μ = su/n``, ``ν = sv/n``, ``M = ‖μ‖²``, ``N = ‖ν‖²`` and

    ‖Sxy‖² = ‖Rxy‖² - 2 suᵀRxy sv / n + ‖su‖²‖sv‖² / n²
    tr Sxx = Ax - ‖su‖² / n
    fxy    = Fxy - 2 sv·BY / n - 2 su·BX / n + N Ax + M Ay + 4 suᵀRxy sv / n² - 3 n M N
    fxx    = Fxx - 4 su·AX / n + 2 M Ax + 4 suᵀRxx su / n² - 3 n M²

(each a sum over blocks of ``w`` times block terms: ``‖Rxy‖² = wᵀGw`` with the B × B Gram
``G_bc = <Rxy_b, Rxy_c>``, ``suᵀRxy sv`` a cubic form in ``w`` with the B × B × B tensor
``su_cᵀ Rxy_b sv_e``). These feed the same estimators as
:meth:`StreamingDebiasedCKA.numerators`, so a replicate costs O(B³), not O(B d²), and equals
merging the chosen blocks' accumulators (tested to 1e-10).

Blocks whose accumulators live on a torch device (``StreamingDebiasedCKA(device=...)``) are
re-expressed there, in float64: the B × B Grams and B × B × B tensors (the O(B² d²) work) are
computed on that device and only they come back to numpy; the replicates are numpy either way.

Memory: the block co-moments once, ``B (d1² + d2² + d1 d2)`` float64 (e.g. B = 50, d = 384:
177 MB; d = 1024: 1.26 GB), plus ``3 B³`` floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from repdrift.errors import InputError
from repdrift.metrics._pairwise import _to_numpy as _np
from repdrift.metrics.kernels import array_module
from repdrift.metrics.streaming import outer, trace
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA

__all__ = ["BlockStatistics"]


def _quad(W: np.ndarray, G: np.ndarray) -> np.ndarray:
    """(R,) ``w_r ᵀ G w_r`` for each row of W (R, B)."""
    return np.einsum("rb,bc,rc->r", W, G, W)


def _cubic(W: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(R,) ``Σ_bce w_b w_c w_e T[b, c, e]`` for each row of W (R, B)."""
    TW = np.einsum("bce,re->rbc", T, W)
    return np.einsum("rbc,rb,rc->r", TW, W, W)


class BlockStatistics:
    """Per-block sufficient statistics about one common origin (see the module docstring).

    Parameters
    ----------
    blocks : sequence of StreamingDebiasedCKA
        One accumulator per block (B >= 1), all of the same widths and device, none empty.
    """

    def __init__(self, blocks: Sequence[StreamingDebiasedCKA]) -> None:
        if not blocks or any(b.n == 0 for b in blocks):
            raise InputError("BlockStatistics needs at least one block, and no empty block")
        xp = array_module(blocks[0].sxx)
        n = np.array([b.n for b in blocks], dtype=np.float64)
        g = sum(b.n * b.mean_x for b in blocks) / n.sum()
        h = sum(b.n * b.mean_y for b in blocks) / n.sum()
        su, sv, AX, BX, AY, BY = [], [], [], [], [], []
        F = np.empty((len(blocks), 3))
        A = np.empty((len(blocks), 2))
        Rxx, Ryy, Rxy = [], [], []
        for k, b in enumerate(blocks):
            d, e = b.mean_x - g, b.mean_y - h
            shifted = b.shifted(d, e)
            su.append(b.n * d)
            sv.append(b.n * e)
            AX.append(shifted["ax"])
            BX.append(shifted["bx"])
            AY.append(shifted["ay"])
            BY.append(shifted["by"])
            F[k] = shifted["fxx"], shifted["fyy"], shifted["fxy"]
            Rxx.append((b.sxx + b.n * outer(d, d)).reshape(-1))
            Ryy.append((b.syy + b.n * outer(e, e)).reshape(-1))
            rxy = b.sxy + b.n * outer(d, e)
            Rxy.append(rxy)
            A[k] = trace(b.sxx) + b.n * float(d @ d), trace(b.syy) + b.n * float(e @ e)
        SU, SV = xp.stack(su), xp.stack(sv)
        self.n, self.F, self.A = n, F, A
        self.Puu, self.Pvv = _np(SU @ SU.T), _np(SV @ SV.T)
        self.Q_vBY, self.Q_uBX = _np(SV @ xp.stack(BY).T), _np(SU @ xp.stack(BX).T)
        self.Q_uAX, self.Q_vAY = _np(SU @ xp.stack(AX).T), _np(SV @ xp.stack(AY).T)
        d1, d2 = SU.shape[1], SV.shape[1]
        Mxx, Myy = xp.stack(Rxx), xp.stack(Ryy)
        Mxy = xp.stack([r.reshape(-1) for r in Rxy])
        self.Gxx, self.Gyy, self.Gxy = _np(Mxx @ Mxx.T), _np(Myy @ Myy.T), _np(Mxy @ Mxy.T)
        # T[b, c, e] = su_cᵀ R_b s_e
        self.Txx = _np(xp.einsum("ci,bie->bce", SU, Mxx.reshape(-1, d1, d1) @ SU.T))
        self.Tyy = _np(xp.einsum("ci,bie->bce", SV, Myy.reshape(-1, d2, d2) @ SV.T))
        self.Txy = _np(xp.einsum("ci,bie->bce", SU, xp.stack(Rxy) @ SV.T))

    @property
    def n_blocks(self) -> int:
        return len(self.n)

    def numerators(self, W: np.ndarray) -> dict[str, np.ndarray]:
        """Centred statistics of the subsets weighted by W (R, B): each an (R,) array.

        Keys: ``n``, ``sxy2``, ``sxx2``, ``syy2`` (squared Frobenius norms of the centred
        co-moments), ``qx``, ``qy`` (their traces), ``fxy``, ``fxx``, ``fyy``.
        """
        W = np.atleast_2d(np.asarray(W, dtype=np.float64))
        if W.shape[1] != self.n_blocks:
            raise InputError(f"weights have {W.shape[1]} columns for {self.n_blocks} blocks")
        n = W @ self.n
        puu, pvv = _quad(W, self.Puu), _quad(W, self.Pvv)
        txy, txx, tyy = _cubic(W, self.Txy), _cubic(W, self.Txx), _cubic(W, self.Tyy)
        Fxx, Fyy, Fxy = (W @ self.F).T
        Ax, Ay = (W @ self.A).T
        M, N = puu / n**2, pvv / n**2
        return {
            "n": n,
            "sxy2": _quad(W, self.Gxy) - 2 * txy / n + puu * pvv / n**2,
            "sxx2": _quad(W, self.Gxx) - 2 * txx / n + puu**2 / n**2,
            "syy2": _quad(W, self.Gyy) - 2 * tyy / n + pvv**2 / n**2,
            "qx": Ax - puu / n,
            "qy": Ay - pvv / n,
            "fxy": Fxy - 2 * _quad(W, self.Q_vBY) / n - 2 * _quad(W, self.Q_uBX) / n
            + N * Ax + M * Ay + 4 * txy / n**2 - 3 * n * M * N,
            "fxx": Fxx - 4 * _quad(W, self.Q_uAX) / n + 2 * M * Ax + 4 * txx / n**2
            - 3 * n * M**2,
            "fyy": Fyy - 4 * _quad(W, self.Q_vAY) / n + 2 * N * Ay + 4 * tyy / n**2
            - 3 * n * N**2,
        }  # fmt: skip

    def cka(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(debiased, linear) CKA of the subsets weighted by W (R, B): two (R,) arrays.

        A subset with fewer than 4 rows or no variance on either side gives NaN.
        """
        s = self.numerators(W)
        n = s["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            def num(cross: np.ndarray, f: np.ndarray, q1: np.ndarray, q2: np.ndarray):
                return cross - f + q1 * q2 / ((n - 1) * (n - 2)) - 2 * f / (n - 2)

            xy = num(s["sxy2"], s["fxy"], s["qx"], s["qy"])
            xx = num(s["sxx2"], s["fxx"], s["qx"], s["qx"])
            yy = num(s["syy2"], s["fyy"], s["qy"], s["qy"])
            debiased = xy / np.sqrt(xx * yy)
            linear = s["sxy2"] / np.sqrt(s["sxx2"] * s["syy2"])
        bad = (n < 4) | ~(xx > 0) | ~(yy > 0)
        debiased[bad] = math.nan
        linear[(n < 2) | ~(s["sxx2"] > 0) | ~(s["syy2"] > 0)] = math.nan
        return debiased, linear
