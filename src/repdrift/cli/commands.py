"""The ``repdrift`` commands: each parses its options, calls one API function, shows the result.

The API modules are imported inside each command, on purpose: they pull in torch, transformers
and pandas, and ``repdrift --help`` or ``repdrift inspect`` should not wait for that. These are
the only function-local imports of the package besides the lazy public names of ``repdrift``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from repdrift.analysis.settings import AnalysisSettings
from repdrift.cli.app import app, main, quiet, setting_help
from repdrift.cli.views import (
    console,
    err_console,
    show_drift,
    show_headline,
    show_run_summary,
    show_weights,
)
from repdrift.common.settings import default, help_text
from repdrift.errors import IntegrityError
from repdrift.extraction.options import ExtractionOptions
from repdrift.models.sources import BUNDLED_HELP
from repdrift.tasks.settings import SampleSettings

__all__ = ["app", "main"]


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


# The data's column roles and token budget: the same options on extract and train, with the
# help text of SampleSettings (the one home of the sample settings).
TextFields = Annotated[str | None, typer.Option(help=help_text(SampleSettings, "text_fields"))]
IdField = Annotated[str | None, typer.Option(help=help_text(SampleSettings, "id_field"))]
LabelField = Annotated[str | None, typer.Option(help=help_text(SampleSettings, "label_field"))]
MaxLength = Annotated[int | None, typer.Option(min=2, help=help_text(SampleSettings, "max_length"))]


def _metric_params(given: list[str]) -> dict[str, dict[str, Any]] | None:
    """``["cka_rbf.sigma=0.5"]`` → ``{"cka_rbf": {"sigma": 0.5}}`` (values read as JSON when
    they parse, else kept as text)."""
    params: dict[str, dict[str, Any]] = {}
    for item in given:
        name, sep, value = item.partition("=")
        metric, dot, param = name.strip().partition(".")
        if not (sep and dot and metric and param):
            raise typer.BadParameter(
                f"{item!r} is not METRIC.PARAM=VALUE (e.g. cka_rbf.sigma=0.5)",
                param_hint="--metric-param",
            )
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value.strip()
        params.setdefault(metric, {})[param.strip()] = parsed
    return params or None


@app.command()
def extract(
    model: str = typer.Argument(
        ..., help=f"Model folder, hub id, LoRA adapter folder, or {BUNDLED_HELP}."
    ),
    task: str = typer.Option(..., "--task", "-t", help=help_text(SampleSettings, "task")),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory to write (re-running resumes)."
    ),
    base: str | None = typer.Option(
        None, help="Base model of a full fine-tune or adapter (folder, hub id or bundled:minilm)."
    ),
    data: Path | None = typer.Option(None, help=help_text(SampleSettings, "data")),
    samples: int = typer.Option(
        default(SampleSettings, "n"), min=1, help=help_text(SampleSettings, "n")
    ),
    seed: int = typer.Option(
        default(SampleSettings, "seed"), help=help_text(SampleSettings, "seed")
    ),
    split: str | None = typer.Option(None, help=help_text(SampleSettings, "split")),
    text_fields: TextFields = None,
    id_field: IdField = None,
    label_field: LabelField = None,
    max_length: MaxLength = None,
    pooling: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "pooling")),
    layers: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "layers")),
    batch_size: int | None = typer.Option(
        None, min=1, help=setting_help(ExtractionOptions, "batch_size")
    ),
    max_tokens: int | None = typer.Option(
        None, min=1, help=setting_help(ExtractionOptions, "max_tokens")
    ),
    dtype: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "dtype")),
    device: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "device")),
    device_map: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "device_map")),
    max_memory: str | None = typer.Option(None, help=setting_help(ExtractionOptions, "max_memory")),
    offload_folder: Path | None = typer.Option(
        None, help=setting_help(ExtractionOptions, "offload_folder")
    ),
    format: str | None = typer.Option(
        None, "--format", help=setting_help(ExtractionOptions, "format")
    ),
    checkpoints: bool = typer.Option(
        False, help="Also extract the checkpoint-N folders into step_N."
    ),
    base_out: Path | None = typer.Option(
        None, help="LoRA only: also write the base representations (adapter disabled) here."
    ),
    trust_remote_code: bool = typer.Option(
        default(ExtractionOptions, "trust_remote_code"),
        help=help_text(ExtractionOptions, "trust_remote_code"),
    ),
    final_norm: bool | None = typer.Option(
        None, "--final-norm/--no-final-norm", help=setting_help(ExtractionOptions, "final_norm")
    ),
) -> None:
    """Extract every layer's representations of fixed validation samples into a run directory."""
    from repdrift.extraction.request import check_request
    from repdrift.store.reader import run_summary

    # the settings: what is not given keeps the settings objects' defaults (bad values: one line)
    options = ExtractionOptions.build(
        pooling=pooling, layers=_parse_layers(layers), batch_size=batch_size,
        max_tokens=max_tokens, dtype=dtype, device=device, format=format,
        trust_remote_code=trust_remote_code, device_map=device_map, max_memory=max_memory,
        offload_folder=offload_folder, final_norm=final_norm,
    )  # fmt: skip
    settings = SampleSettings.build(
        task=task, data=data, n=samples, seed=seed, split=split, text_fields=text_fields,
        id_field=id_field, label_field=label_field, max_length=max_length,
    )  # fmt: skip
    # the samples are read once; a run already complete for this very call returns before
    # torch is even imported
    request = check_request(model, out=out, samples=settings, options=options, base=base)
    if request.needs_model(base_out=base_out, checkpoints=checkpoints):
        from repdrift.extraction.api import extract_request  # torch, transformers

        extract_request(request, checkpoints=checkpoints, base_out=base_out, progress=not quiet())
    if not quiet():
        show_run_summary(run_summary(out))


@app.command()
def inspect(
    run: Path = typer.Argument(..., help="Run directory."),
    verify: bool = typer.Option(
        False, "--verify", help="Check every file's sha256 against the manifest."
    ),
) -> None:
    """Summarise a run directory; with --verify, check every file (exit 1 on any problem)."""
    from repdrift.store.reader import run_summary
    from repdrift.store.steps import verify_run

    if not run.exists():
        raise IntegrityError(f"{run}: no such run directory")
    summary = run_summary(run)
    show_run_summary(summary)
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
        ..., help="REF RUN...: the reference first (unless --ref), then the runs compared with it."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Results folder to write."),
    ref: list[Path] = typer.Option([], "--ref", help="Reference run (repeat: one per task)."),
    allow_foreign_reference: bool = typer.Option(
        False, help=help_text(AnalysisSettings, "allow_foreign_reference")
    ),
    allow_different_inputs: bool = typer.Option(
        False,
        help=help_text(AnalysisSettings, "allow_different_inputs")
        + " Other tokenizer, max length, text fields, truncation or padding side are refused "
        "otherwise; e.g. a study of max lengths.",
    ),
    metric: list[str] = typer.Option(
        list(default(AnalysisSettings, "metrics")),
        "--metric",
        "-m",
        help=help_text(AnalysisSettings, "metrics"),
    ),
    metric_param: list[str] = typer.Option(
        [],
        "--metric-param",
        help="A metric's parameter other than its default, METRIC.PARAM=VALUE (repeat), "
        "e.g. cka_rbf.sigma=0.5.",
    ),
    n_boot: int | None = typer.Option(None, help=setting_help(AnalysisSettings, "n_boot")),
    n_perm: int | None = typer.Option(None, help=setting_help(AnalysisSettings, "n_perm")),
    level: float | None = typer.Option(None, help=setting_help(AnalysisSettings, "level")),
    seed: int | None = typer.Option(None, help=setting_help(AnalysisSettings, "seed")),
    cross_layer_metric: str | None = typer.Option(
        None, help=setting_help(AnalysisSettings, "cross_layer_metric")
    ),
    resample: list[str] = typer.Option(
        [], "--resample", help=help_text(AnalysisSettings, "resampled") + " Repeat for several."
    ),
    device: str | None = typer.Option(None, help=setting_help(AnalysisSettings, "device")),
    token_blocks: int | None = typer.Option(
        None,
        help=setting_help(AnalysisSettings, "token_blocks"),
        rich_help_panel="Token-level runs",
    ),
    token_null: int | None = typer.Option(
        None,
        help=help_text(AnalysisSettings, "token_null") + " Whole samples re-paired within groups "
        "of nearly equal length, one pass over the tokens each: it tests whether tokens keep "
        "their sample's information beyond position (not drift); p >= 1/(N+1). Default: "
        f"{default(AnalysisSettings, 'token_null')}.",
        rich_help_panel="Token-level runs",
    ),
) -> None:
    """Per-layer drift of runs from their reference run, with intervals and tests."""
    from repdrift.analysis.compare_runs import compare as run_compare
    from repdrift.analysis.stored_headline import headline_of

    # the settings: what is not given keeps AnalysisSettings' default (bad values: one line)
    settings = AnalysisSettings.build(
        metrics=metric, metric_params=_metric_params(metric_param), resampled=resample or None,
        n_boot=n_boot, n_perm=n_perm, level=level, seed=seed,
        cross_layer_metric=cross_layer_metric, device=device, token_blocks=token_blocks,
        token_null=token_null, allow_foreign_reference=allow_foreign_reference,
        allow_different_inputs=allow_different_inputs,
    )  # fmt: skip
    results = run_compare(
        runs, ref=ref or runs[0], out=out, settings=settings, progress=not quiet()
    )
    if not quiet():
        summary = headline_of(results)  # the one stored in results.json, as the report reads it
        show_drift(summary)
        show_headline(summary)
        tasks = results.summary["tasks"].values()
        if flagged := [r["name"] for t in tasks for r in t["runs"] if r.get("flags")]:
            console.print(f"[yellow]flagged[/] (see warnings): {escape(', '.join(flagged))}")
        console.print(
            f"results written to [bold]{escape(str(out))}[/] ({results.summary['seconds']} s)"
        )


@app.command()
def weights(
    base: str = typer.Argument(..., help="Base model folder, hub id or bundled:minilm."),
    variants: list[Path] = typer.Argument(
        ...,
        help="Full fine-tuned checkpoint folders, PEFT LoRA adapter folders and/or LoRA run "
        "directories (extracted or imported; their adapter_weights/lora.safetensors).",
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
    from repdrift.store.results import write_weights
    from repdrift.weights import weight_drift

    table = weight_drift(
        base, variants, k=k, epsilon=epsilon, device=device, progress=not quiet(),
        modules=[m.strip() for m in modules.split(",")] if modules else None,
    )  # fmt: skip
    written = write_weights(table, out)
    if not quiet():
        show_weights(table, written)


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
