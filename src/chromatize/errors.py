"""The base of every error a user can cause (a bad file, option, config or checkpoint).

Faces (the CLI, the server) catch :class:`ChromatizeError` and show its message as one
line; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class ChromatizeError(Exception):
    """Something the user can fix; the message names the file or option and the reason."""


class UsageError(ChromatizeError, ValueError):
    """An option or argument that does not fit: the model cannot do what is asked, or the
    inputs do not allow it."""
