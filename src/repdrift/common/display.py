"""How a number is shown: one rule for the console and the report.

A value that rounds to 0 at the precision shown prints as 0: a seed floor of −3.1e-15 (two
bit-identical seeds, float64 round-off) is 0, not a tiny negative drift, and never ``-0.000``.
Fixed decimals throughout, so a column of numbers lines up and reads at one scale.
"""

from __future__ import annotations

import math
from typing import Any

#: The minus sign of typeset text (the report); the console keeps ASCII ``-``.
TYPESET_MINUS = "−"
#: What a missing value (None, NaN) shows as.
MISSING = "–"
#: Marks a drift within the seed noise floor of its method (console and report alike).
WITHIN_FLOOR_MARK = "~"
#: Marks a structural zero: a layer the method left unchanged in every seed.
STRUCTURAL_MARK = "○"
#: Significance markers by p-value threshold, strictest first (figures and report alike).
STARS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))


def stars(p: float) -> str:
    """``***`` p < 0.001, ``**`` p < 0.01, ``*`` p < 0.05, else empty (NaN too)."""
    for threshold, marker in STARS:
        if p < threshold:  # False for NaN
            return marker
    return ""


def number(
    x: Any, digits: int = 3, *, signed: bool = False, minus: str = "-", missing: str = MISSING
) -> str:
    """``x`` with ``digits`` decimals; below that precision, 0.

    Parameters
    ----------
    x : float-like or None
    digits : int
        Decimals shown.
    signed : bool
        Show ``+`` before positive values (never before 0).
    minus : str
        The minus sign (``"-"`` on the console, :data:`TYPESET_MINUS` in the report).
    missing : str
        Shown for None, NaN and anything that is not a number.

    Examples
    --------
    >>> number(-3.1e-15)
    '0.000'
    >>> number(-0.0472, 3, signed=True)
    '-0.047'
    """
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    if math.isnan(value):
        return missing
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    if math.isfinite(value) and float(text) == 0:
        text = f"{0:.{digits}f}"  # never "-0.000" nor "+0.000"
    return text.replace("-", minus)


__all__ = ["MISSING", "STRUCTURAL_MARK", "TYPESET_MINUS", "WITHIN_FLOOR_MARK", "number"]
