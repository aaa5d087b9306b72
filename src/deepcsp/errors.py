"""The one error type that deepcsp raises for bad input, and its one warning type.

Every message names the offending file (when there is one) and the problem, so the CLI
can print it on one line without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DeepCSPError(Exception):
    """Bad input, a corrupted file or an impossible request.

    Parameters
    ----------
    message
        What is wrong, in words a user can act on.
    path
        The file concerned, if any; it is prefixed to the message.
    """

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.problem = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class DeepCSPWarning(UserWarning):
    """Something done as asked that loses something the user may want (the CLI prints it on one
    line: ``deepcsp: warning: ...``)."""
