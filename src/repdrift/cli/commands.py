"""The ``repdrift`` commands: each parses its options, calls one API function, shows the result.

The API modules are imported inside each command, on purpose: they pull in torch, transformers
and pandas, and ``repdrift --help`` or ``repdrift inspect`` should not wait for that. These are
the only function-local imports of the package besides the lazy public names of ``repdrift``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from repdrift.cli.app import app, main, quiet
from repdrift.cli.views import (
    console,
    err_console,
    show_drift,
    show_headline,
    show_run_summary,
    show_weights,
)
from repdrift.errors import IntegrityError
from repdrift.metrics.definitions import CROSS_LAYER_METRIC, DEFAULT_METRICS
from repdrift.models.sources import BUNDLED_HELP
from repdrift.tasks.splits import HELD_OUT_FRACTION

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


# The data's column roles and token budget: the same options on extract and train.
TextFields = Annotated[
    str | None,
    typer.Option(help="Text column, or two comma-separated for pairs (default: detected by name)."),
]
IdField = Annotated[str | None, typer.Option(help="Column of unique sample ids.")]
LabelField = Annotated[
    str | None,
    typer.Option(help="Column of labels (default: label or labels); each distinct value is a class."),
]
MaxLength = Annotated[
    int | None,
    typer.Option(
        min=2,
        help="Tokens per sample (default: the preset's; 512 for your own data; at most the "
        "model's own limit).",
    ),
]


def column_options(
    text_fields: str | None, id_field: str | None, label_field: str | None, max_length: int | None
) -> dict:
    """The data's column roles and token budget as API keyword arguments."""
    fields = [f.strip() for f in text_fields.split(",") if f.strip()] if text_fields else None
    return {"text_fields": fields, "id_field": id_field, "label_field": label_field,
            "max_length": max_length}  # fmt: skip


@app.command()
def extract(
    model: str = typer.Argument(
        ..., help=f"Model folder, hub id, LoRA adapter folder, or {BUNDLED_HELP}."
    ),
    task: str = typer.Option(
        ...,
        "--task",
        "-t",
        help="Task preset (sst2, mrpc, rte, squad_v2, demo-sst, demo-pair) or a name for --data.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run directory to write (re-running resumes)."
    ),
    base: str | None = typer.Option(
        None, help="Base model of a full fine-tune or adapter (folder, hub id or bundled:minilm)."
    ),
    data: Path | None = typer.Option(None, help="Local CSV / JSONL / parquet / saved dataset."),
    samples: int = typer.Option(
        750, min=1, help="Validation samples to draw (fewer available: all)."
    ),
    seed: int = typer.Option(0, help="Seed of the sample choice."),
    split: str | None = typer.Option(
        None,
        help="Dataset split (default: the preset's, validation). One --data file is split by "
        f"repdrift: validation is a seeded {HELD_OUT_FRACTION:.0%} held out from what train "
        "trains on, train the rest, all every row.",
    ),
    text_fields: TextFields = None,
    id_field: IdField = None,
    label_field: LabelField = None,
    max_length: MaxLength = None,
    pooling: str | None = typer.Option(
        None, help="mean | first | last | max | tokens (default: mean)."
    ),
    layers: str | None = typer.Option(
        None,
        help="Comma-separated layer indices and/or 'embeddings', or 'all' (embeddings too); default: every block.",
    ),
    batch_size: int | None = typer.Option(
        None, min=1, help="Sequences per forward pass (default: 32)."
    ),
    max_tokens: int | None = typer.Option(None, min=1, help="Cap on padded tokens per batch."),
    dtype: str | None = typer.Option(
        None, help="auto | float32 | bfloat16 | float16 (default: auto: bf16 on a GPU that has it)."
    ),
    device: str | None = typer.Option(None, help="auto | cpu | cuda | cuda:N (default: auto)."),
    device_map: str | None = typer.Option(
        None,
        help="A model larger than one device: auto | balanced | sequential, or an explicit map "
        "'embed_tokens=0,layers.0=0,layers.1=cpu,layers.2=disk'.",
    ),
    max_memory: str | None = typer.Option(
        None, help="With --device-map: memory per device, e.g. 'cpu=2GiB,0=20GiB'."
    ),
    offload_folder: Path | None = typer.Option(
        None, help="With --device-map: where disk-offloaded weights go (default: a temp folder)."
    ),
    format: str | None = typer.Option(
        None, "--format", help="safetensors | pt (for old scripts; default: safetensors)."
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
    final_norm: bool | None = typer.Option(
        None,
        "--final-norm/--no-final-norm",
        help="Apply the model's final norm (Llama norm, GPT-2 ln_f) to the last block, as in "
        "transformers' hidden_states[-1] (default: on; BERT-style models have none).",
    ),
) -> None:
    """Extract every layer's representations of fixed validation samples into a run directory."""
    from repdrift.extraction.options import extraction_options
    from repdrift.extraction.request import check_request
    from repdrift.store.reader import run_summary

    # the settings: what is not given keeps ExtractionOptions' default (bad values: one line)
    options = extraction_options(
        pooling=pooling, layers=_parse_layers(layers), batch_size=batch_size,
        max_tokens=max_tokens, dtype=dtype, device=device, format=format,
        trust_remote_code=trust_remote_code, device_map=device_map, max_memory=max_memory,
        offload_folder=offload_folder, final_norm=final_norm,
    )  # fmt: skip
    inputs = {"task": task, "base": base, "data": data, "samples": samples, "seed": seed,
              "split": split, **column_options(text_fields, id_field, label_field, max_length)}  # fmt: skip
    # a run already complete for this very call returns before torch is even imported
    done = check_request(model, out=out, options=options, **inputs).complete
    if not (done and base_out is None and not checkpoints):
        from repdrift.extraction.api import extract as run_extract  # torch, transformers

        run_extract(
            model, out=out, **inputs, options=options, checkpoints=checkpoints,
            base_out=base_out, progress=not quiet(),
        )  # fmt: skip
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
        False, help="Compare runs whose recorded base weights are not the reference's."
    ),
    allow_different_inputs: bool = typer.Option(
        False,
        help="Compare runs whose samples were tokenised differently from the reference's "
        "(other tokenizer, max length, text fields, truncation or padding side; refused "
        "otherwise), e.g. a study of max lengths; the runs are flagged in the results.",
    ),
    metric: list[str] = typer.Option(
        list(DEFAULT_METRICS),
        "--metric",
        "-m",
        help="Similarity measure (repeat for several).",
    ),
    n_boot: int = typer.Option(1000, help="Half-sample replicates per layer (0: no intervals)."),
    n_perm: int = typer.Option(1000, help="Shuffled pairings per layer (0: no null)."),
    level: float = typer.Option(0.95, help="Confidence level of the intervals."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    cross_layer_metric: str = typer.Option(
        CROSS_LAYER_METRIC, help="Metric of the cross-layer matrices."
    ),
    resample: list[str] = typer.Option(
        [],
        "--resample",
        help="Metric given intervals and a null (repeat; default: those with a fast exact "
        "path, cka_* and cosine; others, e.g. procrustes, are then recomputed per replicate).",
    ),
    device: str = typer.Option(
        "auto",
        help="Where the float64 Gram/GEMM work runs: auto (a GPU with fast float64, else the "
        "CPU), cpu, cuda, cuda:N.",
    ),
    token_blocks: int | None = typer.Option(
        None,
        help="Token-level runs: blocks of whole samples the intervals resample (default 50).",
        rich_help_panel="Token-level runs",
    ),
    token_null: int | None = typer.Option(
        None,
        help="Token-level runs: shuffles of a token-level null (default 0: none), one pass "
        "over the tokens each, at most --n-perm: whole samples re-paired within groups of "
        "nearly equal length; it tests whether tokens keep their sample's information beyond "
        "position (not drift); p >= 1/(N+1).",
        rich_help_panel="Token-level runs",
    ),
) -> None:
    """Per-layer drift of runs from their reference run, with intervals and tests."""
    from repdrift.analysis.compare_runs import compare as run_compare
    from repdrift.analysis.stored_headline import headline_of

    results = run_compare(
        runs, ref=ref or runs[0], out=out, metrics=metric, n_boot=n_boot, n_perm=n_perm,
        level=level, seed=seed, cross_layer_metric=cross_layer_metric, progress=not quiet(),
        allow_foreign_reference=allow_foreign_reference,
        allow_different_inputs=allow_different_inputs, device=device,
        resampled=resample or None,
        **{k: v for k, v in {"token_blocks": token_blocks, "token_null": token_null}.items()
           if v is not None},
    )  # fmt: skip
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
