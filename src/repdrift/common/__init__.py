"""Common: what every stage shares and nothing else.

Modules: :mod:`.atomic` (atomic writes, hashes), :mod:`.progress` (progress bars),
:mod:`.devices` (device and dtype names), :mod:`.naming` (layer, pooling and run-folder names),
:mod:`.version`. Imports nothing from the other packages.
"""
