"""Console views of the CLI: rich tables of runs, drift, weights, plans and the headline.

Views only format what the API returned; they compute nothing. Drift and the method comparison
come from the headline stored in results.json (:mod:`repdrift.analysis.stored_headline`), the
one summary the report words too; numbers follow :func:`repdrift.common.display.number`.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from repdrift.common.display import STRUCTURAL_MARK, WITHIN_FLOOR_MARK, number

if TYPE_CHECKING:  # the CLI imports views at start-up; these pull in pandas and torch
    from repdrift.analysis.headline import Headline

#: Columns of the consoles when their output is piped or captured (rich's default there is 80,
#: which wraps every table); a terminal keeps its own width, and COLUMNS still decides.
PIPED_WIDTH = 200


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, width=PIPED_WIDTH if piped and "COLUMNS" not in os.environ else None)  # fmt: skip


console = _console()
err_console = _console(stderr=True)


def show_rows(title: str, rows: dict) -> None:
    # the title on its own line: a table's title is folded to the table's width
    console.print(escape(title), soft_wrap=True, highlight=False)
    table = Table(show_header=False)
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
            "max length": s.get("max_length"),
            "dtype": s.get("dtype"),
            "steps": ", ".join(map(str, s.get("steps") or [])),
            "format": s.get("format"),
            "size": f"{s.get('size_bytes', 0) / 2**20:.1f} MiB",
            "time": _step_times(s.get("seconds") or {}, s.get("chunks_done") or {}),
        },
    )


def _step_times(seconds: dict, chunks_done: dict) -> str | None:
    """``{0: 11.001}`` as "step 0: 11.0 s"; a partial step says so, with its chunks done."""
    parts = []
    for step, value in seconds.items():
        if step in chunks_done:
            parts.append(f"step {step}: not finished ({chunks_done[step]} chunk(s) done)")
        elif value is not None:
            parts.append(f"step {step}: {value:.1f} s")
    return ", ".join(parts) or None


def show_drift(h: Headline) -> None:
    """Mean drift over seeds per layer of each task × method (``h.layers``: each run's final
    step, the headline's metric); ``~`` marks drift within the seed noise floor, ``○`` a
    structural zero."""
    layers = h.layers
    if layers.empty:
        return
    columns = list(dict.fromkeys(zip(layers["task"], layers["method"], strict=True)))
    view = Table(title=f"mean drift (1 - {h.metric}) per layer")
    view.add_column("layer", justify="right")
    for task, method in columns:
        view.add_column(f"{task} {method}", justify="right")
    for index in sorted(set(layers["layer_index"])):
        cells = []
        for task, method in columns:
            r = h.layer(task, method, int(index))
            cells.append("" if r is None else _drift_cell(r))
        view.add_row(_layers([index]), *cells)
    console.print(view)
    notes = []
    if layers["within_floor"].any():
        notes.append(
            f"{WITHIN_FLOOR_MARK} within the seed noise floor (drift no larger than between two "
            "seeds of the method)"
        )
    if layers["structural_zero"].any():
        notes.append(f"{STRUCTURAL_MARK} unchanged in every seed (structural zero)")
    if notes:
        console.print("; ".join(notes), highlight=False, markup=False)


def _drift_cell(r: Any) -> str:
    mark = (
        f" {WITHIN_FLOOR_MARK}" if r["within_floor"]
        else f" {STRUCTURAL_MARK}" if r["structural_zero"] else ""
    )  # fmt: skip
    return escape(number(r["drift"], 4)) + mark


def show_weights(table: Any, written: list[Path]) -> None:
    """Per variant: mean relative change and effective rank over modules, the intruder count
    (of the k x modules examined slots) beside the count random directions would give and the
    mean share of the top-k energy in intruders; k and epsilon named in the title."""
    summary = table.groupby(["variant", "method"]).agg(
        modules=("module", "size"), rel_change=("rel_change", "mean"),
        effective_rank=("effective_rank", "mean"), intruders=("intruder_count", "sum"),
        slots=("k", "sum"),
        **({"null": ("intruder_null", "sum")} if "intruder_null" in table else {}),
        **({"energy": ("intruder_energy", "mean")} if "intruder_energy" in table else {}),
    )  # fmt: skip
    ks = "/".join(str(int(k)) for k in sorted(table["k"].unique()))
    eps = "/".join(f"{float(e):g}" for e in sorted(table["epsilon"].unique()))
    view = Table(
        title=f"weight-space drift (means over modules); intruders: top k = {ks} singular "
        f"vectors of W' per module, epsilon = {eps}",
        title_justify="left",
    )
    columns = ["variant", "method", "modules", "mean rel. change", "mean eff. rank",
               "intruder dims", "random dirs", "intruder energy"]  # fmt: skip
    for col in columns:
        view.add_column(col)
    for (variant, method), row in summary.iterrows():
        null = f"{row.null:.1f}" if "null" in summary else ""
        energy = number(row.energy, 2) if "energy" in summary else ""
        view.add_row(
            variant, method, str(int(row.modules)), f"{row.rel_change:.4g}",
            f"{row.effective_rank:.2f}", f"{int(row.intruders)} of {int(row.slots)}", null,
            energy,
        )  # fmt: skip
    console.print(view)
    console.print(
        "random dirs: intruders expected if the examined directions were random (same shapes, "
        "k, epsilon); a count near it has saturated. intruder energy: mean share of the top-k "
        "energy (squared singular values of W') in intruder directions.",
        highlight=False,
        markup=False,
    )
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
        cells = [f"{number(row[m], 4)} [{number(top[m], 4)}]" for m in methods]
        if not h.accuracy.empty and task in h.accuracy.index:
            acc = h.accuracy.loc[task]
            cells.append(", ".join(f"{m} {acc[m]:.2f}" for m in acc.index if not math.isnan(acc[m])))
        elif not h.accuracy.empty:
            cells.append("")
        view.add_row(task, *cells)
    console.print(view)
    for _, r in h.methods.iterrows():
        d = r["mean_diff"]
        verdict = "less than" if d < 0 else "more than" if d > 0 else "as much as"
        significant = _layers(r["layers_significant"]) or "none"
        line = (
            f"{r['task']}: {r['method_a']} drifts {verdict} {r['method_b']} "
            f"({number(r['drift_a'], 4)} vs {number(r['drift_b'], 4)}); {r['method_a']} lower "
            f"in layers [{_layers(r['layers_a_less']) or 'none'}]; interval of the "
            f"difference excludes 0 in [{_layers(r['layers_interval_excludes_zero'])}]; "
            f"significant {_CORRECTED[h.correction]}: {significant} "
            f"({r['n_seeds_a']} vs {r['n_seeds_b']} seeds)"
        )
        if zeros := h.structural(str(r["task"])):
            line += f"; structural zeros, left out: {_by_method(zeros)}"
        # "[emb, 0, 1]" is text, not a style tag
        console.print(line, highlight=False, markup=False)
    for task in h.tasks:
        within = h.within_floor(task)
        if not within:
            continue
        parts = []
        for method, indices in within.items():
            values = ", ".join(
                f"{_layers([i])}: {number(r['drift'], 4)} <= {number(r['floor'], 4)}"
                for i in indices
                if (r := h.layer(task, method, i)) is not None
            )
            parts.append(f"{method} layers [{_layers(indices)}] ({values})")
        console.print(
            f"{task}: within seed noise (drift <= the seed floor, drift between two seeds of "
            f"the method): {'; '.join(parts)}",
            highlight=False,
            markup=False,
        )


def _by_method(layers: dict[str, list[int]]) -> str:
    """``{"lora": [-1, 0]}`` → ``emb, 0 (lora)``."""
    return "; ".join(f"{_layers(indices)} ({method})" for method, indices in layers.items())
