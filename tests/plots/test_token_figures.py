"""The per-token drift figure (token_profile table) and its place in the figure catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from _synthetic_tokens import profile_table as synthetic_profile
from _synthetic_tokens import sample_lengths
from repdrift.errors import InputError
from repdrift.plots.figures import catalog
from repdrift.plots.style import save_figure
from repdrift.plots.tokens import MIN_POSITION_SAMPLES, position_profile, token_drift_profile
from repdrift.store.results import Results


def profile_table() -> pd.DataFrame:
    rows = []
    for method in ("lora", "full"):
        for seed in (1, 2):
            run = f"t_{method}_seed{seed}"
            for layer in range(4):
                base = {"task": "t", "method": method, "seed": seed, "run": run, "step": 0,
                        "layer": f"layer_{layer}", "layer_index": layer}  # fmt: skip
                for p in range(20):
                    rows.append({**base, "by": "position", "key": str(p), "position": p,
                                 "drift": 0.01 * layer * (1 + p / 20), "drift_sd": 0.0,
                                 "n_tokens": 10})  # fmt: skip
                for k, kind in enumerate(("special", "first text", "second text")):
                    rows.append({**base, "by": "type", "key": kind, "position": -1,
                                 "drift": 0.01 * layer + 0.002 * k, "drift_sd": 0.0,
                                 "n_tokens": 30})  # fmt: skip
    return pd.DataFrame(rows)


def test_token_drift_figure_renders_to_png(tmp_path):
    fig = token_drift_profile(profile_table(), task="t")
    assert len(fig.axes) == 3  # by position, samples per position, by type
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # one per layer
    assert np.allclose(lines[-1].get_ydata()[0], 0.03)
    out = save_figure(fig, tmp_path / "token_drift.png", dpi=100)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_task_is_refused():
    with pytest.raises(InputError):
        token_drift_profile(profile_table(), task="t2")


def test_catalog_lists_the_token_figure_only_with_token_tables():
    empty = pd.DataFrame()
    results = Results(empty, empty, empty, empty, empty, empty, {"settings": {}})
    assert not [s for s in catalog(results) if s.kind == "token_drift_profile"]
    results.token_profile = profile_table()
    specs = [s for s in catalog(results) if s.kind == "token_drift_profile"]
    assert [s.name for s in specs] == ["token_drift_t"]
    assert "position" in specs[0].caption
    assert len(specs[0].draw().axes) == 3


def test_position_panel_counts_samples_draws_a_band_and_stops_where_samples_are_few(tmp_path):
    """Texts of different lengths: late positions rest on few samples. The figure shows how
    many samples reach each position, a 95 % interval over samples, and leaves out positions
    reached by fewer than MIN_POSITION_SAMPLES; the caption says so."""
    lengths = sample_lengths(120)
    table = synthetic_profile("reviews", {"reviews_lora_seed1": "lora"}, 3, lengths)
    fig = token_drift_profile(table, task="reviews")
    save_figure(fig, tmp_path / "token_drift.png", dpi=100)
    ax_pos = fig.axes[0]
    ax_count = next(ax for ax in fig.axes if ax.get_ylabel() == "samples")
    reach = np.array([(lengths > p).sum() for p in range(lengths.max())])
    first_few = int(np.argmax(reach < MIN_POSITION_SAMPLES))
    assert 0 < first_few < lengths.max() - 1  # the synthetic texts have a sparse tail
    for line in ax_pos.get_lines():
        assert line.get_xdata().max() == first_few - 1  # drawn up to the last well-fed position
    # The band: mean ± t(n − 1) · SD / √(n − 1) at position 0, where all 120 samples count.
    assert len(ax_pos.collections) == 3  # one band per layer
    prof = position_profile(table, task="reviews", method="lora")
    row = prof[(prof.layer_index == 2) & (prof.position == 0)].iloc[0]
    sd = table[(table.by == "position") & (table.layer_index == 2) & (table.position == 0)]
    half = stats.t.ppf(0.975, 119) * float(sd["drift_sd"].iloc[0]) / np.sqrt(119)
    assert row["n_samples"] == 120
    assert row["ci_high"] - row["drift"] == pytest.approx(half)
    # Counts per position: every position, the sparse ones too, and the minimum as a line.
    assert ax_count.get_xlim()[1] >= lengths.max() - 1
    assert [line.get_ydata()[0] for line in ax_count.get_lines()] == [MIN_POSITION_SAMPLES]
    results = Results(*[pd.DataFrame()] * 6, {"settings": {}}, token_profile=table)
    caption = next(s for s in catalog(results) if s.kind == "token_drift_profile").caption
    assert "band: 95% interval of the mean over samples" in caption
    assert "below: how many samples reach each position" in caption
    assert (
        f"positions reached by fewer than {MIN_POSITION_SAMPLES} samples (from position "
        f"{first_few} on) are not drawn"
    ) in caption
