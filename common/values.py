"""What the runtime's and the commands' plain arguments are: a whole number (a band, a count of tiles or threads)
or a real number (a factor, a strength), whichever Python or numpy type holds it, and never a bool (which Python
counts as an integer: ``band=True`` is a mistake, not one pixel); a path, named when it is of another kind, empty
or holds a NUL byte."""

from __future__ import annotations

import numbers
import os
from pathlib import Path


def is_whole_number(value) -> bool:
    """An integer: ``int`` or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value) -> bool:
    """A real number (an integer or a float, Python's or numpy's; NaN and inf included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def as_path(value, name: str, hint: str = "") -> Path:
    """``value`` as a ``pathlib.Path``: TypeError naming the argument ``name`` unless it is a str or a path-like
    object (``hint`` appended to its message), ValueError for an empty one (``Path("")`` is the current folder,
    named "." in every later message) or one with a NUL byte (no file system takes it: "embedded null byte", of
    no path)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {type(value).__name__}{hint}")
    text = os.fspath(value)
    if isinstance(text, bytes) or not text:
        raise ValueError(f"{name} must be a non-empty path, got {value!r}")
    if "\0" in text:
        raise ValueError(f"{name} {text!r} holds a NUL byte, which no file name can")
    return Path(text)
