"""The ``repdrift`` command line: a thin layer over the Python API.

Modules: :mod:`.commands` (the typer app and its commands).
"""

from repdrift.cli.commands import app, main

__all__ = ["app", "main"]
