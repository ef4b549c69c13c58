"""Console views of the CLI: rich tables of runs, drift, weights, plans and the headline.

Views only format what the API returned; they compute nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the CLI imports views at start-up; these pull in pandas and torch
    import pandas as pd

    from repdrift.analysis.headline import Headline

console = Console()
err_console = Console(stderr=True)


def show_rows(title: str, rows: dict) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():
        if value not in (None, {}, []):
            table.add_row(key, escape(str(value)))
    console.print(table)


def show_run_summary(s: dict) -> None:
    dims = sorted(set((s.get("dims") or {}).values()))
    show_rows(
        f"run {s['path']}",
        {
            "status": s.get("status"),
            "kind": s.get("kind"),
            "model": s.get("model"),
            "base": s.get("base"),
            "adapter": s.get("adapter"),
            "task": f"{s.get('task')} ({s.get('split')})" if s.get("task") else None,
            "samples": s.get("n_samples"),
            "layers": f"{len(s.get('layers') or [])} ({', '.join((s.get('layers') or [])[:3])}, ...)"
            if s.get("layers")
            else None,
            "dims": ", ".join(map(str, dims)) or None,
            "pooling": s.get("pooling"),
            "steps": ", ".join(map(str, s.get("steps") or [])),
            "format": s.get("format"),
            "size": f"{s.get('size_bytes', 0) / 2**20:.1f} MiB",
            "seconds": s.get("seconds"),
        },
    )


def show_drift(final: pd.DataFrame, metric: str) -> None:
    """Mean drift per layer of each task × method for ``metric``; ``final``: the drift rows
    at each run's final step (:func:`repdrift.store.results.final_step`, the rows the
    headline, the figures and the report show)."""
    table = final[final["metric"] == metric].pivot_table(
        index="layer_index", columns=["task", "method"], values="drift", aggfunc="mean"
    )
    view = Table(title=f"mean drift (1 - {metric}) per layer")
    view.add_column("layer", justify="right")
    for task, method in table.columns:
        view.add_column(f"{task} {method}", justify="right")
    for layer, row in table.iterrows():
        view.add_row(str(layer), *(f"{v:.4f}" for v in row))
    console.print(view)


def show_weights(table: Any, written: list[Path]) -> None:
    summary = table.groupby(["variant", "method"]).agg(
        modules=("module", "size"), rel_change=("rel_change", "mean"),
        effective_rank=("effective_rank", "mean"), intruders=("intruder_count", "sum"),
    )  # fmt: skip
    view = Table(title="weight-space drift (means over modules)")
    for col in ("variant", "method", "modules", "mean rel. change", "mean eff. rank", "intruder dims"):
        view.add_column(col)
    for (variant, method), row in summary.iterrows():
        view.add_row(
            variant, method, str(row.modules), f"{row.rel_change:.4g}",
            f"{row.effective_rank:.2f}", str(row.intruders),
        )  # fmt: skip
    console.print(view)
    console.print(f"written: {', '.join(map(str, written))}")


def short_path(path: str | Path) -> str:
    """A path relative to the current directory when it is below it (plan tables stay narrow)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


STATUS_STYLE = {
    "done": "green",
    "partial": "yellow",
    "todo": "cyan",
    "missing": "red",
    "stale": "red",
    "invalid": "red",
    "off": "dim",
}


def show_plan(plan: Any) -> None:
    exp = plan.experiment
    shard = f", shard {plan.shard[0]}/{plan.shard[1]}" if plan.shard else ""
    view = Table(
        title=f"plan of {exp.name}{shard} (output {short_path(exp.output)})", title_justify="left"
    )
    for col in ("job", "task", "method", "seed", "model", "output", "status"):
        view.add_column(col, overflow="fold", no_wrap=col in ("job", "status"))
    given = {exp.base_model: exp.base_model_label} if exp.base_model else {}
    for row in plan.rows():
        status = row["status"]
        style = STATUS_STYLE.get(status, "")
        shown = f"[{style}]{status}[/]" if style else status
        if not row["selected"]:
            shown = f"[dim]{status} (other shard)[/]"
        job = row["kind"] + (f" step {row['step']}" if row["step"] else "")
        model = given.get(row["model"]) or short_path(row["model"])
        view.add_row(
            job, escape(row["task"]), row["method"],
            "" if row["seed"] is None else str(row["seed"]), escape(model),
            escape(short_path(row["output"])), shown,
        )  # fmt: skip
    for stage, status in plan.stages.items():
        shown = (
            "[dim]not run by a shard[/]"
            if plan.shard
            else f"[{STATUS_STYLE.get(status, '')}]{status}[/]"
        )
        view.add_row(stage, "", "", "", "", "", shown)
    console.print(view)


_CORRECTED = {"p_holm": "after Holm", "p_bh": "after Benjamini–Hochberg", "p": "unadjusted"}


def _layers(indices: Any) -> str:
    return ", ".join("emb" if int(i) < 0 else str(int(i)) for i in indices)


def show_headline(h: Headline) -> None:
    """The study's headline (:func:`repdrift.analysis.headline.headline`): mean drift per task
    and method, and the method comparison; ``emb`` is the embedding output."""
    view = Table(
        title=f"mean drift (1 - {h.metric}) over layers and seeds; top layer in brackets",
        title_justify="left",
    )
    console.print(h.study_line(), highlight=False, markup=False)
    view.add_column("task")
    methods = list(h.mean_drift.columns)
    for method in methods:
        view.add_column(method, justify="right")
    if not h.accuracy.empty:
        view.add_column("validation accuracy", justify="right")
    for task, row in h.mean_drift.iterrows():
        top = h.top_layer_drift.loc[task]
        cells = [f"{row[m]:.4f} [{top[m]:.4f}]" for m in methods]
        if not h.accuracy.empty and task in h.accuracy.index:
            acc = h.accuracy.loc[task]
            cells.append(", ".join(f"{m} {acc[m]:.2f}" for m in acc.index if not math.isnan(acc[m])))
        elif not h.accuracy.empty:
            cells.append("")
        view.add_row(task, *cells)
    console.print(view)
    for _, r in h.methods.iterrows():
        verdict = "less" if r["mean_diff"] < 0 else "more"
        significant = _layers(r["layers_significant"]) or "none"
        console.print(
            f"{r['task']}: {r['method_a']} drifts {verdict} than {r['method_b']} "
            f"({r['drift_a']:.4f} vs {r['drift_b']:.4f}); {r['method_a']} lower in layers "
            f"[{_layers(r['layers_a_less']) or 'none'}]; interval of the "
            f"difference excludes 0 in [{_layers(r['layers_interval_excludes_zero'])}]; "
            f"significant {_CORRECTED[h.correction]}: {significant} "
            f"({r['n_seeds_a']} vs {r['n_seeds_b']} seeds)",
            highlight=False,
            markup=False,  # "[emb, 0, 1]" is text, not a style tag
        )
