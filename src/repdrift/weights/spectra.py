"""Spectral statistics of weight matrices and of their fine-tuning updates ΔW.

All functions compute in float64 and accept numpy arrays or torch tensors. Weight matrices are
in the ``nn.Linear`` layout, shape (out_features, in_features), so their left singular vectors
live in the module's output space.

Definitions
-----------
effective rank (Roy & Vetterli 2007, "The effective rank: a measure of effective
dimensionality")
    With singular values s and p_i = s_i / sum_j s_j, erank = exp(-sum_i p_i log p_i), using
    0 log 0 = 0. It lies in [1, rank] for a non-zero matrix: 1 for rank one, r for r equal
    singular values. The zero matrix (an unchanged module) has no distribution p; we report 0.
stable rank (Rudelson & Vershynin 2007)
    ||A||_F^2 / ||A||_2^2 = sum_i s_i^2 / s_1^2, in [1, rank]; 0 for the zero matrix.
intruder dimensions (Shuttleworth, Andreas, Torralba & Sharma 2024, "LoRA vs Full
Fine-tuning: An Illusion of Equivalence", Algorithm 1)
    Take the thin SVDs W0 = U0 S0 V0^T and W' = U' S' V'^T. Fine-tuned singular vector j
    (j among the top k by singular value) is an intruder when max_i |cos(U'[:, j], U0[:, i])|
    < epsilon over *all* singular vectors i of W0. The paper and its code compare left
    singular vectors of the weights in nn.Linear layout (torch.linalg.svd, full_matrices=
    False), take the absolute dot product, examine k = 10 and sweep epsilon; PEFT's
    ``reduce_intruder_dimension`` follows the same recipe with k = 10, epsilon = 0.5, which
    are our defaults. For a tall matrix (out > in) U0 spans only an in-dimensional subspace
    of the output space, as in the paper's thin SVD.
intruder energy share
    sum of s'_j^2 over the intruders among the top k / sum of s'_j^2 over the top k, with s'
    the singular values of W': how much of the top-k spectral energy lies in intruder
    directions. It keeps separating methods where the count saturates.
random-direction reference
    The count expected if the top-k directions of W' were uniformly random, at that shape and
    epsilon (:mod:`repdrift.weights.intruder_null`): a count near it says the top directions
    are as unaligned with the base as chance, whatever their number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from repdrift.errors import InputError
from repdrift.weights.intruder_null import expected_random_intruders

ArrayLike = np.ndarray | torch.Tensor


def as_float64(x: ArrayLike, *, ndim: int, name: str, device: str | torch.device = "cpu"):
    """Convert to a float64 torch tensor on ``device`` and check dimensionality and finiteness."""
    tensor = torch.as_tensor(x).to(device=device, dtype=torch.float64)
    if tensor.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{name}: contains NaN or infinite values")
    return tensor


def _check_singular_values(s: ArrayLike) -> torch.Tensor:
    values = as_float64(s, ndim=1, name="singular_values")
    if bool((values < 0).any()):
        raise InputError("singular_values: must be non-negative")
    return values


def effective_rank(singular_values: ArrayLike) -> float:
    """Roy & Vetterli's effective rank: exp of the entropy of the normalised singular values.

    Parameters
    ----------
    singular_values : array, shape (p,)
        Non-negative singular values, any order.

    Returns
    -------
    float
        In [1, number of non-zero values]; 0.0 when all values are zero.
    """
    s = _check_singular_values(singular_values)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    entropy = -(p * torch.log(p)).sum()
    return float(torch.exp(entropy))


def stable_rank(singular_values: ArrayLike) -> float:
    """Stable rank sum_i s_i^2 / max_i s_i^2 = ||A||_F^2 / ||A||_2^2.

    Parameters
    ----------
    singular_values : array, shape (p,)
        Non-negative singular values, any order.

    Returns
    -------
    float
        In [1, rank]; 0.0 when all values are zero.
    """
    s = _check_singular_values(singular_values)
    top = s.max() if s.numel() else torch.tensor(0.0, dtype=torch.float64)
    if top <= 0:
        return 0.0
    return float((s / top).square().sum())


def low_rank_singular_values(b: ArrayLike, a: ArrayLike, scale: float = 1.0) -> torch.Tensor:
    """Singular values of scale * B @ A without forming the (out, in) product.

    With B = Q_B R_B and A^T = Q_A R_A (reduced QR), B A = Q_B (R_B R_A^T) Q_A^T, and Q_B, Q_A
    have orthonormal columns, so B A shares its non-zero singular values with the r x r
    matrix R_B R_A^T.

    Parameters
    ----------
    b : array, shape (out, r)
    a : array, shape (r, in)
    scale : float

    Returns
    -------
    torch.Tensor, shape (min(r, out, in),)
        float64, descending.
    """
    b64 = as_float64(b, ndim=2, name="B")
    a64 = as_float64(a, ndim=2, name="A", device=b64.device)
    if b64.shape[1] != a64.shape[0]:
        raise InputError(f"B {tuple(b64.shape)} and A {tuple(a64.shape)}: inner dimensions differ")
    _, r_b = torch.linalg.qr(b64)
    _, r_a = torch.linalg.qr(a64.T)
    return abs(scale) * torch.linalg.svdvals(r_b @ r_a.T)


def max_abs_cosine(u_reference: ArrayLike, u_query: ArrayLike) -> np.ndarray:
    """For each query vector, its largest |cosine| with any reference vector.

    Parameters
    ----------
    u_reference : array, shape (m, p)
        Reference unit vectors as columns (e.g. all left singular vectors of the base).
    u_query : array, shape (m, k)
        Query unit vectors as columns (e.g. the top-k left singular vectors of W').

    Returns
    -------
    numpy.ndarray, shape (k,)
        float64 in [0, 1] for unit-norm columns.
    """
    ref = as_float64(u_reference, ndim=2, name="u_reference")
    query = as_float64(u_query, ndim=2, name="u_query", device=ref.device)
    if ref.shape[0] != query.shape[0]:
        raise InputError(
            f"u_reference {tuple(ref.shape)} and u_query {tuple(query.shape)}: row counts differ"
        )
    # Columns are unit vectors, so the dot product is the cosine.
    return (query.T @ ref).abs().amax(dim=1).cpu().numpy()


def check_intruder_params(k: int, epsilon: float) -> None:
    """Validate ``k`` (positive int) and ``epsilon`` (in (0, 1])."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k: expected a positive integer, got {k!r}")
    if not (isinstance(epsilon, int | float) and 0 < epsilon <= 1 and math.isfinite(epsilon)):
        raise InputError(f"epsilon: expected a number in (0, 1], got {epsilon!r}")


def intruder_alignment(
    w_base: ArrayLike,
    w_finetuned: ArrayLike,
    k: int = 10,
    *,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """max_i |cos(U'[:, j], U0[:, i])| for the top-k left singular vectors of W'.

    Parameters
    ----------
    w_base : array, shape (out, in)
        Pre-trained weight W0 (nn.Linear layout).
    w_finetuned : array, shape (out, in)
        Fine-tuned weight W'.
    k : int
        Number of top singular vectors of W' to examine; clipped to min(out, in).
    device : str or torch.device
        Where the SVDs run.

    Returns
    -------
    numpy.ndarray, shape (min(k, out, in),)
        Alignment of each examined vector, in order of decreasing singular value.
    """
    check_intruder_params(k, 0.5)
    base = as_float64(w_base, ndim=2, name="w_base", device=device)
    tuned = as_float64(w_finetuned, ndim=2, name="w_finetuned", device=device)
    if base.shape != tuned.shape:
        raise InputError(
            f"w_base {tuple(base.shape)} and w_finetuned {tuple(tuned.shape)}: shapes differ"
        )
    u_base = torch.linalg.svd(base, full_matrices=False).U
    u_tuned = torch.linalg.svd(tuned, full_matrices=False).U
    return max_abs_cosine(u_base, u_tuned[:, :k])


def intruder_dimensions(
    w_base: ArrayLike,
    w_finetuned: ArrayLike,
    k: int = 10,
    epsilon: float = 0.5,
    *,
    device: str | torch.device = "cpu",
) -> int:
    """Number of intruder dimensions among the top-k singular vectors of W'.

    Shuttleworth et al. (2024), Algorithm 1: count j <= k with
    max_i |cos(U'[:, j], U0[:, i])| < epsilon (see module docstring for the convention).

    Parameters
    ----------
    w_base : array, shape (out, in)
        Pre-trained weight W0 (nn.Linear layout).
    w_finetuned : array, shape (out, in)
        Fine-tuned weight W' = W0 + ΔW.
    k : int
        Top singular vectors of W' to examine (paper: 10); clipped to min(out, in).
    epsilon : float
        Cosine threshold in (0, 1] (PEFT default 0.5).

    Returns
    -------
    int
        In [0, min(k, out, in)].
    """
    check_intruder_params(k, epsilon)
    alignment = intruder_alignment(w_base, w_finetuned, k, device=device)
    return int((alignment < epsilon).sum())


@dataclass
class BaseSpectrum:
    """SVD of one base weight, computed on first use and shared by all variants.

    Attributes
    ----------
    weight : torch.Tensor, shape (out, in)
        float64, nn.Linear layout.
    """

    weight: torch.Tensor
    _svd: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def left(self) -> torch.Tensor:
        """Left singular vectors, shape (out, min(out, in))."""
        return self._decompose()[0]

    @property
    def singular_values(self) -> torch.Tensor:
        """Singular values, shape (min(out, in),), descending."""
        return self._decompose()[1]

    def _decompose(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._svd is None:
            u, s, _ = torch.linalg.svd(self.weight, full_matrices=False)
            self._svd = (u, s)
        return self._svd


def module_drift(
    w_base: ArrayLike | BaseSpectrum,
    delta: ArrayLike,
    *,
    k: int = 10,
    epsilon: float = 0.5,
    delta_singular_values: ArrayLike | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, float | int]:
    """All weight-space statistics of one module's update.

    Parameters
    ----------
    w_base : array, shape (out, in), or BaseSpectrum
        Base weight W in nn.Linear layout (a BaseSpectrum reuses its cached SVD).
    delta : array, shape (out, in)
        The update ΔW = W' - W.
    k, epsilon : int, float
        Intruder-dimension parameters (see :mod:`repdrift.weights.spectra`).
    delta_singular_values : array, shape (p,), optional
        Singular values of ΔW when known more cheaply (LoRA); otherwise computed.
    device : str or torch.device
        Where the SVDs run (ignored for the BaseSpectrum's own SVD).

    Returns
    -------
    dict
        ``rel_change`` = ||ΔW||_F / ||W||_F, ``delta_fro``, ``base_fro``, ``delta_spectral`` =
        ||ΔW||_2, ``base_spectral`` = ||W||_2, ``spectral_ratio`` = ||ΔW||_2 / ||W||_2,
        ``effective_rank`` and ``stable_rank`` of ΔW, ``intruder_count``, ``intruder_energy``
        (share of the top-k energy sum s'_j^2 of W' in intruder directions; 0 when there are
        none), ``intruder_null`` (count expected for random directions at this shape and
        epsilon), ``min_alignment`` (smallest max-|cos| among the examined singular vectors of
        W'; 1 when ΔW = 0) and ``k`` (examined vectors, min(k, out, in)).
    """
    check_intruder_params(k, epsilon)
    if isinstance(w_base, BaseSpectrum):
        base = w_base
    else:
        base = BaseSpectrum(as_float64(w_base, ndim=2, name="w_base", device=device))
    d = as_float64(delta, ndim=2, name="delta", device=base.weight.device)
    if d.shape != base.weight.shape:
        raise InputError(
            f"delta {tuple(d.shape)} and w_base {tuple(base.weight.shape)}: shapes differ"
        )
    base_fro = float(torch.linalg.norm(base.weight))
    delta_fro = float(torch.linalg.norm(d))
    if delta_singular_values is not None:
        s_delta = as_float64(delta_singular_values, ndim=1, name="delta_singular_values")
    elif delta_fro == 0.0:
        s_delta = torch.zeros(1, dtype=torch.float64)  # frozen module: skip the SVD
    else:
        s_delta = torch.linalg.svdvals(d)
    k_used = min(k, *d.shape)
    base_spectral = float(base.singular_values[0]) if base.singular_values.numel() else 0.0
    delta_spectral = float(s_delta.max()) if s_delta.numel() else 0.0
    if delta_fro == 0.0:
        # W' = W exactly: every singular vector of W' is one of W's.
        alignment = np.ones(k_used)
        energy = base.singular_values[:k_used].square().cpu().numpy()
    else:
        u_all, s_all, _ = torch.linalg.svd(base.weight + d, full_matrices=False)
        alignment = max_abs_cosine(base.left, u_all[:, :k_used])
        energy = s_all[:k_used].square().cpu().numpy()
    intruder = alignment < epsilon
    out_f, in_f = d.shape
    return {
        "rel_change": delta_fro / base_fro if base_fro > 0 else float("nan"),
        "delta_fro": delta_fro,
        "base_fro": base_fro,
        "delta_spectral": delta_spectral,
        "base_spectral": base_spectral,
        "spectral_ratio": delta_spectral / base_spectral if base_spectral > 0 else float("nan"),
        "effective_rank": effective_rank(s_delta),
        "stable_rank": stable_rank(s_delta),
        "intruder_count": int(intruder.sum()),
        "intruder_energy": _share(energy, intruder),
        "intruder_null": expected_random_intruders(out_f, min(out_f, in_f), k_used, epsilon),
        "min_alignment": float(alignment.min()) if alignment.size else float("nan"),
        "k": k_used,
    }


def _share(energy: np.ndarray, chosen: np.ndarray) -> float:
    """sum(energy[chosen]) / sum(energy); 0 when nothing is chosen, NaN for zero energy."""
    if not chosen.any():
        return 0.0
    total = float(energy.sum())
    return float(energy[chosen].sum()) / total if total > 0 else float("nan")
