"""The HTML report and its sentences, from real results folders (synthetic runs through
compare()): headlines name the planted layers, say when nothing differs or seeds are too
few; the page is self-contained and loads cleanly in headless Chromium."""

from __future__ import annotations

import html
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from _synthetic_results import PLANTED, TASKS, L, build, write_study
from _synthetic_tokens import with_token_tables
from repdrift.analysis.compare_runs import compare
from repdrift.errors import InputError
from repdrift.plots import catalog, drift_heatmaps, read_weights, save_figure
from repdrift.report import write_report
from repdrift.report.headlines import headlines, layer_ranges, p_bound
from repdrift.store.results import load_results

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

METRIC = "cka_debiased"
ONE_STEP = ((0, 1.0),)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """Two tasks, 3 seeds, 3 checkpoints; LoRA drifts far less in layers 3–5."""
    return build(tmp_path_factory.mktemp("planted"))


def small_study(root: Path, **kwargs):
    paths = write_study(root, tasks=("toy",), steps=ONE_STEP, **kwargs)
    return paths


@pytest.fixture(scope="module")
def identical(tmp_path_factory):
    root = tmp_path_factory.mktemp("identical")
    paths = small_study(root / "runs", identical=True)
    compare(paths, out=root / "results", n_boot=50, n_perm=20, progress=False)
    return root / "results"


# --------------------------------------------------------------------------- pure wording


def test_layer_ranges():
    assert layer_ranges([3, 4, 5]) == "layers 3–5"
    assert layer_ranges([5, 3, 4]) == "layers 3–5"
    assert layer_ranges([2]) == "layer 2"
    assert layer_ranges([1, 3, 4]) == "layers 1 and 3–4"
    assert layer_ranges([0, 2, 4, 5, 6]) == "layers 0, 2 and 4–6"
    assert layer_ranges([-1]) == "the embeddings"
    assert layer_ranges([-1, 0, 1]) == "the embeddings and layers 0–1"


def test_p_bound():
    assert p_bound(0.0004) == "< 0.001"
    assert p_bound(0.001) == "< 0.01"
    assert p_bound(0.03) == "< 0.05"
    assert p_bound(0.07) == "≥ 0.05"
    assert p_bound(0.07, alpha=0.1) == "< 0.1"


# --------------------------------------------------------------------------- headlines


def test_planted_difference_names_the_layer_range(planted):
    res = load_results(planted)
    text = headlines(res)
    assert sorted(text) == sorted(TASKS)
    comp = res.comparison[res.comparison.metric == METRIC]
    for task in TASKS:
        part = comp[comp.task == task]
        sig = part[part.p_holm < 0.05]
        assert set(sig.layer_index) == set(PLANTED)  # the synthetic study is strong enough
        answer = text[task][0]  # the pre-registered seed-level answer comes first
        assert answer.startswith(f"{task}: LoRA − full fine-tuning in block-averaged drift = −")
        assert "Welch over 3 + 3 seeds" in answer and "smallest attainable p 0.1" in answer
        answers = res.summary["headline"]["answers"]
        row = dict(zip(answers["columns"], next(r for r in answers["data"] if r[0] == task),
                       strict=True))  # fmt: skip
        # a Welch p below what 3 + 3 seeds can give by permutation says what it rests on
        rests = "rests on the drift of the seeds being roughly normal" in answer
        assert rests == (row["p"] < row["perm_floor"]) and rests  # planted: Welch p < 0.1
        first = text[task][1]
        assert first.startswith("LoRA drifted ")
        assert f"less than full fine-tuning in layers 3–5 of {task}" in first
        assert first.endswith("; no significant difference elsewhere.")
        # The percentage and the p-value bound restate the table's numbers.
        rel = np.round(np.abs(sig.rel_diff.to_numpy()) * 100).astype(int)
        assert f"{rel.min()}–{rel.max()}% less" in first or f"{rel.min()}% less" in first
        bound = float(re.search(r"Holm-adjusted p < ([0-9.]+)", first).group(1))
        assert sig.p_holm.max() < bound
        assert bound in (0.001, 0.01, 0.05) and (bound == 0.001 or sig.p_holm.max() >= bound / 10)
        # Three seeds each: no caveat. The last sentence names where drift peaks.
        assert not any("seed" in s and "Only" in s for s in text[task])
        final = res.drift[
            (res.drift.step == 0) & (res.drift.task == task) & (res.drift.metric == METRIC)
        ]
        peak = final[final.method == "full"].groupby("layer_index")["drift"].mean()
        assert f"in layer {peak.idxmax()} for full fine-tuning ({peak.max():.3f})" in text[task][-1]


def test_other_metric_and_correction(planted):
    res = load_results(planted)
    text = headlines(res, metric="cosine", correction="p_bh")
    comp = res.comparison[(res.comparison.metric == "cosine") & (res.comparison.task == "sst2")]
    sig = sorted(comp[comp.p_bh < 0.05].layer_index)
    first = text["sst2"][1]
    assert "Benjamini–Hochberg-adjusted" in first and "(cosine," in first
    assert layer_ranges(sig) in first
    with pytest.raises(InputError, match="p_holmes"):
        headlines(res, correction="p_holmes")


def test_identical_runs_have_no_significant_difference(identical):
    text = headlines(load_results(identical))
    assert list(text) == ["toy"]
    # Every layer equals the base layer bit for bit: structural zeros, nothing is tested.
    assert text["toy"][0] == (
        "No test of LoRA against full fine-tuning was possible for toy (cka_debiased)."
    )
    assert text["toy"][1].startswith("Unchanged in every seed (structural zeros")
    assert "the embeddings and layers 0–5 under full fine-tuning" in text["toy"][1]


def test_reversed_labels_say_more(tmp_path):
    """Swap the method labels of the planted study: the sentence turns to 'more'."""
    paths = small_study(tmp_path / "runs")
    swap = {"lora": "full", "full": "lora"}
    labels = {str(p): {"method": swap[m]} for p in paths for m in swap if f"_{m}_" in p.name}
    res = compare(paths, labels=labels, n_boot=50, n_perm=0, progress=False, metrics=[METRIC])
    first = headlines(res)["toy"][1]
    assert "LoRA drifted" in first and "more than full fine-tuning in layers 3–5 of toy" in first


def test_too_few_seeds_are_called_out(tmp_path):
    one = compare(
        small_study(tmp_path / "one", seeds=(1,)), n_boot=50, n_perm=0, progress=False,
        metrics=[METRIC],
    )  # fmt: skip
    assert set(one.comparison.test) == {"samples"}
    caveat = headlines(one)["toy"][-2]
    assert caveat.startswith("Only 1 seed of LoRA and 1 seed of full fine-tuning")
    assert "sampling noise only" in caveat
    two = compare(
        small_study(tmp_path / "two", seeds=(1, 2)), n_boot=50, n_perm=0, progress=False,
        metrics=[METRIC],
    )  # fmt: skip
    assert "too few seeds" in " ".join(headlines(two)["toy"])
    # Without half-samples and with single seeds there is nothing to compare at all.
    none = compare(
        small_study(tmp_path / "none", seeds=(1,)), n_boot=0, n_perm=0, progress=False,
        metrics=[METRIC],
    )  # fmt: skip
    assert none.comparison.empty
    assert headlines(none)["toy"][0].startswith("Too few seeds to compare LoRA with full")
    lora_only = replace(
        none, drift=none.drift[none.drift.method == "lora"], comparison=none.comparison
    )
    assert headlines(lora_only)["toy"][0].startswith("Only LoRA runs for toy")


# --------------------------------------------------------------------------- the HTML file


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", re.IGNORECASE)


@pytest.fixture(scope="module")
def report(planted, tmp_path_factory) -> Path:
    """The planted study's report, written once for the checks below."""
    out = tmp_path_factory.mktemp("report") / "sub" / "report.html"
    assert write_report(planted, out) == out
    return out


def test_report_is_self_contained_and_says_the_answer(planted, report):
    res = load_results(planted)
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "<script" not in page and "@import" not in page and "url(" not in page
    n_figures = len(catalog(res, read_weights(planted)))
    assert n_figures == 11
    assert page.count('<img src="data:image/png;base64,') == n_figures
    assert page.count("<figcaption>") == n_figures
    for sentences in headlines(res).values():
        for sentence in sentences:
            assert html.escape(sentence, quote=False) in page
    # The first sentence of the answer is the study-level answer with its interval.
    answer = page.split('<section id="answer">')[1]
    first = re.search(r'<p class="study-answer" id="study-answer">(.*?)</p>', answer).group(1)
    assert answer.index(first) < answer.index('class="headline"')
    assert first.startswith("In these 2 tasks (") and "LoRA drifted less than full" in first
    assert "95% CI −0." in first and "Welch-type t-test with seeds as the unit" in first
    assert "permuting the method labels within tasks (exact)" in first
    assert "tasks in general is not tested" in first
    # Setup, tables and methods carry the numbers of results.json and the tables.
    settings = res.summary["settings"]
    assert f"half-samples (n_boot): {settings['n_boot']}" in page
    assert f"permutations (n_perm): {settings['n_perm']}" in page
    assert f"repdrift version: <code>{res.summary['repdrift_version']}</code>" in page
    assert '<td class="text">toy-bert (BertModel)</td>' in page  # the base model, results.json
    assert "Welch" in page and "Holm" in page and "Benjamini–Hochberg" in page
    assert "Weight space" in page and "Intruder dimensions" in page
    row = res.comparison[(res.comparison.metric == METRIC) & (res.comparison.task == "sst2")]
    top = row[row.layer_index == L - 1].iloc[0]
    assert f"{top.drift_b:.3f}" in page and f"{top.drift_a:.3f}" in page
    assert page.count('<tr class="strong">') >= 2 * len(PLANTED)


def test_report_embeds_given_figure_files(planted, tmp_path):
    specs = catalog(load_results(planted))[:3]
    pngs = [save_figure(spec.draw(), tmp_path / f"{spec.name}.png", dpi=80) for spec in specs]
    page = write_report(planted, tmp_path / "a.html", figures=pngs).read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "Figure 1.</b> Drift from the base model per layer for mrpc" in page
    assert 'width="472"' in page  # 3.5 in at 135 CSS px per inch, from the PNG's own dpi
    svg = tmp_path / "drift_heatmaps.svg"
    res = load_results(planted)
    save_figure(drift_heatmaps(res.drift, res.comparison), svg)
    page = write_report(res, tmp_path / "b.html", figures=[svg]).read_text()
    assert page.count("data:image/svg+xml;base64,") == 1
    with pytest.raises(InputError, match="PNG or SVG"):
        write_report(planted, tmp_path / "c.html", figures=[svg.with_suffix(".pdf")])
    assert not (tmp_path / "c.html").exists()


def test_report_of_identical_runs(identical, tmp_path):
    page = write_report(identical, tmp_path / "r.html").read_text()
    assert "No test of LoRA against full fine-tuning was possible" in page
    assert "No seed-level answer" in page and "structural zeros" in page
    assert "Weight space" not in page  # no weights table in this folder


# --------------------------------------------------------------------------- in a browser


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip(
            "chromium / chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    profile = tempfile.mkdtemp(prefix="repdrift-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1100,900",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- on a laptop screen


LONG_TASK = "customer_reviews_with_three_hundred_word_texts_2024_holdout"
NAV_LINK = re.compile(r'<li><a href="#([^"]+)">([^<]+)</a></li>')
SECTION = re.compile(r'<section id="([^"]+)"[^>]*>\s*<h2>([^<]+)</h2>')


@pytest.fixture(scope="module")
def laptop_report(tmp_path_factory) -> Path:
    """A study as a user names it: a long task name (so long run names), token-level tables
    with 300-word texts (one with a long URL); its report."""
    root = tmp_path_factory.mktemp("laptop")
    paths = write_study(root / "runs", tasks=(LONG_TASK,), seeds=(1, 2), steps=ONE_STEP)
    res = compare(paths, out=root / "results", n_boot=20, n_perm=0, progress=False,
                  metrics=[METRIC])  # fmt: skip
    return write_report(with_token_tables(res, n_layers=3), root / "report.html")


def test_contents_list_every_section_and_point_somewhere(report, laptop_report):
    for page in (report.read_text(encoding="utf-8"), laptop_report.read_text(encoding="utf-8")):
        nav = page.split('<nav aria-label="Contents">')[1].split("</nav>")[0]
        links = NAV_LINK.findall(nav)
        assert links == SECTION.findall(page)  # every h2 section, in page order
        for anchor, _ in links:
            assert page.count(f'id="{anchor}"') == 1
    titles = [title for _, title in links]
    assert titles == [
        "The answer", "What was compared", "Figures", "Tables", "Token level", "Methods",
    ]  # fmt: skip


def test_token_tables_name_the_layer_and_let_long_text_wrap(laptop_report):
    page = laptop_report.read_text(encoding="utf-8")
    assert f"{LONG_TASK}: the most-moved samples at layer 5 (mean per-token drift" in page
    assert '<td class="prose">I bought this after reading' in page
    # Run names break after their underscores rather than mid-word.
    assert '<td class="text">customer_<wbr>reviews_<wbr>with_<wbr>' in page


@pytest.mark.slow
def test_report_loads_in_chromium(report, browser):
    browser.get(report.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    assert browser.title == "repdrift report: mrpc, sst2"
    sizes = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.clientWidth])"
    )
    assert len(sizes) == 11
    for complete, natural_w, natural_h, shown_w in sizes:
        assert complete and natural_w > 300 and natural_h > 100 and shown_w > 300
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    # The page fits a laptop screen: no element forces horizontal scrolling of the body.
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    headings = browser.execute_script(
        "return Array.from(document.querySelectorAll('h2')).map(h => h.textContent)"
    )
    assert headings == ["The answer", "What was compared", "Figures", "Tables", "Methods"]


#: A common laptop screen; the report must not clip or hide anything at this width.
LAPTOP = (1366, 900)


@pytest.mark.slow
def test_report_fits_a_laptop_screen(report, laptop_report, browser):
    """At 1366 px nothing is cut: the page does not scroll sideways, no table is wider than
    its box (long run names and token texts wrap), no figure runs off the page, and every
    contents entry leads to a section."""
    browser.set_window_size(*LAPTOP)
    try:
        for page in (report, laptop_report):
            browser.get(page.as_uri())
            width = browser.execute_script("return document.documentElement.clientWidth")
            assert LAPTOP[0] - 30 <= width <= LAPTOP[0]  # the window is a laptop's
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width
            tables = browser.execute_script(
                "return Array.from(document.querySelectorAll('.table-wrap')).map(w => ["
                "w.querySelector('caption').textContent.slice(0, 60), "
                "w.querySelector('table').scrollWidth, w.clientWidth])"
            )
            assert len(tables) >= 5
            for caption, table_width, box_width in tables:
                assert table_width <= box_width, caption
            right = browser.execute_script(
                "return Math.max(...Array.from(document.querySelectorAll('img, figure, table, p'))"
                ".map(e => e.getBoundingClientRect().right))"
            )
            assert right <= width
            missing = browser.execute_script(
                "return Array.from(document.querySelectorAll('nav a'))"
                ".filter(a => !document.getElementById(a.hash.slice(1))).map(a => a.href)"
            )
            assert missing == []
        headings = browser.execute_script(
            "return Array.from(document.querySelectorAll('nav a')).map(a => a.textContent)"
        )
        assert "Token level" in headings
    finally:
        browser.set_window_size(1100, 900)
