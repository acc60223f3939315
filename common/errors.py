"""One error type for bad data, always naming the file (when there is one) and the problem."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad or unusable input data. ``str(err)`` reads ``<path>: <problem>``."""

    def __init__(self, problem: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


def one_line(text: str) -> str:
    """``text`` with its unprintable characters escaped as Python writes them (a newline as ``\\n``): an error
    line naming a file stays one line, whatever the file's name holds (a name with a newline would otherwise
    print a second line, which could read as another error)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
