"""Intruder dimensions with a reference: the count random directions give, the share of spectral
energy in intruders, checked against planted updates whose intruders are known by construction,
through the math, the weights table, the CLI summary and the figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import hadamard
from transformers import BertModel

from _tiny_models import tiny_bert_config
from repdrift.cli import views
from repdrift.errors import InputError
from repdrift.plots.weights import intruder_counts
from repdrift.weights import (
    expected_random_intruders,
    intruder_alignment,
    module_drift,
    random_intruder_probability,
    weight_drift,
)
from repdrift.weights.intruder_null import NULL_DRAWS, random_alignment_sample


def _orthogonal(m: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((m, m)))
    return q * np.sign(np.diag(r))


def _direct_alignments(m: int, p: int, draws: int, seed: int) -> np.ndarray:
    """max |cos| of uniform unit vectors in R^m with p orthonormal vectors of a random basis,
    drawn the plain way (a full m-vector and an explicit basis), independent of the module."""
    rng = np.random.default_rng(seed)
    basis = _orthogonal(m, rng)[:, :p]
    u = rng.standard_normal((draws, m))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return np.abs(u @ basis).max(axis=1)


# --------------------------------------------------------------------------- the null


@pytest.mark.parametrize(("m", "p", "eps"), [(64, 64, 0.3), (96, 32, 0.25), (40, 40, 0.35)])
def test_random_probability_matches_a_direct_simulation(m: int, p: int, eps: float) -> None:
    draws = 4000
    direct = float((_direct_alignments(m, p, draws, seed=7) < eps).mean())
    q = random_intruder_probability(m, p, eps)
    se = np.sqrt(q * (1 - q) * (1 / draws + 1 / NULL_DRAWS))
    assert 0.05 < q < 0.95  # a threshold where the null is informative
    assert abs(q - direct) < 4 * se
    assert expected_random_intruders(m, p, 10, eps) == pytest.approx(10 * q)


def test_one_reference_vector_is_exact_beta() -> None:
    # |<u, v>|^2 ~ Beta(1/2, (m - 1)/2); checked against a plain simulation
    m, eps = 50, 0.2
    q = random_intruder_probability(m, 1, eps)
    direct = float((_direct_alignments(m, 1, 20000, seed=3) < eps).mean())
    assert abs(q - direct) < 4 * np.sqrt(q * (1 - q) / 20000)
    assert random_intruder_probability(m, 1, 1.0) == pytest.approx(1.0)


def test_exact_edges_and_checks() -> None:
    m = 64
    # max over a full basis is at least 1/sqrt(m): no random direction is an intruder below it
    assert random_intruder_probability(m, m, 1 / np.sqrt(m)) == 0.0
    assert random_intruder_probability(1, 1, 0.5) == 0.0
    sample = random_alignment_sample(m, m)
    assert sample.shape == (NULL_DRAWS,) and (np.diff(sample) >= 0).all()
    assert sample.min() >= 1 / np.sqrt(m) - 1e-12 and sample.max() <= 1
    assert random_alignment_sample(m, m) is sample  # cached: one estimate per (m, p)
    with pytest.raises(InputError, match="p <= m"):
        random_intruder_probability(10, 11, 0.5)
    with pytest.raises(InputError, match="epsilon"):
        random_intruder_probability(10, 10, 0.0)


@pytest.mark.slow
def test_large_widths_saturate_at_the_default_threshold() -> None:
    # The numbers: a random direction in 4096 dimensions has max |cos| about 0.06
    # against a basis, so at epsilon 0.5 every one counts as an intruder.
    sample = random_alignment_sample(4096, 4096)
    assert 0.05 < float(np.median(sample)) < 0.07
    assert random_intruder_probability(4096, 4096, 0.5) == 1.0
    assert expected_random_intruders(4096, 4096, 10, 0.5) == 10.0


# --------------------------------------------------------------------------- planted updates


def _planted(m: int = 32, q: int = 8, sigmas=(40.0, 35.0, 30.0), seed: int = 0):
    """W with distinct singular values 10 * 2^(-i/4) on top and a nearly flat bottom block of
    q values around 1; ΔW = sum_l sigma_l a_l b_l^T with a_l = U0[:, -q:] h_l and
    b_l = V0[:, -q:] h_l for Hadamard rows h_l (entries ±1/sqrt(q)): len(sigmas) rank-1 terms
    orthogonal to W's top m - q singular vectors. Each a_l has |cos| = 1/sqrt(q) with the q
    bottom singular vectors of W and 0 with the others, so it is an intruder for any
    epsilon > 1/sqrt(q); its singular value in W' is an eigenvalue of the q x q block
    diag(bottom) + sum sigma_l h_l h_l^T (W' = U0 blockdiag(S_top, block) V0^T)."""
    rng = np.random.default_rng(seed)
    u0, v0 = _orthogonal(m, rng), _orthogonal(m, rng)
    top = 10 * 2.0 ** (-np.arange(m - q) / 4)
    bottom = 1.0 + 0.001 * np.arange(q)
    w = u0 @ np.diag(np.concatenate([top, bottom])) @ v0.T
    h = hadamard(q)[1 : 1 + len(sigmas)] / np.sqrt(q)
    delta = sum(
        s * np.outer(u0[:, -q:] @ hl, v0[:, -q:] @ hl) for s, hl in zip(sigmas, h, strict=True)
    )
    block = np.diag(bottom) + sum(s * np.outer(hl, hl) for s, hl in zip(sigmas, h, strict=True))
    return w, delta, top, np.linalg.eigvalsh(block)[::-1]


def _hand_share(top: np.ndarray, block_values: np.ndarray, n_planted: int, k: int) -> float:
    planted = block_values[:n_planted] ** 2
    rest = top[: k - n_planted] ** 2  # the next top-k directions are W's own, unchanged
    return float(planted.sum() / (planted.sum() + rest.sum()))


def test_planted_update_gives_its_intruders_and_energy_share() -> None:
    w, delta, top, block_values = _planted()
    alignment = intruder_alignment(w, w + delta, k=10)
    np.testing.assert_allclose(alignment[:3], 1 / np.sqrt(8), atol=1e-3)  # the planted ones
    np.testing.assert_allclose(alignment[3:], 1.0, atol=1e-6)  # W's own directions
    stats = module_drift(w, delta, k=10, epsilon=0.5)
    assert stats["intruder_count"] == 3
    assert stats["intruder_energy"] == pytest.approx(_hand_share(top, block_values, 3, 10), 1e-9)
    assert 0.9 < stats["intruder_energy"] < 1  # the planted directions carry most energy
    assert stats["intruder_null"] == pytest.approx(expected_random_intruders(32, 32, 10, 0.5))
    # below 1/sqrt(8) the planted directions are no longer intruders: count and share 0
    low = module_drift(w, delta, k=10, epsilon=0.3)
    assert low["intruder_count"] == 0 and low["intruder_energy"] == 0.0
    # only the top 2 examined: both planted, all of that energy is intruder energy
    two = module_drift(w, delta, k=2, epsilon=0.5)
    assert two["intruder_count"] == 2 and two["intruder_energy"] == pytest.approx(1.0)
    assert two["intruder_null"] == pytest.approx(expected_random_intruders(32, 32, 2, 0.5))
    frozen = module_drift(w, np.zeros_like(w))
    assert frozen["intruder_count"] == 0 and frozen["intruder_energy"] == 0.0


def test_random_top_directions_give_the_null_count() -> None:
    """W' whose top-k directions are random (a large random rank-10 update of a small W): the
    intruder count over many modules is the null expectation within binomial error."""
    m, k, eps, modules = 64, 10, 0.3, 30
    rng = np.random.default_rng(11)
    counts, nulls = 0, []
    for _ in range(modules):
        w = rng.standard_normal((m, m)) / np.sqrt(m)  # spectral norm about 2
        g, h = rng.standard_normal((m, k)), rng.standard_normal((m, k))
        delta = g @ np.diag(np.linspace(400, 200, k)) @ h.T / m
        stats = module_drift(w, delta, k=k, epsilon=eps)
        counts += stats["intruder_count"]
        nulls.append(stats["intruder_null"])
    expected = float(np.sum(nulls))
    q = random_intruder_probability(m, m, eps)
    assert expected == pytest.approx(modules * k * q)
    sd = np.sqrt(modules * k * q * (1 - q))
    assert abs(counts - expected) < 4 * sd, (counts, expected, sd)


# --------------------------------------------------------------------------- table, CLI, figure


@pytest.fixture(scope="module")
def planted_models(tmp_path_factory):
    """A tiny BERT base and a 'full fine-tune' that changes only layer 0's query by the
    planted update (3 intruders); every other module is unchanged."""
    root = tmp_path_factory.mktemp("planted")
    config = tiny_bert_config(vocab_size=50, layers=2, positions=32)
    torch.manual_seed(0)
    base = BertModel(config)
    w, delta, top, block_values = _planted()
    query = base.encoder.layer[0].attention.self.query
    with torch.no_grad():
        query.weight.copy_(torch.from_numpy(w))
    base.save_pretrained(root / "base")
    with torch.no_grad():
        query.weight.add_(torch.from_numpy(delta).float())
    base.save_pretrained(root / "full")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny float64 SVDs: intra-op threads only cost here
    try:
        table = weight_drift(root / "base", {"ft": root / "full"}, progress=False)
    finally:
        torch.set_num_threads(threads)
    return table, _hand_share(top, block_values, 3, 10)


def test_weights_table_carries_energy_share_and_null(planted_models) -> None:
    table, share = planted_models
    row = table[(table.layer == 0) & (table.module == "attention.self.query")].iloc[0]
    assert row.intruder_count == 3
    assert row.intruder_energy == pytest.approx(share, rel=1e-5)  # float32 checkpoints
    rest = table.drop(index=row.name)
    assert (rest.intruder_count == 0).all() and (rest.intruder_energy == 0).all()
    for r in table.itertuples():
        out_f, in_f = map(int, r.shape.split("x"))
        assert r.intruder_null == pytest.approx(
            expected_random_intruders(out_f, min(out_f, in_f), r.k, 0.5)
        )
        assert 0 <= r.intruder_null <= r.k


def test_cli_summary_names_k_epsilon_and_the_reference(planted_models) -> None:
    table, _ = planted_models
    with views.console.capture() as captured:
        views.show_weights(table, [])
    text = " ".join(captured.get().split())
    assert "top k = 10 singular vectors of W' per module, epsilon = 0.5" in text
    slots = int(table.k.sum())
    assert f"3 of {slots}" in text
    assert f"{table.intruder_null.sum():.1f}" in text
    assert f"{table.intruder_energy.mean():.2f}" in text
    assert "random dirs" in text and "intruder energy" in text


def test_figure_states_epsilon_and_draws_the_reference(planted_models) -> None:
    table, share = planted_models
    fig = intruder_counts(table, modules=["attention.self.query"])
    count_ax, share_ax = fig.axes
    assert "ε = 0.5" in count_ax.get_ylabel() and "k = 10" in count_ax.get_ylabel()
    heights = sorted(p.get_height() for p in count_ax.patches)
    assert heights == [0, 3]  # layer 1 unchanged, layer 0 planted
    (null_lines,) = count_ax.collections
    expected = expected_random_intruders(32, 32, 10, 0.5)
    np.testing.assert_allclose(
        [seg[0][1] for seg in null_lines.get_segments()], [expected, expected]
    )
    shares = sorted(p.get_height() for p in share_ax.patches)
    np.testing.assert_allclose(shares, [0, share], rtol=1e-5)
    assert "random directions" in [t.get_text() for t in fig.legends[0].get_texts()]
