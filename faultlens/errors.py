"""The one exception type the CLI turns into a single clear error line.

Raise `FaultlensError` for anything a user can fix (a wrong path, a malformed file, an unknown
name). Its message must say what to do. The CLI prints it on one line and exits with `exit_code`.
"""

from __future__ import annotations


class FaultlensError(Exception):
    """A user-fixable problem; `str(err)` is the one line shown to the user."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
