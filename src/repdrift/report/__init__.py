"""Report: one self-contained HTML file from a results folder (figures embedded).

Modules: :mod:`.html` (:func:`write_report`), :mod:`.headlines` (the sentences), :mod:`.tables`.
"""

from repdrift.report.html import write_report

__all__ = ["write_report"]
