"""compare() on synthetic run directories with a planted drift profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from repdrift import metrics
from repdrift.analysis import stats
from repdrift.analysis.compare_runs import compare
from repdrift.analysis.intervals import half_sample_interval, metric_drift_range
from repdrift.errors import InputError
from repdrift.metrics import kernels
from repdrift.store.reader import load_run
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
    # Every layer is the base layer bit for bit: structural zeros, reported but never tested.
    assert res.drift["unchanged"].all()
    assert (res.comparison["test"] == "structural zero").all()
    assert res.comparison[["p", "p_holm", "rel_diff", "effect_size"]].isna().all().all()
    assert res.task_ranking["structural_zero"].all()


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


@pytest.fixture(scope="module")
def rbf_study(tmp_path_factory):
    """A base run and two full fine-tuning seeds (noise floor), 2 layers."""
    root = tmp_path_factory.mktemp("rbf")
    rng = np.random.default_rng(21)
    base = {f"layer_{i}": rng.normal(size=(N, D)) for i in range(2)}
    write_run(root / "base", base, task="toy", kind="base", sample_ids=IDS)
    paths = [root / "base"]
    for seed in (1, 2):
        p = root / f"full{seed}"
        write_run(
            p, _variant(base, np.random.default_rng(seed), [0.4, 0.8]), task="toy", kind="full",
            sample_ids=IDS, model={"training": {"seed": seed}},
        )  # fmt: skip
        paths.append(p)
    return paths


def _rbf_subset_cka(X, Y, r, sigma):
    """Biased CKA of rows r with the bandwidth of all samples (the kernel is fixed, as in the
    half-sample replicates), written out with an explicit centring matrix."""
    K, L = kernels.gram_rbf(X, sigma)[np.ix_(r, r)], kernels.gram_rbf(Y, sigma)[np.ix_(r, r)]
    H = np.eye(len(r)) - 1 / len(r)
    kl, kk, ll = (np.trace(A @ H @ B @ H) for A, B in ((K, L), (K, K), (L, L)))
    return kl / np.sqrt(kk * ll)


@pytest.mark.parametrize("sigma", [None, 0.5])
def test_cka_rbf_with_sigma_reproduces_the_registry_on_the_stored_layers(rbf_study, sigma):
    """compare(metric_params=...) gives metrics.compute(..., sigma=...) to 1e-10 for the values,
    the permutation nulls, the noise floor and the cross-layer matrix; the intervals are those
    of the half-sample replicates computed directly."""
    params = {} if sigma is None else {"sigma": sigma}
    n_boot, n_perm, seed = 30, 25, 4
    res = compare(
        rbf_study, metrics=["cka_rbf"], metric_params={"cka_rbf": params} if params else None,
        cross_layer_metric="cka_rbf", n_boot=n_boot, n_perm=n_perm, seed=seed, progress=False,
    )  # fmt: skip
    assert res.summary["settings"]["metric_params"] == {"cka_rbf": {"sigma": sigma or 1.0}}
    runs = {p.name: load_run(p) for p in rbf_study}
    base = runs["base"]
    rng = np.random.default_rng(seed)  # the draws compare() makes for the task, in order
    idx, perms = stats.half_samples(N, n_boot, rng), stats.permutations(N, n_perm, rng)
    drift = res.drift
    assert len(drift) == 2 * 2
    for row in drift.itertuples():
        X, Y = base.layer(row.layer), runs[row.run].layer(row.layer, row.step)
        want = metrics.compute("cka_rbf", X, Y, **params)
        assert abs(row.similarity - want) <= 1e-10
        if sigma is not None:  # the parameter reached the computation
            assert abs(want - metrics.compute("cka_rbf", X, Y)) > 1e-4
        null = np.array([metrics.compute("cka_rbf", X, Y[p], **params) for p in perms])
        assert abs(row.null_mean - null.mean()) <= 1e-10
        assert row.p_perm == stats.permutation_pvalue(want, null)
        X64, Y64 = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        boot = np.array([_rbf_subset_cka(X64, Y64, r, sigma or 1.0) for r in idx])
        low, high = half_sample_interval(1 - want, 1 - boot, 0.95, metric_drift_range("cka_rbf"))
        assert abs(row.ci_low - low) <= 1e-10 and abs(row.ci_high - high) <= 1e-10
    for row in res.cross_layer.itertuples():
        X, Y = base.layer(row.base_layer), runs[row.run].layer(row.layer, row.step)
        assert abs(row.similarity - metrics.compute("cka_rbf", X, Y, **params)) <= 1e-10
    for row in res.noise_floor.itertuples():
        a, b = (runs[f"full{s}"].layer(row.layer, 0) for s in (1, 2))
        assert abs(row.similarity - metrics.compute("cka_rbf", a, b, **params)) <= 1e-10


def test_metric_params_are_checked(rbf_study):
    with pytest.raises(InputError, match="sigmma"):
        compare(rbf_study, metrics=["cka_rbf"], metric_params={"cka_rbf": {"sigmma": 2}},
                progress=False)  # fmt: skip
    with pytest.raises(InputError, match="not among the metrics"):
        compare(rbf_study, metrics=["cka_linear"], metric_params={"cka_rbf": {"sigma": 2}},
                progress=False)  # fmt: skip


SLOW_METRICS = ("procrustes", "rsa", "mutual_knn", "svcca", "pwcca")


def test_fast_metrics_are_resampled_by_default_and_slow_ones_when_named(study):
    """By default only metrics with an exact fast path get intervals and nulls (the others
    would be recomputed per replicate: minutes per layer at the study's shape); named in
    ``resampled``, the others go through the registry's generic path."""
    _, paths = study
    default = compare(paths[:3], metrics=["cka_linear", *SLOW_METRICS], n_boot=20, n_perm=10,
                      progress=False)  # fmt: skip
    assert tuple(default.summary["settings"]["resampled"]) == ("cka_linear",)
    slow_rows = default.drift[default.drift.metric.isin(SLOW_METRICS)]
    assert slow_rows[["ci_low", "ci_high", "p_perm"]].isna().all().all()
    assert slow_rows.similarity.notna().all()

    res = compare(paths[:3], metrics=SLOW_METRICS, resampled=SLOW_METRICS, n_boot=20, n_perm=10,
                  progress=False)  # fmt: skip
    assert set(res.summary["settings"]["resampled"]) == set(SLOW_METRICS)
    for metric in SLOW_METRICS:
        rows = res.drift[res.drift.metric == metric]
        assert rows[["ci_low", "ci_high", "p_perm"]].notna().all().all(), metric
    # A half-sample replicate is the metric on those rows: its interval is a basic interval.
    assert (res.drift["ci_low"] <= res.drift["ci_high"]).all()
    assert res.drift["p_perm"].min() >= 1 / 11  # (1 + #null >= observed) / (1 + n_perm)


def test_compare_on_a_torch_device_equals_numpy(study, monkeypatch):
    """device= moves the Gram / GEMM work to torch float64; the results stay the same.

    Without a GPU here, the torch path is exercised on the CPU by routing "auto" to it.
    """
    import repdrift.analysis.settings as analysis_settings
    from repdrift.common.devices import metrics_device

    _, paths = study
    settings = {"metrics": ["cka_debiased", "cka_linear", "cosine"], "n_boot": 20, "n_perm": 20,
                "progress": False}  # fmt: skip
    assert metrics_device("auto") is None and metrics_device("cpu") is None  # no GPU here
    with pytest.raises(InputError, match="CUDA is not available"):
        metrics_device("cuda")
    plain = compare(paths, device="cpu", **settings)
    assert plain.summary["settings"]["device"] is None
    monkeypatch.setattr(analysis_settings, "metrics_device", lambda device: "cpu")
    on_torch = compare(paths, device="auto", **settings)
    assert on_torch.summary["settings"]["device"] == "cpu"
    cols = ["similarity", "ci_low", "ci_high", "null_mean"]
    np.testing.assert_allclose(on_torch.drift[cols], plain.drift[cols], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(on_torch.drift["p_perm"], plain.drift["p_perm"])


def test_settings_object_and_options_build_one_analysis_settings(study) -> None:
    """compare(settings=...) takes the settings whole; options given beside it replace its
    fields (None as None); an unknown or bad option is named before any run is read."""
    from repdrift.analysis.settings import AnalysisSettings

    _, paths = study
    settings = AnalysisSettings(metrics=("cka_linear", "cosine"), n_boot=10, n_perm=10, seed=3)
    res = compare(paths, settings=settings, n_perm=0, device=None, progress=False)
    used = res.summary["settings"]
    assert list(used["metrics"]) == ["cka_linear", "cosine"] and used["seed"] == 3
    assert (used["n_boot"], used["n_perm"], used["device"]) == (10, 0, None)
    assert res.drift["p_perm"].isna().all() and res.drift["ci_low"].notna().any()
    same = compare(paths, metrics=["cka_linear", "cosine"], n_boot=10, n_perm=0, seed=3,
                   progress=False)  # fmt: skip
    pd.testing.assert_frame_equal(res.drift, same.drift)
    with pytest.raises(InputError, match=r"unknown analysis setting 'n_boots' \(did you mean"):
        compare(["/no/such/run"], n_boots=10)
    with pytest.raises(InputError, match=r"invalid analysis setting level=1.5"):
        compare(["/no/such/run"], settings=settings, level=1.5)
