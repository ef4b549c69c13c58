"""The study-level test (a Welch-type test of precision-weighted task differences, the exact
permutation within tasks beside it) and the seed planner: against plain computations, its
invariances, its error rate (equal and unequal spreads of tasks and of methods) and power
simulated at the study's design, and the planner's power against a direct simulation through
the answer itself."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.special import polygamma
from typer.testing import CliRunner

from _synthetic_results import build
from repdrift.analysis import seed_planner, study_test
from repdrift.analysis.answer import study_answer, task_answer
from repdrift.analysis.seed_planner import plan_from_seeds, plan_seeds, simulated_power
from repdrift.analysis.study_test import across_tasks, stratified_answer
from repdrift.cli import app


def _plain_p(groups) -> float:
    """Every relabeling of every task, the statistic written out (weights from the label-free
    variances, shrunk on the log scale by the share of their spread that is not noise)."""
    w = _plain_weights(groups)  # scale does not matter to the permutation

    def stat(labelled) -> float:
        return sum(wt * (np.mean(a) - np.mean(b)) for wt, (a, b) in zip(w, labelled, strict=True))

    observed = abs(stat(groups))
    per_task = []
    for a, b in groups:
        z = np.concatenate([a, b])
        splits = []
        for chosen in itertools.combinations(range(len(z)), len(a)):
            rest = [i for i in range(len(z)) if i not in chosen]
            splits.append((z[list(chosen)], z[rest]))
        per_task.append(splits)
    values = [abs(stat(combo)) for combo in itertools.product(*per_task)]
    return float(np.mean(np.array(values) >= observed - 1e-12))


def _groups(rng, k=3, n=(3, 3), effect=0.0, sds=None):
    sds = [0.05] * k if sds is None else sds
    return [(rng.normal(effect, s, n[0]), rng.normal(0.0, s, n[1])) for s in sds]


def _plain_weights(groups, delta: float = 0.0) -> np.ndarray:
    """Task weights from the label-free variances of ``a − delta`` and ``b``, shrunk on the log
    scale by the share of their spread that is not noise; normalised."""
    var = np.array([np.var(np.concatenate([a - delta, b]), ddof=1) for a, b in groups])
    noise = polygamma(1, (np.array([len(a) + len(b) - 1 for a, b in groups])) / 2).mean()
    logs = np.log(var)
    keep = max(0.0, 1 - noise / np.var(logs, ddof=1))
    shrunk = np.exp(logs.mean() + keep * (logs - logs.mean()))
    w = np.array(
        [1 / (s * (1 / len(a) + 1 / len(b))) for s, (a, b) in zip(shrunk, groups, strict=True)]
    )
    return w / w.sum()


def _plain_test(groups, delta: float) -> tuple[float, float, float]:
    """The weighted difference minus delta, Satterthwaite df and p of "a − b = delta"."""
    c = _plain_weights(groups, delta)
    d = np.array([a.mean() - b.mean() for a, b in groups]) - delta
    parts = [(ct**2 * np.var(x, ddof=1) / len(x), len(x) - 1) for ct, g in zip(c, groups,
             strict=True) for x in g]  # fmt: skip
    var = sum(v for v, _ in parts)
    df = var**2 / sum(v**2 / f for v, f in parts)
    return float(c @ d), df, float(2 * sps.t.sf(abs(c @ d) / math.sqrt(var), df))


def test_the_answer_and_its_permutation_equal_plain_computations():
    rng = np.random.default_rng(0)
    for sds in ([0.05, 0.05], [0.01, 0.1], [0.02, 0.05, 0.2]):
        groups = _groups(rng, k=len(sds), effect=-0.03, sds=sds)
        res = stratified_answer(groups)
        _, df, p = _plain_test(groups, 0.0)
        assert res.p == pytest.approx(p, rel=1e-12) and res.df == pytest.approx(df, rel=1e-12)
        # the estimate zeroes the weighted difference; the bounds are where p reaches 0.05
        assert abs(_plain_test(groups, res.estimate)[0]) < 1e-12
        assert _plain_test(groups, res.low)[2] == pytest.approx(0.05, abs=2e-4)
        assert _plain_test(groups, res.high)[2] == pytest.approx(0.05, abs=2e-4)
        assert res.low < res.estimate < res.high
        # the permutation beside it, every relabeling enumerated
        assert res.exact and res.n_relabelings == 20 ** len(sds)
        assert res.p_perm == pytest.approx(_plain_p(groups), abs=1e-12)
        assert res.p_floor == pytest.approx(2 / 20 ** len(sds))


def test_invariances_of_the_test_and_equivariance_of_the_estimate():
    rng = np.random.default_rng(1)
    groups = _groups(rng, k=3, effect=-0.04)
    res = stratified_answer(groups)
    # a task's baseline does not matter; neither does the unit of drift
    shifted = [(a + c, b + c) for (a, b), c in zip(groups, (0.3, -0.1, 2.0), strict=True)]
    scaled = [(3 * a, 3 * b) for a, b in groups]
    assert stratified_answer(shifted).p == pytest.approx(res.p, abs=1e-12)
    assert stratified_answer(scaled).p == pytest.approx(res.p, abs=1e-12)
    assert stratified_answer(scaled).estimate == pytest.approx(3 * res.estimate, rel=1e-9)
    # moving method a by 0.02 in every task moves the estimate and the interval by 0.02
    moved = stratified_answer([(a + 0.02, b) for a, b in groups])
    assert moved.estimate == pytest.approx(res.estimate + 0.02, abs=1e-9)
    assert moved.low == pytest.approx(res.low + 0.02, abs=1e-5)
    # swapping the methods flips the sign and keeps the p-value
    swapped = stratified_answer([(b, a) for a, b in groups])
    assert swapped.p == pytest.approx(res.p, abs=1e-12)
    assert swapped.estimate == pytest.approx(-res.estimate, abs=1e-9)
    # the estimate lies between the task differences; the interval brackets it
    diffs = [np.mean(a) - np.mean(b) for a, b in groups]
    assert min(diffs) <= res.estimate <= max(diffs) and res.low < res.estimate < res.high
    assert swapped.p_perm == pytest.approx(res.p_perm, abs=1e-12)


def test_seeds_too_few_for_the_permutation_say_so_beside_the_t_test():
    rng = np.random.default_rng(3)
    res = stratified_answer(_groups(rng, k=2, n=(2, 2), effect=-1.0))
    assert res.p_floor == pytest.approx(2 / 36) and res.p_perm >= res.p_floor
    assert res.p < res.p_floor  # the t-test goes lower: the sentence must say what it rests on


def test_monte_carlo_beyond_the_exact_limit():
    rng = np.random.default_rng(4)
    res = stratified_answer(_groups(rng, k=8))
    assert not res.exact and res.n_relabelings == study_test.N_DRAWS + 1
    assert res.p_floor == pytest.approx(1 / (study_test.N_DRAWS + 1))


def test_tasks_in_general_only_from_five_tasks():
    assert across_tasks([0.1, -0.2, 0.05, 0.3]) is None
    res = across_tasks([-0.05, -0.02, -0.08, -0.04, -0.01])
    assert res.df == 4 and res.high < 0 and res.p < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 4, 8])
@pytest.mark.parametrize("spread", ["equal", "10x tasks", "4x methods"])
def test_false_positive_rate_at_three_plus_three_seeds(k, spread, monkeypatch):
    """No difference in mean drift; 1000 studies of 3 + 3 seeds per task: the study-level test
    rejects at most at its level (binomial SE at 0.05: 0.007) with equal seed spreads, task
    spreads 10x apart, or one method's seeds spreading 4x less than the other's (where permuting
    the labels rejects 7 %). The random-effects pooling it replaced rejected 0.078 at 4 tasks,
    0.085-0.107 at 8."""
    monkeypatch.setattr(study_test, "MAX_EXACT_STUDY", 1)  # the permutation is not tested here
    monkeypatch.setattr(study_test, "N_DRAWS", 9)
    rng = np.random.default_rng(10 + k)
    sds = list(np.geomspace(0.01, 0.1, k)) if spread == "10x tasks" else [0.05] * k
    ratio = 4.0 if spread == "4x methods" else 1.0
    p = np.array([
        stratified_answer(
            [(rng.normal(0, s / ratio, 3), rng.normal(0, s, 3)) for s in sds], rng=rng,
            interval=False,
        ).p
        for _ in range(1000)
    ])  # fmt: skip
    assert np.mean(p <= 0.05) <= 0.05 + 2.5 * 0.007
    assert np.mean(p <= 0.01) <= 0.01 + 2.5 * 0.0032


@pytest.mark.slow
def test_the_permutation_beside_it_is_exact_when_the_methods_spread_alike():
    rng = np.random.default_rng(12)
    sds = list(np.geomspace(0.01, 0.1, 2))
    p = np.array([stratified_answer(_groups(rng, k=2, sds=sds), rng=rng, interval=False).p_perm
                  for _ in range(1000)])  # fmt: skip
    assert np.mean(p <= 0.05) <= 0.05 + 2.5 * 0.007


@pytest.mark.slow
@pytest.mark.parametrize("spread", ["equal", "4x methods"])
def test_the_interval_covers_the_common_difference(spread, monkeypatch):
    """A difference of −0.05 in each of 4 tasks, 3 + 3 seeds: the inverted interval covers it
    about 95 % of the time (weights at δ = 0 instead: 0.89-0.92)."""
    monkeypatch.setattr(study_test, "MAX_EXACT_STUDY", 1)
    monkeypatch.setattr(study_test, "N_DRAWS", 9)
    rng = np.random.default_rng(30)
    ratio = 4.0 if spread == "4x methods" else 1.0
    covered = [
        (r := stratified_answer(
            [(rng.normal(-0.05, 0.05 / ratio, 3), rng.normal(0, 0.05, 3)) for _ in range(4)],
            rng=rng,
        )).low <= -0.05 <= r.high
        for _ in range(500)
    ]  # fmt: skip
    assert abs(np.mean(covered) - 0.95) <= 2.5 * 0.0098


@pytest.mark.slow
def test_power_at_the_study_design(monkeypatch):
    """An effect of −0.05 with seed sd 0.05 in each of 4 tasks, 3 + 3 seeds: rejected in at
    least half of the studies (simulated: about 0.58)."""
    monkeypatch.setattr(study_test, "MAX_EXACT_STUDY", 1)
    monkeypatch.setattr(study_test, "N_DRAWS", 9)
    rng = np.random.default_rng(20)
    p = np.array([
        stratified_answer(_groups(rng, k=4, effect=-0.05), rng=rng, interval=False).p
        for _ in range(1000)
    ])  # fmt: skip
    assert np.mean(p <= 0.05) >= 0.5


def _drift_table(rng, tasks, sds, effect, n=3) -> pd.DataFrame:
    rows = []
    for task, sd in zip(tasks, sds, strict=True):
        for method in ("lora", "full"):
            for seed in range(n):
                value = rng.normal(0.3 + (effect if method == "lora" else 0.0), sd)
                for layer in (0, 1):
                    rows.append({"task": task, "method": method, "seed": seed, "step": 0,
                                 "run": f"{task}_{method}_seed{seed}", "layer_index": layer,
                                 "layer": f"layer_{layer}", "metric": "m",
                                 "drift": value})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_planned_power_agrees_with_a_direct_simulation_of_the_answer(monkeypatch):
    """The planner's vectorised power equals the share of simulated studies that the answer
    itself (task_answer, study_answer) calls significant, within Monte-Carlo error."""
    monkeypatch.setattr(study_test, "MAX_EXACT_STUDY", 1)
    monkeypatch.setattr(study_test, "N_DRAWS", 9)
    tasks, sds, effect = ("a", "b", "c"), [0.03, 0.05, 0.08], -0.05
    rng = np.random.default_rng(30)
    hits = 0
    trials = 300
    for _ in range(trials):
        table = _drift_table(rng, tasks, sds, effect)
        answers = [task_answer(table, t, ("lora", "full"), rng=rng) for t in tasks]
        hits += study_answer(answers, rng=rng).p <= 0.05
    planned = simulated_power(sds, 3, 3, effect, n_studies=2000, rng=np.random.default_rng(1))
    se = math.sqrt(planned * (1 - planned) / trials)
    assert abs(hits / trials - planned) <= 3 * se + 0.01


def test_the_plan_finds_more_seeds_for_a_smaller_effect():
    rng = np.random.default_rng(40)
    groups = _groups(rng, k=4, effect=-0.05)
    big = plan_from_seeds(groups, effect=-0.1)
    small = plan_from_seeds(groups, effect=0.02)
    assert big.power_now > small.power_now and big.effect == 0.1
    assert big.seeds_needed is not None and small.seeds_needed is not None
    assert big.seeds_needed < small.seeds_needed
    low, high = small.power_now_range
    assert low <= small.power_now <= high
    assert small.seeds_needed_range[0] <= small.seeds_needed
    assert small.seeds_needed_range[1] is None or small.seeds_needed <= small.seeds_needed_range[1]
    assert seed_planner.plan_sentence(small).startswith("With 3 + 3 seeds per task")


@pytest.mark.slow
def test_plan_from_a_results_folder_in_the_report_and_the_cli(tmp_path):
    results = build(tmp_path, with_weights=False)
    plan = plan_seeds(results)
    assert plan.effect_source == "observed" and plan.n_tasks == 2 and plan.seeds_now == (3, 3)
    sentence = seed_planner.plan_sentence(plan)
    out = CliRunner().invoke(app, ["seeds", str(results)])
    assert out.exit_code == 0, out.output
    assert " ".join(out.output.split()) == sentence
    given = CliRunner().invoke(app, ["seeds", str(results), "--effect", "0.01"])
    assert "a difference of 0.01 (the one given)" in " ".join(given.output.split())
    from repdrift.report import write_report

    page = write_report(results, tmp_path / "report.html").read_text()
    assert f'<p class="seed-plan" id="seed-plan">{sentence}</p>' in page.replace("&#39;", "'")
