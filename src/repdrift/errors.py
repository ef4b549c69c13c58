"""Errors that carry a message meant for the user.

The CLI prints a :class:`RepdriftError` as one line and exits non-zero; any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations


class RepdriftError(Exception):
    """Bad input or a state the user can fix; the message names the file, field or value."""


class InputError(RepdriftError, ValueError):
    """An argument (array, option, name) is not what the function expects."""


class IntegrityError(RepdriftError):
    """A file on disk is missing, truncated, edited or otherwise fails verification."""
