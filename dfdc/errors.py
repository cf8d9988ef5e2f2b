"""The one exception type for user mistakes: the CLI prints it as one line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class DfdcError(Exception):
    """A problem with the user's input (a file, a flag, a weight), told in one line.

    `kind` names the problem for grouping ("no video stream", "cannot decode", ...: a job over many
    videos sums up the videos that share one); `detail` is what a library said about it, for the
    reports, never for the screen."""

    def __init__(self, message: str, path: str | Path | None = None, *, kind: str | None = None,
                 detail: str | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.kind = kind
        self.detail = detail
        super().__init__(f"{path}: {message}" if path is not None else message)


def problem_line(path: str | Path, error: BaseException) -> str:
    """One line saying what went wrong with `path`, for any error: a job over many videos reports
    it and goes on (a bad video never stops the batch), whatever raised it."""
    if isinstance(error, DfdcError):
        return str(error).splitlines()[0]
    detail = " ".join(str(error).split()) or "no detail"
    return f"{path}: {type(error).__name__}: {detail}"


def problem_kind(error: BaseException) -> str:
    """The name of the problem, shared by the videos that have the same one (for a summary line)."""
    if isinstance(error, DfdcError):
        if error.kind:
            return error.kind
        message = str(error)
        return message[len(f"{error.path}: "):] if error.path is not None else message
    return type(error).__name__
