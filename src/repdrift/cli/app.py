"""The typer application, its shared options (--quiet, --debug, --version) and the entry point.

A :class:`~repdrift.errors.RepdriftError` is printed as one line on stderr and the process exits
with status 2; the traceback is shown only with ``--debug``. Ctrl-C prints what was kept
(:data:`INTERRUPTED`) and exits with status 130.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from repdrift.cli.views import err_console
from repdrift.common.settings import Settings, default, help_text
from repdrift.common.threads import configure_threads
from repdrift.common.version import __version__
from repdrift.errors import RepdriftError

#: What Ctrl-C prints, per command: the commands that resume keep their finished files.
INTERRUPTED = {
    "extract": "interrupted; finished files are kept, re-run the command to resume",
    "run": "interrupted; finished files are kept, re-run the command to resume",
    "demo": "interrupted; finished files are kept, re-run the command to resume",
}


def _help_type(param: Any) -> None:
    """What ``--help`` writes after an option: nothing for a flag (typer writes ``<bool>``),
    the element's type for a repeated option or argument (not ``<list[Path]>``)."""
    if getattr(param, "is_flag", False):
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        return
    shown = getattr(param, "display_type_rich", None)
    label = shown(None) if shown is not None else None
    if isinstance(label, str) and label.startswith("<list[") and label.endswith("]>"):
        element = f"<{label[6:-2].lower()}>"
        param.display_type_rich = lambda ctx: element  # type: ignore[method-assign]


class _Commands(TyperGroup):
    """The command group: Ctrl-C says what was kept; help types in plain words."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in command.get_params(ctx) if command is not None else []:
            _help_type(param)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.get_params(ctx):
            _help_type(param)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        # typer turns KeyboardInterrupt into a silent exit 130 before main() could see it
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err_console.print(
                INTERRUPTED.get(ctx.invoked_subcommand or "", "interrupted"), highlight=False
            )
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Commands,
    name="repdrift",
    help="Extract layer-wise representations and measure how fine-tuning moved them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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
    threads: int | None = typer.Option(
        None,
        "--threads",
        help="CPU threads for torch and BLAS (default: $REPDRIFT_THREADS, else the cores "
        "available to this process; OpenMP threads sleep while waiting).",
    ),
) -> None:
    """Extract layer-wise representations and measure how fine-tuning moved them."""
    _state["debug"] = debug
    configure_threads(threads)
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


def setting_help(cls: type[Settings], field: str) -> str:
    """A setting's help text with its default, both read from its settings class (what
    leaving the option out keeps)."""
    value, text = default(cls, field), help_text(cls, field)
    if isinstance(value, bool):
        value = "on" if value else "off"
    return text if value is None else f"{text.rstrip('.')} (default: {value})."


def quiet() -> bool:
    """True when the user asked for ``--quiet`` (commands then hide progress bars)."""
    return logging.getLogger().level > logging.INFO


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
    except KeyboardInterrupt:  # before a command started (imports, option parsing)
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
