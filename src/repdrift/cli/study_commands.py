"""The study commands: ``train`` one variant, ``run`` an experiment file, the bundled ``demo``,
``import`` the original study's tree.

As in :mod:`repdrift.cli.commands`, the API is imported inside each command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from repdrift.cli.app import app, quiet, setting_help
from repdrift.cli.commands import IdField, LabelField, MaxLength, TextFields
from repdrift.cli.views import console, short_path, show_headline, show_plan
from repdrift.common.settings import help_text
from repdrift.tasks.settings import SampleSettings
from repdrift.training.settings import DEFAULT_SEED, TrainingSettings

__all__ = ["demo", "import_tree", "run", "seeds", "train"]


@app.command()
def train(
    task: str = typer.Option(..., "--task", "-t", help=help_text(SampleSettings, "task")),
    method: str = typer.Option(..., "--method", help="full | lora."),
    model: str = typer.Option(
        ..., "--model", "-m", help="Base model folder, hub id or bundled:minilm."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the checkpoint or adapter."),
    seed: int = typer.Option(
        DEFAULT_SEED, help="Training seed (head and LoRA initialization, dropout, shuffling)."
    ),
    data: Path | None = typer.Option(
        None, help=help_text(SampleSettings, "data") + " Its train split is trained on."
    ),
    text_fields: TextFields = None,
    id_field: IdField = None,
    label_field: LabelField = None,
    max_length: MaxLength = None,
    epochs: float | None = typer.Option(None, help=setting_help(TrainingSettings, "epochs")),
    max_steps: int | None = typer.Option(
        None, min=1, help=setting_help(TrainingSettings, "max_steps")
    ),
    lr: float | None = typer.Option(None, help=setting_help(TrainingSettings, "lr")),
    batch_size: int | None = typer.Option(
        None, min=1, help=setting_help(TrainingSettings, "batch_size")
    ),
    rank: int | None = typer.Option(None, min=1, help=setting_help(TrainingSettings, "rank")),
    alpha: int | None = typer.Option(None, min=1, help=setting_help(TrainingSettings, "alpha")),
    dropout: float | None = typer.Option(None, help=setting_help(TrainingSettings, "dropout")),
    target_modules: str | None = typer.Option(
        None, help=setting_help(TrainingSettings, "target_modules")
    ),
    max_train_samples: int | None = typer.Option(
        None, min=1, help=setting_help(TrainingSettings, "max_train_samples")
    ),
    save_steps: int | None = typer.Option(
        None, min=1, help=setting_help(TrainingSettings, "save_steps")
    ),
    max_eval_samples: int | None = typer.Option(
        None, min=0, help=setting_help(TrainingSettings, "max_eval_samples")
    ),
    device: str | None = typer.Option(None, help=setting_help(TrainingSettings, "device")),
) -> None:
    """Fine-tune a model (full or LoRA) with a thin transformers/peft recipe."""
    from repdrift.training.recipe import train as run_train

    settings = TrainingSettings.build(
        epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, rank=rank,
        alpha=alpha, dropout=dropout, target_modules=target_modules,
        max_train_samples=max_train_samples, save_steps=save_steps,
        max_eval_samples=max_eval_samples, device=device,
    )  # fmt: skip
    path = run_train(
        task=task, method=method, model=model, out=out, seed=seed, data=data,
        settings=settings, progress=not quiet(), text_fields=text_fields, id_field=id_field,
        label_field=label_field, max_length=max_length,
    )  # fmt: skip
    if not quiet():
        console.print(f"saved to [bold]{escape(str(path))}[/]")


def _run_study(
    exp, *, executor: str, ray_address: str | None, shard: str | None, dry_run: bool
) -> Any:
    """Show the plan, run it and show the answer; the runner's result (None on a dry run)."""
    from repdrift.analysis.stored_headline import headline_of
    from repdrift.runner.study import execute, make_plan
    from repdrift.store.results import load_results

    plan = make_plan(exp, shard=shard)
    if not quiet() or dry_run:
        show_plan(plan)
    if dry_run:
        return None
    result = execute(
        plan,
        executor=executor,
        ray_address=ray_address,
        progress=not quiet(),  # type: ignore[arg-type]
    )
    if quiet():
        return result
    console.print(f"jobs run: {len(result.outcome.ran)}, already done: {len(result.skipped)}")
    if result.analysis_skipped == "shard":
        console.print(
            "shard finished; the analysis is not run by a shard. When every shard has "
            "finished, run the same command without --shard: it runs what is left, then the "
            "analysis, figures and report."
        )
        return result
    console.print(", ".join(f"{k}: {v}" for k, v in result.stages.items()))
    show_headline(headline_of(load_results(exp.results_dir)))
    console.print(f"results: [bold]{escape(short_path(exp.results_dir))}[/]")
    if result.report is not None:
        console.print(f"report: [bold]{escape(short_path(result.report))}[/]")
    return result


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
    from repdrift.demo import demo_experiment

    started = time.perf_counter()
    exp = demo_experiment(out, quick=quick)
    result = _run_study(exp, executor=executor, ray_address=None, shard=None, dry_run=dry_run)
    if quiet() or result is None:
        return
    ran, reused = len(result.outcome.ran), len(result.skipped)
    if ran or "ran" in result.stages.values():
        console.print(
            f"demo finished in {time.perf_counter() - started:.0f} s ({ran} job(s) run, "
            f"{reused} reused)"
        )
    else:  # a re-run: say what was reused rather than "finished in 0 s"
        console.print(
            f"demo: nothing left to do; reused the {reused} finished job(s) (models and runs) "
            f"and the results, figures and report in {escape(short_path(exp.output))} "
            "(delete that folder to run the demo from scratch)"
        )


@app.command()
def seeds(
    results: Path = typer.Argument(..., help="Results folder written by `repdrift compare`."),
    effect: float | None = typer.Option(
        None, help="Difference in block-averaged drift to detect (default: the one observed)."
    ),
    power: float = typer.Option(0.8, min=0.05, max=0.99, help="Power to reach."),
    alpha: float = typer.Option(0.05, min=0.0001, max=0.5, help="Level of the study-level test."),
    metric: str | None = typer.Option(None, help="Metric of the answer (default: cka_debiased)."),
) -> None:
    """How many seeds would answer the question: the study-level answer's power now and the
    seeds per method that reach --power, simulated from the seed-to-seed spread at hand."""
    from repdrift.analysis.seed_planner import plan_seeds, plan_sentence

    plan = plan_seeds(results, effect=effect, alpha=alpha, target=power, metric=metric)
    console.print(escape(plan_sentence(plan)), soft_wrap=True)


@app.command("import")
def import_tree(
    tree: Path = typer.Argument(..., help="The original study's results tree (or run folders)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder of the standard runs to write."),
    task: str | None = typer.Option(
        None,
        "--task",
        "-t",
        help="Pool unpooled layers over real tokens: the task whose samples are re-tokenised "
        "(with --tokenizer); only its runs are imported. Without: the mean over every "
        "position, padding included, as the original analysis did (mean_unmasked).",
        rich_help_panel="Pooling over real tokens",
    ),
    tokenizer: str | None = typer.Option(
        None,
        help="The tokenizer the runs were extracted with (folder or hub id).",
        rich_help_panel="Pooling over real tokens",
    ),
    data: Path | None = typer.Option(
        None,
        help="The samples, in the files' row order (default: the task's).",
        rich_help_panel="Pooling over real tokens",
    ),
    max_length: int | None = typer.Option(
        None,
        help="Tokens per sample the runs were extracted with (default: the task's).",
        rich_help_panel="Pooling over real tokens",
    ),
    padding_side: str | None = typer.Option(
        None,
        help="right | left within a batch (default: the tokenizer's).",
        rich_help_panel="Pooling over real tokens",
    ),
    lora_alpha: float | None = typer.Option(
        None, help="LoRA alpha, when the runs' metadata.json does not record it."
    ),
) -> None:
    """Convert the original study's results tree into standard run directories."""
    from repdrift.original_study import OriginalSamples, import_original

    if (task is None) != (tokenizer is None):
        raise typer.BadParameter("--task and --tokenizer go together")
    if task is None and (data is not None or max_length is not None or padding_side is not None):
        raise typer.BadParameter(
            "--data, --max-length and --padding-side need --task and --tokenizer"
        )
    samples = None
    if task is not None and tokenizer is not None:
        chosen = SampleSettings.build(task=task, data=data, max_length=max_length)
        samples = OriginalSamples(chosen, tokenizer, padding_side=padding_side)
    runs = import_original(tree, out, samples=samples, lora_alpha=lora_alpha, progress=not quiet())
    if not quiet():
        for run in runs:
            console.print(f"  {escape(str(run))}")
        console.print(
            f"{len(runs)} run(s) in [bold]{escape(str(out))}[/]; compare them with "
            f"repdrift compare {escape(str(out))}/<base run> {escape(str(out))}/<run>..."
        )
