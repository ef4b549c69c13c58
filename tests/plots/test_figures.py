"""Figures drawn from a real results folder (synthetic runs through compare()) and a real
weight table (tiny BERT checkpoints and PEFT adapters): the numbers drawn are the table's
numbers, the files are valid images, and the layout keeps text readable and apart."""

from __future__ import annotations

import itertools
import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from _synthetic_results import PLANTED, TASKS, L, build, write_study
from repdrift.analysis.compare_runs import compare
from repdrift.errors import InputError, IntegrityError
from repdrift.plots import (
    METHOD_COLORS,
    catalog,
    cross_layer_matrices,
    drift_heatmaps,
    drift_over_steps,
    drift_profile,
    intruder_counts,
    plot_all,
    read_weights,
    sample_cosine_distributions,
    save_figure,
    stars,
    weight_change,
)
from repdrift.store.results import load_results

pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

METRIC = "cka_debiased"
LAYER_LABELS = ["emb", *map(str, range(L))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def res(folder):
    return load_results(folder)


@pytest.fixture(scope="module")
def weights(folder):
    table = read_weights(folder)
    assert table is not None
    return table


def final(df: pd.DataFrame) -> pd.DataFrame:
    """Reference selection written out: each run's step 0 (the saved final model)."""
    return df[df["step"] == 0]


# --------------------------------------------------------------------------- layout checks


def texts(fig: Figure) -> list[Text]:
    """Visible non-empty labels that get drawn: ticks inside the view, axis labels, titles,
    legends, colorbars (not the markers drawn inside heatmap cells)."""
    inside = {id(t) for ax in fig.axes for t in ax.texts}
    ticks, shown = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            pad = 1e-9 * max(1.0, abs(hi - lo))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update({id(tick.label1), id(tick.label2)})
                if lo - pad <= tick.get_loc() <= hi + pad:
                    shown += [tick.label1, tick.label2]
    others = [t for t in fig.findobj(Text) if id(t) not in ticks and id(t) not in inside]
    return [t for t in shown + others if t.get_visible() and t.get_text().strip()]


def assert_readable(fig: Figure) -> None:
    """Every label is ≥ 7 pt, inside the figure, and no two labels overlap."""
    fig.canvas.draw()  # runs the constrained layout
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    labels = texts(fig)
    assert labels
    extents = []
    for t in labels:
        assert t.get_fontsize() >= 7, (t.get_text(), t.get_fontsize())
        e = t.get_window_extent(renderer)
        assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1, ("cut off", t.get_text())
        assert e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, ("cut off", t.get_text())
        extents.append((t, e.shrunk(0.97, 0.9)))  # the glyph boxes include some padding
    for (a, ea), (b, eb) in itertools.combinations(extents, 2):
        assert not ea.overlaps(eb), f"{a.get_text()!r} overlaps {b.get_text()!r}"


def tick_labels(ax, axis="x") -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def data_axes(fig: Figure) -> list:
    """Axes that are not colorbars."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# --------------------------------------------------------------------------- figures


def test_drift_profile_draws_the_seed_means_in_fixed_colours(res):
    fig = drift_profile(
        res.drift, res.noise_floor, task="sst2", metric=METRIC, level=0.95,
        summary=res.task_ranking,
    )  # fmt: skip
    assert fig.get_figwidth() == pytest.approx(3.5)
    (ax,) = fig.axes
    assert tick_labels(ax) == LAYER_LABELS
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "LoRA (mean of 3 seeds)",
        "Full FT (mean of 3 seeds)",
        "single seed",
        "95% CI of mean: seeds + samples",
        "seed-vs-seed drift",
    ]
    bands = [c for c in ax.collections if len(c.get_paths()) and c.get_alpha() == 0.2]
    summary = res.task_ranking
    summary = summary[(summary.task == "sst2") & (summary.metric == METRIC)]
    for band, method in zip(bands, ("lora", "full"), strict=True):
        # The band drawn is the table's method-level (seeds, then samples) interval.
        want = summary[summary.method == method].sort_values("layer_index")
        assert set(want["interval"]) == {"seeds+samples"}
        ys = band.get_paths()[0].vertices[:, 1]
        for value in (*want["ci_low"], *want["ci_high"]):
            assert np.isclose(ys, value).any()
    rows = final(res.drift)
    rows = rows[(rows.task == "sst2") & (rows.metric == METRIC)]
    for method in ("lora", "full"):
        expected = rows[rows.method == method].groupby("layer_index")["drift"].mean()
        thick = [
            line
            for line in ax.get_lines()
            if line.get_color() == METHOD_COLORS[method] and line.get_marker() == "o"
        ]
        assert len(thick) == 1
        np.testing.assert_allclose(thick[0].get_xdata(), expected.index)
        np.testing.assert_allclose(thick[0].get_ydata(), expected.to_numpy())
        seeds = [
            line
            for line in ax.get_lines()
            if line.get_color() == METHOD_COLORS[method] and line.get_linewidth() == 0.5
        ]
        assert len(seeds) == 3
        floor = res.noise_floor
        floor = floor[(floor.task == "sst2") & (floor.metric == METRIC) & (floor.method == method)]
        dashed = [
            line
            for line in ax.get_lines()
            if line.get_color() == METHOD_COLORS[method] and line.get_linestyle() == "--"
        ]
        np.testing.assert_allclose(dashed[0].get_ydata(), floor.sort_values("layer_index")["drift"])
    assert ax.get_ylim()[0] == 0.0  # drift axis anchored at zero
    assert_readable(fig)


def test_drift_profile_into_given_axes(res):
    fig = Figure(figsize=(7, 3))
    left, right = fig.subplots(1, 2)
    out = drift_profile(res.drift, task="mrpc", metric="cosine", ax=right)
    assert out is fig
    assert not left.get_lines() and right.get_lines()
    assert right.get_legend() is not None
    assert "cosine" in right.get_ylabel()


def test_unknown_task_or_metric_names_what_exists(res):
    with pytest.raises(InputError, match=r"task='qnli'.*mrpc.*sst2"):
        drift_profile(res.drift, task="qnli")
    with pytest.raises(InputError, match="cka_debaised"):
        drift_profile(res.drift, task="sst2", metric="cka_debaised")
    with pytest.raises(InputError, match="lacks column"):
        drift_profile(res.drift.drop(columns=["drift"]), task="sst2")


def test_drift_heatmaps_show_table_values_and_holm_markers(res):
    fig = drift_heatmaps(res.drift, res.comparison, metric=METRIC)
    panels = data_axes(fig)
    assert [ax.get_title(loc="left") for ax in panels][:2] == ["LoRA", "Full FT"]
    assert panels[2].get_title(loc="left").startswith("LoRA − Full FT")
    assert len(fig.axes) == 5  # three panels, two colorbars
    rows = final(res.drift)
    rows = rows[rows.metric == METRIC]
    tasks = sorted(TASKS)
    for ax, method in zip(panels[:2], ("lora", "full"), strict=True):
        expected = (
            rows[rows.method == method]
            .pivot_table(index="task", columns="layer_index", values="drift", aggfunc="mean")
            .loc[tasks]
        )
        np.testing.assert_allclose(ax.get_images()[0].get_array(), expected.to_numpy())
        assert tick_labels(ax, "y") == tasks
    comp = res.comparison[res.comparison.metric == METRIC]
    diff = comp.pivot(index="task", columns="layer_index", values="drift_diff").loc[tasks]
    image = panels[2].get_images()[0]
    np.testing.assert_allclose(image.get_array(), diff.to_numpy())
    vmin, vmax = image.get_clim()
    assert vmin == pytest.approx(-vmax)  # diverging scale centred at 0
    assert vmax == pytest.approx(np.abs(diff.to_numpy()).max())
    # Markers exactly where Holm-adjusted p is small, with the right number of stars.
    drawn = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
        for t in panels[2].texts
    }
    expected_marks = {}
    for (i, task), (j, layer) in itertools.product(enumerate(tasks), enumerate(diff.columns)):
        p = comp[(comp.task == task) & (comp.layer_index == layer)]["p_holm"].item()
        mark = "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""
        if mark:
            expected_marks[(i, j)] = mark
    assert drawn == expected_marks
    assert {j - 1 for (_, j) in drawn} == set(PLANTED)  # column 0 is the embeddings
    assert_readable(fig)


def test_stars_thresholds():
    assert [stars(p) for p in (0.0005, 0.001, 0.005, 0.03, 0.05, 0.2, float("nan"))] == [
        "***", "**", "**", "*", "", "", "",
    ]  # fmt: skip


def test_heatmaps_without_comparison_have_method_panels_only(res):
    fig = drift_heatmaps(res.drift, None, metric="cosine")
    assert len(data_axes(fig)) == 2


def test_cross_layer_matrices_are_seed_means(res):
    fig = cross_layer_matrices(res.cross_layer, task="mrpc")
    panels = data_axes(fig)
    assert [ax.get_title(loc="left") for ax in panels] == ["LoRA (3 seeds)", "Full FT (3 seeds)"]
    assert panels[0].get_ylabel() == "base layer" and panels[0].get_xlabel() == "fine-tuned layer"
    cross = res.cross_layer[res.cross_layer.task == "mrpc"]
    order = {"embeddings": -1, **{f"layer_{i}": i for i in range(L)}}
    for ax, method in zip(panels, ("lora", "full"), strict=True):
        part = cross[cross.method == method].assign(b=lambda d: d.base_layer.map(order))
        expected = part.pivot_table(index="b", columns="layer_index", values="similarity")
        np.testing.assert_allclose(ax.get_images()[0].get_array(), expected.to_numpy())
    assert fig.axes[-1].get_ylabel() == "similarity (debiased CKA)"
    assert_readable(fig)


def test_sample_cosine_boxes_per_layer_and_method(res):
    fig = sample_cosine_distributions(res.sample_cosine, task="sst2")
    (ax,) = fig.axes
    assert tick_labels(ax) == LAYER_LABELS
    boxes = [p for p in ax.patches]
    assert len(boxes) == 2 * (L + 1)
    # Median lines (black) equal the pooled per-layer medians of the final checkpoints.
    medians = sorted(
        (float(np.mean(line.get_xdata())), float(line.get_ydata()[0]))
        for line in ax.get_lines()
        if line.get_color() == "black" and line.get_linestyle() == "-"
    )
    cos = final(res.sample_cosine)
    cos = cos[cos.task == "sst2"]
    expected = []
    for method, offset in (("lora", -0.2), ("full", 0.2)):
        for layer, values in cos[cos.method == method].groupby("layer_index")["cosine"]:
            expected.append((layer + offset, float(np.median(values))))
    np.testing.assert_allclose(np.array(medians), np.array(sorted(expected)), atol=1e-9)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["LoRA (3 seeds pooled)", "Full FT (3 seeds pooled)"]
    assert_readable(fig)


def test_drift_over_steps_puts_the_final_model_last(res):
    fig = drift_over_steps(res.drift, task="sst2", metric=METRIC)
    panels = data_axes(fig)
    assert len(panels) == 2
    assert tick_labels(panels[-1]) == ["100", "200", "final"]
    rows = res.drift[(res.drift.task == "sst2") & (res.drift.metric == METRIC)]
    top = rows["drift"].max()
    for ax in panels:
        assert ax.get_ylim()[1] >= top  # the shared axis shows every panel's data
    # The layer-5 full FT line passes through the seed means at steps 100 and 200.
    full = rows[(rows.method == "full") & (rows.layer_index == L - 1)]
    expected = full.groupby("step")["drift"].mean()
    solid = [line for line in panels[1].get_lines() if line.get_label() == str(L - 1)]
    np.testing.assert_allclose(solid[0].get_xdata(), [100, 200])
    np.testing.assert_allclose(solid[0].get_ydata(), expected.loc[[100, 200]])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == LAYER_LABELS
    assert_readable(fig)
    chosen = drift_over_steps(res.drift, task="sst2", layers=[0, 5])
    assert [t.get_text() for t in chosen.legends[0].get_texts()] == ["0", "5"]
    with pytest.raises(InputError, match="more than one checkpoint"):
        drift_over_steps(final(res.drift), task="sst2")
    with pytest.raises(InputError, match=r"layers \[9\]"):
        drift_over_steps(res.drift, task="sst2", layers=[9])


def test_weight_change_is_the_variant_mean_on_a_log_scale(weights):
    fig = weight_change(weights)
    panels = data_axes(fig)
    assert [ax.get_title(loc="left") for ax in panels] == [
        "LoRA (2 variants)",
        "Full FT (2 variants)",
    ]
    modules = [t.get_text() for t in panels[0].get_yticklabels()]
    assert modules[:3] == ["attn.query", "attn.key", "attn.value"]  # data-flow order
    full = weights[weights.method == "full"]
    image = panels[1].get_images()[0].get_array()
    expected = full.groupby(["module", "layer"])["rel_change"].mean().unstack()
    for row, label in enumerate(modules):
        module = label.replace("attn.", "attention.self.", 1) if label in (
            "attn.query", "attn.key", "attn.value"
        ) else label.replace("attn.", "attention.")  # fmt: skip
        values = expected.loc[module].to_numpy()
        if (values == 0).all():
            assert image.mask[row].all()  # unchanged modules are masked, not coloured
        else:
            np.testing.assert_allclose(image[row], values)
    lora_image = panels[0].get_images()[0].get_array()
    assert lora_image.mask.sum() == 4 * (len(modules) - 2)  # LoRA adapts query and value only
    assert isinstance(panels[0].get_images()[0].norm, mpl.colors.LogNorm)
    assert_readable(fig)


def test_intruder_counts_compare_the_modules_both_methods_changed(weights):
    fig = intruder_counts(weights)
    ax, share_ax = fig.axes  # counts with the random-direction reference; energy share
    assert "ε = 0.5" in ax.get_ylabel()
    assert "attn.query, attn.value" in ax.get_title(loc="left")
    shared = weights[weights.module.isin(["attention.self.query", "attention.self.value"])]
    for method, color in (("lora", METHOD_COLORS["lora"]), ("full", METHOD_COLORS["full"])):
        per_variant = (
            shared[shared.method == method]
            .groupby(["variant", "layer"])["intruder_count"]
            .sum()
            .groupby("layer")
            .mean()
        )
        bars = [p for p in ax.patches if mpl.colors.to_hex(p.get_facecolor()) == color.lower()]
        assert len(bars) == 4
        np.testing.assert_allclose(
            [b.get_height() for b in sorted(bars, key=lambda b: b.get_x())], per_variant
        )
        share = shared[shared.method == method].groupby("layer")["intruder_energy"].mean()
        share_bars = [
            p for p in share_ax.patches if mpl.colors.to_hex(p.get_facecolor()) == color.lower()
        ]
        np.testing.assert_allclose(
            [b.get_height() for b in sorted(share_bars, key=lambda b: b.get_x())], share
        )
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["LoRA (2 variants)", "Full FT (2 variants)", "random directions"]
    assert_readable(fig)


# --------------------------------------------------------------------------- plot_all


EXPECTED_FILES = {
    "drift_profile_mrpc", "drift_profile_sst2", "drift_heatmaps", "cross_layer_mrpc",
    "cross_layer_sst2", "sample_cosine_mrpc", "sample_cosine_sst2", "drift_steps_mrpc",
    "drift_steps_sst2", "weight_change", "intruder_counts",
}  # fmt: skip


def test_plot_all_png_are_valid_images_of_column_width(folder, tmp_path):
    files = plot_all(folder, tmp_path / "figs", format="png", dpi=100)
    assert {f.stem for f in files} == EXPECTED_FILES
    for f in files:
        assert f.suffix == ".png" and f.parent == tmp_path / "figs"
        image = mpimg.imread(f)
        height, width = image.shape[:2]
        assert width == pytest.approx(350, abs=2), f.name  # 3.5 in at 100 dpi
        assert 150 <= height <= 700, f.name
        # Not blank: plenty of distinct colours.
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, f.name
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary files left behind


def check_vector_files(pdfs: list[Path], svgs: list[Path]) -> None:
    for f in pdfs:
        data = f.read_bytes()
        assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF"), f.name
    for f in svgs:
        root = ET.parse(f).getroot()
        assert root.tag.endswith("svg")
        assert float(root.get("width").removesuffix("pt")) == pytest.approx(3.5 * 72), f.name


def test_vector_formats(res, tmp_path):
    fig = drift_profile(res.drift, res.noise_floor, task="sst2")
    pdf = save_figure(fig, tmp_path / "profile.pdf")
    svg = save_figure(fig, tmp_path / "profile.svg")
    check_vector_files([pdf], [svg])
    assert "layer" in svg.read_text()  # text stays text in SVG (editable, searchable)
    # Byte-identical when written twice: no dates in the metadata.
    again = save_figure(drift_profile(res.drift, res.noise_floor, task="sst2"), tmp_path / "2.pdf")
    assert again.read_bytes() == pdf.read_bytes()
    with pytest.raises(InputError, match="jpeg"):
        save_figure(fig, tmp_path / "profile.jpeg")
    with pytest.raises(InputError, match="jpeg"):
        plot_all(res, tmp_path / "x", format="jpeg")


@pytest.mark.slow
def test_plot_all_vector_formats(folder, tmp_path):
    pdfs = plot_all(folder, tmp_path / "pdf", format="pdf")
    svgs = plot_all(folder, tmp_path / "svg", format="svg")
    assert {f.stem for f in pdfs} == {f.stem for f in svgs} == EXPECTED_FILES
    check_vector_files(pdfs, svgs)


def test_figures_without_data_are_skipped_and_logged(res, weights, caplog):
    with caplog.at_level(logging.INFO, logger="repdrift.plots"):
        names = {spec.name for spec in catalog(res)}  # no weights table
    assert names == EXPECTED_FILES - {"weight_change", "intruder_counts"}
    assert "skipping figure weight_change" in caplog.text
    assert {spec.name for spec in catalog(res, weights)} == EXPECTED_FILES


def test_plot_all_reads_the_weights_table_when_present(folder, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(folder, bare)
    (bare / "weights.parquet").unlink()
    assert read_weights(bare) is None
    pd.read_parquet(folder / "weights.parquet").to_csv(bare / "weights.csv", index=False)
    table = read_weights(bare)
    assert table is not None and len(table) == len(pd.read_parquet(folder / "weights.parquet"))
    (bare / "weights.csv").write_text("not,a\n\x00table")
    (bare / "weights.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(IntegrityError, match=r"weights\.parquet"):
        read_weights(bare)


def test_catalog_of_single_step_runs_has_no_step_figures(res):
    from dataclasses import replace

    single = replace(res, drift=final(res.drift), sample_cosine=final(res.sample_cosine), path=None)
    names = {spec.name for spec in catalog(single)}
    assert not any(n.startswith("drift_steps") for n in names)
    assert "drift_profile_sst2" in names


def test_style_does_not_leak_into_global_rcparams(res, weights):
    before = dict(mpl.rcParams)
    drift_profile(res.drift, res.noise_floor, task="sst2")
    weight_change(weights)
    after = dict(mpl.rcParams)
    assert before == after


def test_deep_models_and_many_tasks_stay_readable(tmp_path):
    """12 blocks and 4 tasks (BERT-base scale): labels still fit and stay apart."""
    tasks = ("sst2", "mrpc", "rte", "squad_v2")
    paths = write_study(tmp_path, tasks=tasks, seeds=(1, 2), steps=((0, 1.0),), n_layers=12)
    res = compare(paths, n_boot=0, n_perm=0, progress=False, metrics=[METRIC])
    profile = drift_profile(res.drift, res.noise_floor, task="squad_v2")
    assert tick_labels(profile.axes[0]) == ["emb", *map(str, range(12))]
    heat = drift_heatmaps(res.drift, res.comparison)
    assert tick_labels(data_axes(heat)[-1]) == ["E", *map(str, range(12))]
    assert tick_labels(data_axes(heat)[0], "y") == sorted(tasks)
    for fig in (
        profile,
        heat,
        cross_layer_matrices(res.cross_layer, task="rte"),
        sample_cosine_distributions(res.sample_cosine, task="mrpc"),
    ):
        assert_readable(fig)


@pytest.fixture(scope="module")
def one_task(tmp_path_factory):
    """One task with a long name, two seeds, one checkpoint, no embeddings in the
    cross-layer table: the figures must still fit and say only what they draw."""
    paths = write_study(
        tmp_path_factory.mktemp("one_task"), tasks=(LONG_TASK,), seeds=(1, 2),
        steps=((0, 1.0),),
    )  # fmt: skip
    return compare(paths, n_boot=20, n_perm=0, progress=False, metrics=[METRIC])


LONG_TASK = "customer_reviews_with_three_hundred_word_texts_2024_holdout"


def assert_colour_bar_labels_fit(fig: Figure) -> None:
    """Each colour bar's label is no longer than its bar (a few pixels of glyph padding
    aside): a longer one runs into the next bar's label or a panel title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bars
    for ax in bars:
        label = ax.yaxis.label.get_window_extent(renderer)
        bar = ax.get_window_extent(renderer)
        assert label.height <= bar.height + 6, (ax.yaxis.label.get_text(), label, bar)


def test_one_task_heatmap_keeps_its_colour_bar_labels_apart(one_task, tmp_path):
    """With one task row per panel the colour bars were shorter than their labels, which
    ran into each other and into the difference panel's title."""
    fig = drift_heatmaps(one_task.drift, one_task.comparison)
    save_figure(fig, tmp_path / "heatmap.png", dpi=100)
    assert_readable(fig)
    assert_colour_bar_labels_fit(fig)
    assert_colour_bar_labels_fit(drift_heatmaps(one_task.drift, None))
    assert tick_labels(data_axes(fig)[0], "y") == ["customer_…_holdout"]
    caption = next(s for s in catalog(one_task) if s.name == "drift_heatmaps").caption
    assert caption.endswith(f" Rows: customer_…_holdout = {LONG_TASK}.")


def test_captions_describe_only_what_is_drawn(one_task, res):
    from dataclasses import replace

    steps = next(s for s in catalog(res) if s.kind == "drift_over_steps").caption
    assert steps.endswith("one line per layer. 'final' is the saved final model; the dotted "
                          "segment marks an unrecorded gap.")  # fmt: skip

    specs = {spec.kind: spec for spec in catalog(one_task)}
    assert "(E: embeddings)" in specs["cross_layer_matrices"].caption  # the study has them
    cross = one_task.cross_layer
    blocks_only = replace(one_task, cross_layer=cross[
        (cross.layer_index >= 0) & (cross.base_layer != "embeddings")])  # fmt: skip
    spec = next(s for s in catalog(blocks_only) if s.kind == "cross_layer_matrices")
    assert "E: embeddings" not in spec.caption
    assert spec.caption.endswith("at the final checkpoint. A bright diagonal means layers kept "
                                 "their role.")  # fmt: skip
    assert "Dashed: drift between two seeds" in specs["drift_profile"].caption
    single = replace(one_task, noise_floor=one_task.noise_floor.iloc[0:0])
    spec = next(s for s in catalog(single) if s.kind == "drift_profile")
    assert "Dashed" not in spec.caption
    for spec in catalog(blocks_only):
        assert_readable(spec.draw())  # long task titles are elided, not cut off
