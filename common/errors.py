"""One error type for bad data, always naming the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad or unusable input data. ``str(err)`` reads ``<path>: <problem>``."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{one_line(str(self.path))}: {problem}" if self.path is not None else problem)


def one_line(text: str) -> str:
    """``text`` with its unprintable characters escaped as Python writes them (a newline as ``\\n``): a file's
    name stays on one line, whatever it holds (a name with a newline would otherwise print a second line, which
    could read as another error)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def error_text(message: str) -> str:
    """An error message as the command line prints it: ``error: `` and its first line, any further lines (a
    list of violations) indented under it, each escaped by :func:`one_line`: no line of it can pass for
    another error."""
    return "\n  ".join(one_line(line) for line in f"error: {message}".split("\n"))
