"""The one exception type for user mistakes: the CLI prints it as one line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class DfdcError(Exception):
    """A problem with the user's input (a file, a flag, a weight), told in one line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)
