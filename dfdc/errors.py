"""The one exception type for user mistakes: the CLI prints it as one line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class DfdcError(Exception):
    """A problem with the user's input (a file, a flag, a weight), told in one line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


def problem_line(path: str | Path, error: BaseException) -> str:
    """One line saying what went wrong with `path`, for any error: a job over many videos reports
    it and goes on (a bad video never stops the batch), whatever raised it."""
    if isinstance(error, DfdcError):
        return str(error).splitlines()[0]
    detail = " ".join(str(error).split()) or "no detail"
    return f"{path}: {type(error).__name__}: {detail}"
