"""The per-token drift figure (token_profile table) and its place in the figure catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repdrift.errors import InputError
from repdrift.plots.figures import catalog
from repdrift.plots.style import save_figure
from repdrift.plots.tokens import token_drift_profile
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
    assert len(fig.axes) == 2
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
    assert len(specs[0].draw().axes) == 2
