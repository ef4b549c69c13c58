"""The ``repdrift`` command line: a thin typer layer over the Python API.

Every command parses its options, calls one API function and prints the result. Shared
behaviour lives in the app callback: ``--quiet`` (warnings only), ``--debug`` (tracebacks),
``--version``. A :class:`~repdrift.errors.RepdriftError` is printed as one line on stderr and the
process exits with status 2; the traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from repdrift.common.version import __version__
from repdrift.errors import RepdriftError

app = typer.Typer(
    name="repdrift",
    help="Extract layer-wise representations and measure how fine-tuning moved them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"repdrift {__version__}")
        raise typer.Exit()


@app.callback()
def _common(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only print warnings and errors."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks and debug logs."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Extract layer-wise representations and measure how fine-tuning moved them."""
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    # Third-party libraries stay at WARNING unless --debug.
    for name in ("transformers", "datasets", "peft", "urllib3", "filelock", "matplotlib"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    # Our own rich bars cover the long stages; the libraries' tqdm bars would interleave.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def quiet() -> bool:
    """True when the user asked for ``--quiet`` (commands then hide progress bars)."""
    return logging.getLogger().level > logging.INFO


def _parse_layers(spec: str | None) -> list[int | str] | str | None:
    """``"0,3,embeddings"`` → ``[0, 3, "embeddings"]``; ``"all"`` (embeddings and every block)
    passes through; None → every block."""
    if spec is None or spec.strip() == "all":
        return None if spec is None else "all"
    return [
        int(p) if p.strip().lstrip("-").isdigit() else p.strip()
        for p in spec.split(",")
        if p.strip()
    ]


def _show(title: str, rows: dict) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():
        if value not in (None, {}, []):
            table.add_row(key, escape(str(value)))
    console.print(table)


@app.command()
def extract(
    model: str = typer.Argument(..., help="Model folder, hub id, or LoRA adapter folder."),
    task: str = typer.Option(
        ...,
        "--task",
        "-t",
        help="Task preset (sst2, mrpc, rte, squad_v2, demo-sst, demo-pair) or a name for --data.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory to write (re-running resumes)."
    ),
    base: str | None = typer.Option(None, help="Base model of a full fine-tune or adapter."),
    data: Path | None = typer.Option(None, help="Local CSV / JSONL / parquet / saved dataset."),
    samples: int = typer.Option(750, help="Validation samples to draw (fewer available: all)."),
    seed: int = typer.Option(0, help="Seed of the sample choice."),
    split: str | None = typer.Option(None, help="Dataset split (default: the preset's)."),
    pooling: str = typer.Option("mean", help="mean | first | last | max | tokens."),
    layers: str | None = typer.Option(
        None,
        help="Comma-separated layer indices and/or 'embeddings', or 'all' (embeddings too); default: every block.",
    ),
    batch_size: int = typer.Option(32, help="Sequences per forward pass."),
    max_tokens: int | None = typer.Option(None, help="Cap on padded tokens per batch."),
    dtype: str = typer.Option("float32", help="float32 | bfloat16 | float16."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N."),
    format: str = typer.Option(
        "safetensors", "--format", help="safetensors | pt (for old scripts)."
    ),
    checkpoints: bool = typer.Option(
        False, help="Also extract the checkpoint-N folders into step_N."
    ),
    base_out: Path | None = typer.Option(
        None, help="LoRA only: also write the base representations (adapter disabled) here."
    ),
    trust_remote_code: bool = typer.Option(
        False, help="Allow custom model code from the model folder."
    ),
) -> None:
    """Extract every layer's representations of fixed validation samples into a run directory."""
    from repdrift.extraction.api import extract as run_extract
    from repdrift.store.reader import run_summary

    path = run_extract(
        model, task=task, out=out, base=base, data=data, samples=samples, seed=seed, split=split,
        pooling=pooling, layers=_parse_layers(layers), batch_size=batch_size, max_tokens=max_tokens,
        dtype=dtype, device=device, format=format, checkpoints=checkpoints, base_out=base_out,
        trust_remote_code=trust_remote_code, progress=not quiet(),
    )  # fmt: skip
    if not quiet():
        _show_summary(run_summary(path))


def _show_summary(s: dict) -> None:
    dims = sorted(set((s.get("dims") or {}).values()))
    _show(
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


@app.command()
def inspect(
    run: Path = typer.Argument(..., help="Run directory."),
    verify: bool = typer.Option(
        False, "--verify", help="Check every file's sha256 against the manifest."
    ),
) -> None:
    """Summarise a run directory; with --verify, check every file (exit 1 on any problem)."""
    from repdrift.errors import IntegrityError
    from repdrift.store.reader import run_summary, verify_run

    if not run.exists():
        raise IntegrityError(f"{run}: no such run directory")
    summary = run_summary(run)
    _show_summary(summary)
    problems = verify_run(run) if verify else summary["problems"]
    for problem in problems:
        err_console.print(f"[red]problem:[/] {escape(problem)}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    if verify:
        console.print("[green]verified:[/] every file matches its sha256 in the manifest")


@app.command()
def compare(
    runs: list[Path] = typer.Argument(
        ..., help="A base run per task and its fine-tuned runs (REF RUN [RUN ...])."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Results folder to write."),
    metric: list[str] = typer.Option(
        ["cka_debiased", "cka_linear", "cosine", "procrustes"],
        "--metric",
        "-m",
        help="Similarity measure (repeat for several).",
    ),
    n_boot: int = typer.Option(1000, help="Half-sample replicates per layer (0: no intervals)."),
    n_perm: int = typer.Option(1000, help="Shuffled pairings per layer (0: no null)."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    cross_layer_metric: str = typer.Option(
        "cka_debiased", help="Metric of the cross-layer matrices."
    ),
) -> None:
    """Per-layer drift of fine-tuned runs from their base run, with intervals and tests."""
    from repdrift.analysis.compare_runs import compare as run_compare

    results = run_compare(
        runs, out=out, metrics=metric, n_boot=n_boot, n_perm=n_perm, level=level, seed=seed,
        cross_layer_metric=cross_layer_metric, progress=not quiet(),
    )  # fmt: skip
    if not quiet():
        _show_drift(results)
        console.print(
            f"results written to [bold]{escape(str(out))}[/] ({results.summary['seconds']} s)"
        )


def _show_drift(results) -> None:
    drift = results.drift
    final = drift[drift["step"] == drift.groupby("run")["step"].transform("min")]
    metric = final["metric"].iloc[0]
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


@app.command()
def weights(
    base: str = typer.Argument(..., help="Base model folder."),
    variants: list[Path] = typer.Argument(
        ..., help="Full fine-tuned checkpoint and/or LoRA adapter folders."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Table to write (.csv or .parquet), or a results folder (writes weights.csv and weights.parquet there).",
    ),
    k: int = typer.Option(10, help="Top singular vectors examined for intruder dimensions."),
    epsilon: float = typer.Option(
        0.5, help="Intruder threshold on the best |cosine| with the base's singular vectors."
    ),
    modules: str | None = typer.Option(
        None, help="Comma-separated module names (default: every linear module)."
    ),
    device: str = typer.Option("cpu", help="Where the SVDs run."),
) -> None:
    """Weight-space drift: relative change, spectra, effective rank, intruder dimensions."""
    from repdrift.weights import weight_drift

    table = weight_drift(
        base, variants, k=k, epsilon=epsilon, device=device, progress=not quiet(),
        modules=[m.strip() for m in modules.split(",")] if modules else None,
    )  # fmt: skip
    written = _write_table(table, out, "weights")
    if not quiet():
        summary = table.groupby(["variant", "method"]).agg(
            modules=("module", "size"), rel_change=("rel_change", "mean"),
            effective_rank=("effective_rank", "mean"), intruders=("intruder_count", "sum"),
        )  # fmt: skip
        view = Table(title="weight-space drift (means over modules)")
        for col in (
            "variant",
            "method",
            "modules",
            "mean rel. change",
            "mean eff. rank",
            "intruder dims",
        ):
            view.add_column(col)
        for (variant, method), row in summary.iterrows():
            view.add_row(
                variant,
                method,
                str(row.modules),
                f"{row.rel_change:.4g}",
                f"{row.effective_rank:.2f}",
                str(row.intruders),
            )
        console.print(view)
        console.print(f"written: {', '.join(map(str, written))}")


@app.command()
def plot(
    results: Path = typer.Argument(..., help="Results folder written by `repdrift compare`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the figures."),
    format: str = typer.Option("png", "--format", help="png | pdf | svg."),
    metric: str | None = typer.Option(
        None, help="Metric of the drift figures (default: cka_debiased)."
    ),
    dpi: int = typer.Option(300, help="Resolution of png figures."),
) -> None:
    """Draw every figure the results support (drift profiles, heatmaps, matrices, ...)."""
    from repdrift.plots import plot_all

    written = plot_all(results, out, format=format, dpi=dpi, metric=metric)
    if not quiet():
        console.print(f"{len(written)} figures written to [bold]{escape(str(out))}[/]")
        for path in written:
            console.print(f"  {escape(path.name)}")


@app.command()
def report(
    results: Path = typer.Argument(..., help="Results folder written by `repdrift compare`."),
    out: Path = typer.Option(..., "--out", "-o", help="HTML file to write."),
    metric: str | None = typer.Option(
        None, help="Metric of the headlines and figures (default: cka_debiased)."
    ),
    title: str | None = typer.Option(None, help="Title of the report."),
) -> None:
    """Write one self-contained HTML report (figures embedded, no network needed)."""
    from repdrift.report.html import write_report

    path = write_report(results, out, metric=metric, title=title)
    if not quiet():
        console.print(f"report written to [bold]{escape(str(path))}[/]")


@app.command()
def train(
    task: str = typer.Option(
        ...,
        "--task",
        "-t",
        help="Task preset (sst2, mrpc, rte, squad_v2, demo-sst, demo-pair) or a name for --data.",
    ),
    method: str = typer.Option(..., "--method", help="full | lora."),
    model: str = typer.Option(..., "--model", "-m", help="Base model folder or hub id."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the checkpoint or adapter."),
    seed: int = typer.Option(42, help="Training seed."),
    data: Path | None = typer.Option(
        None, help="Local training data (CSV / JSONL / parquet / saved dataset)."
    ),
    epochs: float | None = typer.Option(None, help="Epochs (default: the recipe's)."),
    max_steps: int | None = typer.Option(None, help="Stop after this many optimiser steps."),
    lr: float | None = typer.Option(None, help="Learning rate (default: per method)."),
    batch_size: int = typer.Option(16, help="Training batch size."),
    rank: int = typer.Option(8, help="LoRA rank r."),
    alpha: int = typer.Option(16, help="LoRA alpha."),
    target_modules: str | None = typer.Option(
        None, help="Comma-separated LoRA target modules (default: attention projections)."
    ),
    save_steps: int | None = typer.Option(
        None, help="Also save checkpoint-N folders every N steps."
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
) -> None:
    """Fine-tune a model (full or LoRA) with a thin transformers/peft recipe."""
    from repdrift.training.recipe import train as run_train

    path = run_train(
        task=task, method=method, model=model, out=out, seed=seed, data=data, epochs=epochs,
        max_steps=max_steps, lr=lr, batch_size=batch_size, rank=rank, alpha=alpha,
        target_modules=[m.strip() for m in target_modules.split(",")] if target_modules else None,
        save_steps=save_steps, device=device, progress=not quiet(),
    )  # fmt: skip
    if not quiet():
        console.print(f"saved to [bold]{escape(str(path))}[/]")


def _write_table(table, out: Path, name: str) -> list[Path]:
    """Write ``table`` to ``out`` (.csv or .parquet), or as name.csv + name.parquet in a folder."""
    from repdrift.common.atomic import atomic_write_with

    targets = (
        [out]
        if out.suffix in (".csv", ".parquet")
        else [out / f"{name}.csv", out / f"{name}.parquet"]
    )
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.suffix == ".csv":
            atomic_write_with(target, lambda tmp: table.to_csv(tmp, index=False))
        else:
            atomic_write_with(target, lambda tmp: table.to_parquet(tmp, index=False))
    return targets


# --------------------------------------------------------------------------- studies


def _short(path: str | Path) -> str:
    """A path relative to the current directory when it is below it (plan tables stay narrow)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_STATUS_STYLE = {
    "done": "green",
    "partial": "yellow",
    "todo": "cyan",
    "missing": "red",
    "stale": "red",
    "invalid": "red",
    "off": "dim",
}


def _show_plan(plan) -> None:
    exp = plan.experiment
    shard = f", shard {plan.shard[0]}/{plan.shard[1]}" if plan.shard else ""
    view = Table(
        title=f"plan of {exp.name}{shard} (output {_short(exp.output)})", title_justify="left"
    )
    for col in ("job", "task", "method", "seed", "model", "output", "status"):
        view.add_column(col, overflow="fold", no_wrap=col in ("job", "status"))
    given = {exp.base_model: exp.base_model_label} if exp.base_model else {}
    for row in plan.rows():
        status = row["status"]
        style = _STATUS_STYLE.get(status, "")
        shown = f"[{style}]{status}[/]" if style else status
        if not row["selected"]:
            shown = f"[dim]{status} (other shard)[/]"
        job = row["kind"] + (f" step {row['step']}" if row["step"] else "")
        model = given.get(row["model"]) or _short(row["model"])
        view.add_row(
            job, escape(row["task"]), row["method"],
            "" if row["seed"] is None else str(row["seed"]), escape(model),
            escape(_short(row["output"])), shown,
        )  # fmt: skip
    for stage, status in plan.stages.items():
        shown = (
            "[dim]not run by a shard[/]"
            if plan.shard
            else f"[{_STATUS_STYLE.get(status, '')}]{status}[/]"
        )
        view.add_row(stage, "", "", "", "", "", shown)
    console.print(view)


def _show_headline(results_dir: Path) -> None:
    import pandas as pd

    from repdrift.analysis.headline import headline
    from repdrift.store.results import load_results

    h = headline(load_results(results_dir))
    view = Table(
        title=f"mean drift (1 - {h.metric}) over layers and seeds; top layer in brackets",
        title_justify="left",
    )
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
            cells.append(", ".join(f"{m} {acc[m]:.2f}" for m in acc.index if pd.notna(acc[m])))
        elif not h.accuracy.empty:
            cells.append("")
        view.add_row(task, *cells)
    console.print(view)
    for _, r in h.methods.iterrows():
        verdict = "less" if r["mean_diff"] < 0 else "more"
        significant = ", ".join(map(str, r["layers_significant"])) or "none"
        console.print(
            f"{r['task']}: {r['method_a']} drifts {verdict} than {r['method_b']} "
            f"({r['drift_a']:.4f} vs {r['drift_b']:.4f}); {r['method_a']} lower in layers "
            f"[{', '.join(map(str, r['layers_a_less'])) or 'none'}]; interval of the "
            f"difference excludes 0 in [{', '.join(map(str, r['layers_interval_excludes_zero']))}]; "
            f"significant after Holm: {significant} ({r['n_seeds_a']} vs {r['n_seeds_b']} seeds)",
            highlight=False,
        )


def _run_study(
    exp, *, executor: str, ray_address: str | None, shard: str | None, dry_run: bool
) -> None:
    from repdrift.runner.study import execute, make_plan

    plan = make_plan(exp, shard=shard)
    if not quiet() or dry_run:
        _show_plan(plan)
    if dry_run:
        return
    result = execute(
        plan,
        executor=executor,
        ray_address=ray_address,
        progress=not quiet(),  # type: ignore[arg-type]
    )
    if quiet():
        return
    console.print(f"jobs run: {len(result.outcome.ran)}, already done: {len(result.skipped)}")
    if result.analysis_skipped == "shard":
        console.print(
            "shard finished; the analysis is not run by a shard. When every shard has "
            "finished, run the same command without --shard: it runs what is left, then the "
            "analysis, figures and report."
        )
        return
    console.print(", ".join(f"{k}: {v}" for k, v in result.stages.items()))
    _show_headline(exp.results_dir)
    console.print(f"results: [bold]{escape(_short(exp.results_dir))}[/]")
    if result.report is not None:
        console.print(f"report: [bold]{escape(_short(result.report))}[/]")


@app.command()
def run(
    experiment: Path = typer.Argument(..., help="Experiment file (YAML)."),
    executor: str = typer.Option("local", help="local | ray (each job a Ray task)."),
    ray_address: str | None = typer.Option(
        None, help="Address of a running Ray cluster (default: start a local one)."
    ),
    shard: str | None = typer.Option(
        None, help="i/n: run only shard i (0-based) of n of the jobs, without the analysis."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and exit."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: the experiment's `output`)."
    ),
) -> None:
    """Run a study: train missing variants, extract, compare, weights, figures, report."""
    from repdrift.runner.experiment_file import load_experiment

    exp = load_experiment(experiment, output=out)
    _run_study(exp, executor=executor, ray_address=ray_address, shard=shard, dry_run=dry_run)


@app.command()
def demo(
    out: Path = typer.Option(Path("repdrift-demo"), "--out", "-o", help="Output folder."),
    quick: bool = typer.Option(
        False, "--quick", help="Reduced study (one task, fewer steps, samples, resamples)."
    ),
    executor: str = typer.Option("local", help="local | ray."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and exit."),
) -> None:
    """The bundled MiniLM fine-tuned (full and LoRA) on the bundled tasks, end to end.

    Runs on the GPU when there is one. On a CPU shared with other work, OMP_NUM_THREADS=1
    avoids oversubscribed BLAS threads (several times faster there).
    """
    import time

    from repdrift.demo import demo_experiment

    started = time.perf_counter()
    exp = demo_experiment(out, quick=quick)
    _run_study(exp, executor=executor, ray_address=None, shard=None, dry_run=dry_run)
    if not quiet() and not dry_run:
        console.print(f"demo finished in {time.perf_counter() - started:.0f} s")


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=True)
    except RepdriftError as exc:
        if _state["debug"]:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; finished files are kept, re-run the command to resume")
        sys.exit(130)

