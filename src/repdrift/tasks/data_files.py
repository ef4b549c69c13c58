"""Data files without rows: an empty file or a header line alone is said in words, naming the
file, instead of the ``datasets`` library's errors ("An error occurred while generating the
dataset", 'Instruction "train" corresponds to no data!').
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from repdrift.errors import InputError

__all__ = ["empty_file_error"]


def _no_rows(path: Path, delimiter: str) -> str | None:
    """Why a data file holds no samples (it is empty, or has only a header line), or None."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return "holds 0 rows" if pq.read_metadata(path).num_rows == 0 else None
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    if not text.strip():
        return "is empty"
    if suffix in (".csv", ".tsv"):
        lines = csv.reader(io.StringIO(text), delimiter=delimiter)
        rows = [r for r in lines if any(cell.strip() for cell in r)]
        return f"has a header line ({', '.join(rows[0])}) and no rows" if len(rows) == 1 else None
    if suffix == ".json":
        try:
            return "holds an empty JSON list" if json.loads(text) in ([], {}) else None
        except ValueError:
            return None
    return None


def empty_file_error(paths: Sequence[Path], *, delimiter: str = ",") -> InputError | None:
    """The error for the first of ``paths`` that has no rows, naming it; None when each has rows
    (or cannot be told: the caller's own error stands then).

    Parameters
    ----------
    paths : sequence of Path
        CSV / TSV / JSON / JSONL / parquet files.
    delimiter : str
        Column separator of CSV-like files.
    """
    for path in paths:
        if (why := _no_rows(path, delimiter)) is not None:
            return InputError(f"data file {path} {why}: there are no samples to read")
    return None
