"""The ``repdrift`` command line: a thin layer over the Python API.

Modules: :mod:`.app` (the typer app, global options, entry point), :mod:`.commands` (extract,
inspect, compare, weights, plot, report), :mod:`.study_commands` (train, run, demo; imported
here so that they register after the others), :mod:`.views` (rich tables).
"""

from repdrift.cli import study_commands
from repdrift.cli.commands import app, main

__all__ = ["app", "main", "study_commands"]
