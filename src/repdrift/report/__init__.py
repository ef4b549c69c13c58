"""Report: one self-contained HTML file from a results folder (figures embedded).

Modules: :mod:`.html` (:func:`write_report`), :mod:`.answer_sentence` (the first sentence),
:mod:`.headlines` (the per-task sentences), :mod:`.tables`, :mod:`.token_tables`.
"""

from repdrift.report.html import write_report

__all__ = ["write_report"]
