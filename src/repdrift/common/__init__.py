"""Common: what every stage shares and nothing else.

Modules: :mod:`.atomic` (atomic writes, hashes), :mod:`.progress` (progress bars),
:mod:`.devices` (device and dtype names), :mod:`.naming` (layer, pooling and run-folder names),
:mod:`.display` (how a number is shown, console and report alike), :mod:`.version`. Imports nothing from the other packages.
"""
