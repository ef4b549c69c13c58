"""Token-level compare on real files: MiniLM and a perturbed copy, extracted with repdrift."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModel, AutoTokenizer
from typer.testing import CliRunner

import repdrift
from _perturbed import perturb_blocks
from repdrift.analysis import tokens as token_analysis
from repdrift.analysis.intervals import metric_drift_range
from repdrift.cli.commands import app
from repdrift.errors import InputError
from repdrift.metrics.streaming_debiased import StreamingDebiasedCKA
from repdrift.metrics.token_blocks import BlockStatistics
from repdrift.report.html import write_report
from repdrift.report.token_tables import token_section
from repdrift.store.results import load_results
from repdrift.store.token_ids import TOKEN_IDS_FILE, read_token_ids

N_SAMPLES = 24


def hsic_terms(X: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """Plain one-shot (debiased, linear) CKA on explicit Gram matrices (Song et al. 2012)."""
    n = X.shape[0]
    K, L = X @ X.T, Y @ Y.T

    def unbiased(A: np.ndarray, B: np.ndarray) -> float:
        A, B = A.copy(), B.copy()
        np.fill_diagonal(A, 0)
        np.fill_diagonal(B, 0)
        one = np.ones(n)
        return float(
            np.trace(A @ B) + (one @ A @ one) * (one @ B @ one) / ((n - 1) * (n - 2))
            - 2 * (one @ A @ B @ one) / (n - 2)
        )  # fmt: skip

    H = np.eye(n) - 1 / n
    Kc, Lc = H @ K @ H, H @ L @ H
    linear = np.sum(Kc * Lc) / np.sqrt(np.sum(Kc * Kc) * np.sum(Lc * Lc))
    debiased = unbiased(K, L) / np.sqrt(unbiased(K, K) * unbiased(L, L))
    return float(debiased), float(linear)


def test_block_statistics_equal_merged_blocks_and_one_shot():
    rng = np.random.default_rng(3)
    sizes = rng.integers(2, 25, 12)
    X = [rng.normal(size=(s, 6)) * 3 + 40 for s in sizes]
    Y = [x @ rng.normal(size=(6, 4)) + rng.normal(size=(len(x), 4)) - 7 for x in X]
    blocks = [StreamingDebiasedCKA().update(x, y) for x, y in zip(X, Y, strict=True)]
    stats = BlockStatistics(blocks)
    W = (rng.random((8, 12)) < 0.5).astype(float)
    W[0] = 1
    W[1, :] = 0
    W[1, :6] = 1
    deb, lin = stats.cka(W)
    for r in range(len(W)):
        chosen = np.flatnonzero(W[r])
        Xs = np.concatenate([X[i] for i in chosen])
        Ys = np.concatenate([Y[i] for i in chosen])
        want_deb, want_lin = hsic_terms(Xs - Xs.mean(0), Ys - Ys.mean(0))
        assert deb[r] == pytest.approx(want_deb, abs=1e-10)
        assert lin[r] == pytest.approx(want_lin, abs=1e-10)
        merged = StreamingDebiasedCKA()
        for i in chosen:
            merged.merge(blocks[i])
        assert deb[r] == pytest.approx(merged.compute(), abs=1e-10)


@pytest.fixture(scope="module")
def study(minilm_path, tmp_path_factory) -> dict:
    """Token-level runs of MiniLM and of a copy with its last two blocks perturbed, compared."""
    root = tmp_path_factory.mktemp("tokens")
    finetuned = root / "model_full"
    model = AutoModel.from_pretrained(minilm_path)
    perturb_blocks(model.encoder.layer[-2:], 0.05)
    model.save_pretrained(finetuned)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(finetuned)
    settings = {
        "task": "demo-pair", "samples": N_SAMPLES, "device": "cpu", "progress": False,
        "pooling": "tokens",
    }  # fmt: skip
    base = repdrift.extract(str(minilm_path), out=root / "demo-pair_base", **settings)
    full = repdrift.extract(
        str(finetuned), base=str(minilm_path), out=root / "demo-pair_full_seed1", **settings
    )
    results = repdrift.compare(
        [base, full], out=root / "results", n_boot=40, n_perm=6, token_null=6, progress=False
    )
    return {"root": root, "base": Path(base), "full": Path(full), "results": results,
            "minilm": minilm_path, "settings": settings}  # fmt: skip


def test_token_ids_are_stored_listed_and_verified(study):
    run = repdrift.load_run(study["base"])
    step_dir = run.layer_path(run.layers[0]).parent
    assert (step_dir / TOKEN_IDS_FILE).is_file()
    assert TOKEN_IDS_FILE in json.loads((step_dir / "metadata.json").read_text())["files"]
    tids = read_token_ids(run)
    _, offsets = run.tokens(run.layers[0])
    assert np.array_equal(tids.offsets, offsets)
    tok = AutoTokenizer.from_pretrained(study["minilm"])
    first = tids.sample(0)
    assert first[0] == tok.cls_token_id and first[-1] == tok.sep_token_id
    assert (first == tok.sep_token_id).sum() == 2  # a pair: [CLS] a [SEP] b [SEP]


def test_token_cka_equals_one_shot_on_concatenated_tokens(study):
    table = study["results"].token_drift
    base, full = repdrift.load_run(study["base"]), repdrift.load_run(study["full"])
    assert set(table["metric"]) == {"cka_debiased", "cka_linear", "cosine"}
    assert (table["level"] == "tokens").all()
    for layer in base.layers:
        X, _ = base.tokens(layer)
        Y, _ = full.tokens(layer)
        X, Y = X.astype(np.float64), Y.astype(np.float64)
        want_deb, want_lin = hsic_terms(X - X.mean(0), Y - Y.mean(0))
        rows = table[table["layer"] == layer].set_index("metric")
        assert rows.loc["cka_debiased", "similarity"] == pytest.approx(want_deb, abs=1e-8)
        assert rows.loc["cka_linear", "similarity"] == pytest.approx(want_lin, abs=1e-8)
        cos = np.sum(X * Y, 1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(Y, axis=1))
        assert rows.loc["cosine", "similarity"] == pytest.approx(cos.mean(), abs=1e-10)
        assert rows.loc["cka_debiased", "n_tokens"] == len(X)
    moved = table[table["layer_index"] >= 4]
    assert (moved["drift"] > 1e-5).all()
    assert (table.loc[table["layer_index"] < 4, "drift"].abs() < 1e-12).all()


def test_intervals_and_null_present(study):
    table = study["results"].token_drift
    assert table[["ci_low", "ci_high", "p_perm", "null_mean"]].notna().all().all()
    assert (table["n_blocks"] == N_SAMPLES).all()
    # every sample takes part in the null, truncated to its length group's shortest
    assert ((table["null_shuffled"] > 0.8) & (table["null_shuffled"] <= 1)).all()
    assert (table["n_null"] == 6).all()
    # the mean cosine is unbiased on half-samples of blocks, so its basic interval holds the
    # estimate; the CKAs' half-samples of blocks are shifted (linear CKA's bias; token-level
    # CKA over blocks of unequal token counts is no U-statistic in the blocks: its halves
    # drift ~10% less at layer 5 here), the basic interval corrects for that shift, so it may
    # exclude the estimate. Every interval stays in the range of drift.
    tol = 1e-12
    for row in table.itertuples():
        r = metric_drift_range(row.metric)
        assert r.target_low <= row.ci_low <= row.ci_high <= r.target_high, row
    for metric in ("cosine",):
        part = table[table["metric"] == metric]
        assert (part["ci_low"] <= part["drift"] + tol).all(), metric
        assert (part["drift"] <= part["ci_high"] + tol).all(), metric
    # a moved layer is far from the shuffled pairing
    deep = table[(table["layer_index"] == 5) & (table["metric"] == "cka_debiased")].iloc[0]
    assert deep["similarity"] > deep["null_mean"]
    assert deep["p_perm"] == pytest.approx(1 / 7)


def test_half_sample_replicates_equal_one_shot_on_those_samples(study):
    base, full = repdrift.load_run(study["base"]), repdrift.load_run(study["full"])
    X, offsets = base.tokens("layer_5", mmap=True)
    Y, _ = full.tokens("layer_5", mmap=True)
    block = token_analysis._blocks(N_SAMPLES, 8, np.random.default_rng(1))
    W = np.zeros((3, 8))
    W[0, [0, 2, 5, 7]] = 1
    W[1, :4] = 1
    W[2, [1, 3, 4, 6]] = 1
    res = token_analysis._measure(X, Y, offsets, block, W, None)
    for r in range(3):
        samples = np.flatnonzero(np.isin(block, np.flatnonzero(W[r])))
        rows = token_analysis._rows_of(offsets, samples)
        Xs, Ys = np.asarray(X[rows], np.float64), np.asarray(Y[rows], np.float64)
        want_deb, want_lin = hsic_terms(Xs - Xs.mean(0), Ys - Ys.mean(0))
        assert res["boot"]["cka_debiased"][r] == pytest.approx(want_deb, abs=1e-8)
        assert res["boot"]["cka_linear"][r] == pytest.approx(want_lin, abs=1e-8)


def test_pooled_answer_beside_the_token_answer(study):
    results = study["results"]
    drift = results.drift.query("metric == 'cka_debiased'").sort_values("layer_index")
    assert len(drift) == 6
    base, full = repdrift.load_run(study["base"]), repdrift.load_run(study["full"])
    X, off = base.tokens("layer_5")
    Y, _ = full.tokens("layer_5")
    px = np.add.reduceat(X.astype(np.float64), off[:-1]) / np.diff(off)[:, None]
    py = np.add.reduceat(Y.astype(np.float64), off[:-1]) / np.diff(off)[:, None]
    want = repdrift.metrics.compute("cka_debiased", px, py)
    assert drift["similarity"].iloc[-1] == pytest.approx(want, abs=1e-10)
    assert results.summary["tasks"]["demo-pair"]["reference"]["pooling"] == "mean of tokens"


def test_which_tokens_moved_tables(study):
    results = study["results"]
    prof = results.token_profile
    kinds = set(prof.loc[prof["by"] == "type", "key"])
    assert kinds == {"special", "first text", "second text"}
    positions = prof[(prof["by"] == "position") & (prof["layer"] == "layer_5")]
    assert positions["position"].min() == 0
    assert positions["n_tokens"].sum() == results.token_drift["n_tokens"].iloc[0]
    samples = results.token_samples
    top = samples[samples["layer"] == "layer_5"].sort_values("rank")
    assert list(top["rank"]) == [1, 2, 3, 4, 5]
    assert top["drift"].is_monotonic_decreasing
    assert top["text"].str.startswith("[CLS]").all()
    assert top["top_tokens"].str.contains("@").all()


def test_results_round_trip_and_report_section(study):
    loaded = load_results(study["root"] / "results")
    assert len(loaded.token_drift) == len(study["results"].token_drift)
    assert not loaded.token_profile.empty and not loaded.token_samples.empty
    html = write_report(study["root"] / "results", study["root"] / "report.html").read_text()
    assert 'id="tokens"' in html and "Which tokens moved" in html
    assert 'id="fig-token_drift_demo-pair"' in html
    assert "most-moved samples" in html


def test_runs_with_different_token_ids_are_refused(study):
    other = repdrift.extract(
        str(study["minilm"]), out=study["root"] / "short" / "demo-pair_full_seed2",
        max_length=12, **study["settings"],
    )  # fmt: skip
    with pytest.raises(InputError, match="token"):
        repdrift.compare([study["base"], other], n_boot=0, n_perm=0, progress=False)


def test_blocks_and_null_size_are_options(study):
    results = repdrift.compare(
        [study["base"], study["full"]], n_boot=40, n_perm=50, token_blocks=8, token_null=3,
        metrics=["cka_debiased"], progress=False,
    )  # fmt: skip
    table = results.token_drift
    assert (table["n_blocks"] == 8).all()
    # 3 shuffles: the smallest attainable p-value is 1 / (1 + 3)
    assert table["p_perm"].min() >= 1 / 4 - 1e-12
    assert "min(8, n)" in results.summary["settings"]["token_interval"]
    assert "3 shuffles" in results.summary["settings"]["token_null"]
    assert "p >= 0.25 (its floor)" in results.summary["settings"]["token_null"]
    with pytest.raises(InputError, match="invalid analysis setting token_blocks=1: input should be greater than or equal to 2"):
        repdrift.compare([study["base"], study["full"]], token_blocks=1, progress=False)


def test_no_null_by_default_and_the_report_says_what_the_p_column_is(study):
    results = repdrift.compare(
        [study["base"], study["full"]], n_boot=20, metrics=["cka_debiased"], progress=False
    )
    table = results.token_drift
    assert table["p_perm"].isna().all() and (table["n_null"] == 0).all()
    described = results.summary["settings"]["token_null"]
    assert described.startswith("token level: no null drawn (token_null = 0, the default)")
    assert "no smaller than 1/(N + 1)" in described
    assert results.drift["p_perm"].notna().all()  # the pooled null is unchanged
    section = token_section(results, "cka_debiased")
    none = section["side_by_side"][0]
    assert "p (tokens)" not in none.columns
    assert "No token-level null was drawn (the default; --token-null N draws" in none.caption
    # the study's results drew 6 shuffles over 6 layers: its floor and Holm's, in words
    drawn = token_section(study["results"], "cka_debiased")["side_by_side"][0]
    assert "p (tokens)" in drawn.columns
    assert "Its floor is 1/(6 + 1) = 0.1429" in drawn.caption
    assert "after Holm over the 6 rows of this metric no adjusted p is below 0.8571" in (
        drawn.caption
    )


def test_progress_bar_counts_layers_pairs_and_null_passes(study, monkeypatch):
    bars = []

    @contextlib.contextmanager
    def recording_bar(total, *, enabled, description):
        bar = {"total": total, "enabled": enabled, "description": description, "done": 0}
        bars.append(bar)
        yield lambda k: bar.update(done=bar["done"] + k)

    monkeypatch.setattr(token_analysis, "progress_bar", recording_bar)
    repdrift.compare(
        [study["base"], study["full"]], n_boot=0, n_perm=4, token_null=4,
        metrics=["cka_debiased"], progress=True,
    )  # fmt: skip
    assert bars == [{
        "total": 6 * (1 + 4), "enabled": True, "done": 6 * (1 + 4),
        "description": "demo-pair: tokens, 1 pair(s) x 6 layers x (1 + 4 null passes)",
    }]  # fmt: skip


def test_compare_seconds_cover_the_token_tables(study, monkeypatch, tmp_path):
    spent = []
    tables = token_analysis.token_tables

    def slow_tables(*args, **kwargs):
        started = time.perf_counter()
        result = tables(*args, **kwargs)
        time.sleep(1.5)  # the token tables dominate, as on real token-level runs
        spent.append(time.perf_counter() - started)
        return result

    monkeypatch.setattr(token_analysis, "token_tables", slow_tables)
    out = tmp_path / "results"
    result = CliRunner().invoke(app, [
        "compare", str(study["base"]), str(study["full"]), "--out", str(out),
        "--n-boot", "20", "--n-perm", "3", "--token-null", "3", "--metric", "cka_debiased",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    seconds = json.loads((out / "results.json").read_text())["seconds"]
    assert seconds >= spent[0]
    assert f"({seconds} s)" in " ".join(result.stdout.split())
