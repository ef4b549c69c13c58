"""``python -m repdrift.cli``: the same as the ``repdrift`` command."""

from repdrift.cli.commands import main

main()
