"""compare() on synthetic run directories with a planted drift profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from repdrift.analysis.compare_runs import compare
from repdrift.errors import InputError
from repdrift.store.results import load_results
from repdrift.store.writer import write_run

N, D, L = 60, 8, 4
IDS = [f"s{i}" for i in range(N)]


def _base(rng):
    return {f"layer_{i}": rng.normal(size=(N, D)) for i in range(L)}


def _variant(base, rng, scales):
    """Layer i perturbed by noise of scale scales[i]: drift grows with the scale."""
    return {
        k: v + s * rng.normal(size=v.shape) for (k, v), s in zip(base.items(), scales, strict=True)
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One task: a base run, LoRA (little drift) and full fine-tuning (more drift), 3 seeds each."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    base = _base(rng)
    write_run(root / "base", base, task="toy", kind="base", sample_ids=IDS)
    paths = [root / "base"]
    profile = np.array([0.1, 0.3, 0.6, 1.0])  # later layers drift more
    for method, factor in (("lora", 0.5), ("full", 1.0)):
        for seed in (1, 2, 3):
            p = root / f"{method}{seed}"
            write_run(
                p,
                _variant(base, np.random.default_rng(seed * 10 + len(method)), factor * profile),
                task="toy",
                kind=method,
                sample_ids=IDS,
                model={"training": {"seed": seed}},
            )
            paths.append(p)
    return root, paths


def test_compare_recovers_the_planted_profile_and_ordering(study, tmp_path):
    _, paths = study
    res = compare(paths, out=tmp_path / "res", n_boot=200, n_perm=99, progress=False)
    drift = res.drift
    assert set(drift["metric"]) == {"cka_debiased", "cka_linear", "cosine", "procrustes"}
    assert len(drift) == 6 * L * 4
    for metric in ("cka_debiased", "cka_linear", "cosine", "procrustes"):
        for method in ("lora", "full"):
            part = drift[(drift.metric == metric) & (drift.method == method)]
            per_layer = part.groupby("layer_index")["drift"].mean().to_numpy()
            assert np.all(np.diff(per_layer) > 0), (metric, method, per_layer)
    # Intervals bracket the estimate and the permutation test sees the shared signal.
    cka = drift[drift.metric == "cka_debiased"]
    assert (cka.ci_low <= cka.drift).all() and (cka.drift <= cka.ci_high).all()
    assert (cka.p_perm <= 0.01).all()
    assert set(drift.seed.dropna()) == {1, 2, 3}

    comp = res.comparison
    top = comp[(comp.metric == "cka_debiased") & (comp.layer == "layer_3")].iloc[0]
    assert top.drift_diff < 0 and top.p < 0.01 and top.test == "welch" and top.n_seeds_a == 3
    assert top.ci_low < top.drift_diff < top.ci_high < 0
    assert {"p_holm", "p_bh", "effect_size", "rel_diff"} <= set(comp.columns)
    assert (comp.p_holm >= comp.p).all()

    floor = res.noise_floor
    assert set(floor.method) == {"lora", "full"} and (floor.n_pairs == 3).all()

    cross = res.cross_layer
    assert len(cross) == 6 * L * L
    # Each base layer is most similar to the same fine-tuned layer (independent layers).
    one = cross[cross.run == "lora1"].pivot(
        index="base_layer", columns="layer", values="similarity"
    )
    assert all(one.loc[f"layer_{i}"].idxmax() == f"layer_{i}" for i in range(L))

    loaded = load_results(tmp_path / "res")
    pd.testing.assert_frame_equal(loaded.drift, drift)
    assert loaded.summary["settings"]["n_boot"] == 200
    assert (tmp_path / "res" / "drift.csv").is_file()


def test_identical_runs_have_similarity_one_and_no_claimed_difference(tmp_path):
    rng = np.random.default_rng(3)
    base = _base(rng)
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=IDS)
    paths = [tmp_path / "base"]
    for method in ("lora", "full"):
        for seed in (1, 2):
            p = tmp_path / f"{method}{seed}"
            write_run(
                p, base, task="toy", kind=method, sample_ids=IDS, model={"training": {"seed": seed}}
            )
            paths.append(p)
    res = compare(paths, n_boot=50, n_perm=20, progress=False, metrics=["cka_debiased", "cosine"])
    np.testing.assert_allclose(res.drift["similarity"], 1.0, atol=1e-12)
    np.testing.assert_allclose(res.comparison["drift_diff"], 0.0, atol=1e-12)
    assert (res.comparison["p"] >= 0.5).all()


def test_mismatched_runs_are_refused(tmp_path):
    rng = np.random.default_rng(4)
    base = _base(rng)
    write_run(tmp_path / "base", base, task="toy", kind="base", sample_ids=IDS)
    write_run(tmp_path / "shuffled", base, task="toy", kind="full", sample_ids=IDS[::-1])
    with pytest.raises(InputError, match="different order"):
        compare([tmp_path / "base", tmp_path / "shuffled"], progress=False)
    write_run(
        tmp_path / "other", base, task="toy", kind="full", sample_ids=[f"x{i}" for i in range(N)]
    )
    with pytest.raises(InputError, match="different sample ids"):
        compare([tmp_path / "base", tmp_path / "other"], progress=False)
    write_run(
        tmp_path / "fewer", {"layer_0": base["layer_0"]}, task="toy", kind="full", sample_ids=IDS
    )
    with pytest.raises(InputError, match="layers"):
        compare([tmp_path / "base", tmp_path / "fewer"], progress=False)
    # Same ids, other texts: a re-generated dataset must not be paired silently.
    write_run(tmp_path / "edited", base, task="toy", kind="full", sample_ids=IDS)
    manifest = tmp_path / "edited" / "step_000000" / "metadata.json"
    raw = json.loads(manifest.read_text())
    raw["data"]["samples_sha256"] = "0" * 64
    manifest.write_text(json.dumps(raw))
    base_manifest = tmp_path / "base" / "step_000000" / "metadata.json"
    raw = json.loads(base_manifest.read_text())
    raw["data"]["samples_sha256"] = "1" * 64
    base_manifest.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="different texts"):
        compare([tmp_path / "base", tmp_path / "edited"], progress=False, verify=False)
    with pytest.raises(InputError, match="exactly one base run"):
        compare([tmp_path / "fewer"], progress=False)
    with pytest.raises(InputError, match="cka_debaised"):
        compare([tmp_path / "base"], metrics=["cka_debaised"], progress=False)
