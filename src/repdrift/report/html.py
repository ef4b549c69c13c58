"""One self-contained HTML report of a results folder.

:func:`write_report` renders ``templates/report.html.j2`` (jinja2) into a single file with
inline CSS and figures embedded as base64 images: it opens offline, needs no JavaScript and
can be attached to an e-mail or a paper's supplement. The sentences come from
:func:`headlines`, the figures and captions from :func:`repdrift.plots.figures`.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from repdrift.analysis.seed_planner import plan_seeds, plan_sentence
from repdrift.common.atomic import atomic_write_bytes
from repdrift.errors import InputError
from repdrift.metrics import registry
from repdrift.metrics.cca import DIMENSIONALITY_RULES
from repdrift.plots.figures import FigureSpec, catalog, read_weights
from repdrift.plots.style import figure_bytes, method_name, metric_label
from repdrift.report.answer_sentence import study_answer
from repdrift.report.headlines import CORRECTION_NAMES, headlines
from repdrift.report.tables import (
    comparison_tables,
    drift_tables,
    metrics_table,
    run_flags,
    setup_table,
)
from repdrift.report.token_tables import token_section
from repdrift.store.results import Results, default_metric, load_results

logger = logging.getLogger(__name__)

__all__ = ["write_report"]


_EMBED_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}
#: Screen pixels per figure inch: 7-pt text shows at 13 px and two column-wide figures fit
#: side by side in the page width.
_CSS_PX_PER_INCH = 135
_REPORT_DPI = 200
#: Where the template's table of contents goes, and the sections it lists: every
#: ``<section id=...>`` whose first child is its ``<h2>`` heading.
_CONTENTS_MARK = "<!-- contents -->"
_SECTION = re.compile(r'<section id="([^"]+)"[^>]*>\s*<h2>(.*?)</h2>', re.DOTALL)


@dataclass(frozen=True)
class EmbeddedFigure:
    name: str
    caption: str
    mime: str
    data: str  # base64
    width_px: int


def _breakable(text: object) -> markupsafe.Markup:
    """Escaped text with a line-break opportunity (``<wbr>``) after each ``_`` and ``/``, so
    run names and paths wrap at their parts rather than mid-word in a narrow column."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(re.sub(r"([_/])(?=.)", r"\1<wbr>", escaped))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("repdrift.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails loudly, not blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["breakable"] = _breakable
    return env


def _draw(specs: list[FigureSpec]) -> list[EmbeddedFigure]:
    out = []
    for spec in specs:
        fig = spec.draw()
        width = fig.get_figwidth()
        data = figure_bytes(fig, "png", dpi=_REPORT_DPI)
        out.append(
            EmbeddedFigure(
                spec.name, spec.caption, "image/png", base64.b64encode(data).decode("ascii"),
                round(width * _CSS_PX_PER_INCH),
            )
        )  # fmt: skip
    return out


def _embed_files(files: Sequence[str | Path], specs: list[FigureSpec]) -> list[EmbeddedFigure]:
    captions = {spec.name: spec.caption for spec in specs}
    out = []
    for file in map(Path, files):
        mime = _EMBED_TYPES.get(file.suffix.lower())
        if mime is None:
            raise InputError(
                f"{file}: cannot embed {file.suffix or 'a file without suffix'} in HTML; "
                "pass PNG or SVG figures (repdrift plot --format png|svg)"
            )
        if not file.is_file():
            raise InputError(f"{file}: figure file not found")
        data = file.read_bytes()
        inches = _png_inches(data) if mime == "image/png" else None
        css = round(inches * _CSS_PX_PER_INCH) if inches else 472
        out.append(
            EmbeddedFigure(
                file.stem, captions.get(file.stem, file.stem), mime,
                base64.b64encode(data).decode("ascii"), min(css, 1050),
            )
        )  # fmt: skip
    return out


def _png_inches(data: bytes) -> float | None:
    """Width in inches of a PNG: IHDR pixel width over the pHYs density (matplotlib writes
    both); None when either is missing."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width = int.from_bytes(data[16:20], "big")
    at = data.find(b"pHYs", 0, 4096)
    if at < 0 or data[at + 12] != 1:  # unit 1 = pixels per metre
        return None
    per_metre = int.from_bytes(data[at + 4 : at + 8], "big")
    return width / (per_metre * 0.0254) if per_metre else None


def _with_contents(page: str) -> str:
    """The page with its table of contents filled in from its sections, so that every
    section (the token-level one included, when present) is listed and no entry points
    nowhere."""
    if page.count(_CONTENTS_MARK) != 1:
        raise RuntimeError(f"report template: expected one {_CONTENTS_MARK!r} placeholder")
    entries = "\n    ".join(
        f'<li><a href="#{anchor}">{heading}</a></li>' for anchor, heading in _SECTION.findall(page)
    )
    return page.replace(_CONTENTS_MARK, entries)


def _methods_context(results: Results, weights: Any, correction: str, alpha: float) -> dict:

    settings = results.summary.get("settings", {})
    metrics = list(settings.get("metrics", [])) or sorted(set(results.drift.get("metric", [])))

    def describe(name: str) -> str:
        try:
            text = registry.get(name).convention
        except InputError:  # an estimator this version does not know: name it only
            return "see the repdrift version that produced the results"
        rule = DIMENSIONALITY_RULES.get(name)
        return f"{text}; dimensionality: {rule}" if rule else text

    weights_info = None
    if weights is not None and not weights.empty:
        weights_info = {
            "k": sorted(int(k) for k in weights["k"].unique()) if "k" in weights else [],
            "epsilon": sorted(float(e) for e in weights["epsilon"].unique())
            if "epsilon" in weights
            else [],
        }
    return {
        "metrics": [(m, metric_label(m), describe(m)) for m in metrics],
        "resampled": list(settings.get("resampled", [])),
        "n_boot": settings.get("n_boot"),
        "n_perm": settings.get("n_perm"),
        "level": settings.get("level"),
        "seed": settings.get("seed"),
        "methods": list(settings.get("methods", [])),
        "cross_layer_metric": settings.get("cross_layer_metric"),
        "method_names": [method_name(m) for m in settings.get("methods", [])],
        "recorded": [
            (key, str(settings[key]))
            for key in ("interval", "null", "comparison", "correction")
            if settings.get(key)
        ],
        "headline_correction": CORRECTION_NAMES[correction],
        "alpha": alpha,
        "version": results.summary.get("repdrift_version", "unknown"),
        "seconds": results.summary.get("seconds"),
        "weights": weights_info,
    }


def _seed_plan(results: Results, metric: str, alpha: float) -> str | None:
    """The seed planner's line under the answer, or None when there is no seed-level answer."""
    try:
        return plan_sentence(plan_seeds(results, metric=metric, alpha=alpha))
    except InputError:
        return None


def write_report(
    results_path: str | Path | Results,
    out_html: str | Path,
    *,
    figures: Sequence[str | Path] | None = None,
    metric: str | None = None,
    correction: str = "p_holm",
    alpha: float = 0.05,
    title: str | None = None,
) -> Path:
    """Write one self-contained HTML report of a results folder.

    Parameters
    ----------
    results_path : str, Path or Results
        A results folder written by :func:`repdrift.analysis.compare_runs.compare` (its optional
        ``weights.parquet`` / ``weights.csv`` adds the weight-space figures), or loaded
        results.
    out_html : str or Path
        The file to write (atomically); its folder is created if needed.
    figures : sequence of paths, optional
        PNG or SVG files to embed instead of drawing the figures afresh (e.g. what
        :func:`repdrift.plots.plot_all` wrote); captions are matched by file stem.
    metric : str, optional
        Metric of the headlines, figures and tables (default ``cka_debiased`` when computed).
    correction : {"p_holm", "p_bh", "p"}
        p-value column that decides significance in the headlines, markers and bold rows.
    alpha : float
        Significance level.
    title : str, optional
        Page title (default: "repdrift report: " and the tasks).

    Returns
    -------
    Path
        ``out_html``.
    """
    if isinstance(results_path, Results):
        results = results_path
        weights = read_weights(results.path) if results.path is not None else None
    else:
        results = load_results(results_path)
        weights = read_weights(results_path)
    metric = metric or default_metric(results)
    text = headlines(results, metric=metric, correction=correction, alpha=alpha)
    answer = study_answer(results, metric=metric, correction=correction, alpha=alpha)
    seed_plan = _seed_plan(results, metric, alpha)
    specs = catalog(results, weights, metric=metric, correction=correction)
    embedded = _embed_files(figures, specs) if figures is not None else _draw(specs)
    level = results.summary.get("settings", {}).get("level")
    tables = {
        "setup": setup_table(results),
        "comparison": comparison_tables(results, metric, correction, alpha, level),
        "drift": drift_tables(results, metric),
        "metrics": metrics_table(results, correction, alpha),
        "tokens": token_section(results, metric),
        "flags": run_flags(results),
    }
    tasks = sorted(text)
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=title or f"repdrift report: {', '.join(tasks) or 'no tasks'}",
            metric=metric,
            metric_label=metric_label(metric),
            headlines=text,
            answer=answer,
            seed_plan=seed_plan,
            figures=embedded,
            tables=tables,
            methods=_methods_context(results, weights, correction, alpha),
            source=str(results.path) if results.path is not None else None,
        )
    )
    html = _with_contents(html)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, html.encode("utf-8"))
    logger.info("wrote %s (%d figures, %.0f kB)", out, len(embedded), len(html) / 1024)
    return out
