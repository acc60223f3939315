"""argparse types shared by the command line and the on-device benchmark (which runs without the app)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Callable


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {least}, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}, got {value}")
    return value


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """argparse type: a whole number from ``least`` to ``most`` (None: no upper bound). Give a bound wherever a
    large value would run out of memory or time rather than fail: the option is refused as it is read."""
    def parse(text: str) -> int:
        value = _whole_number(text, least)
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
        return value
    return parse


def number(least: float, most: float | None = None, *, above: bool = False) -> Callable[[str], float]:
    """argparse type: a finite number from ``least`` (above it, with ``above``) to ``most`` (None: no upper
    bound); NaN and inf are refused."""
    low = f"> {least:g}" if above else f">= {least:g}"
    want = low if most is None else f"above {least:g} and at most {most:g}" if above else f"from {least:g} to {most:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {want}, got {text!r}") from None
        if not (math.isfinite(value) and (value > least if above else value >= least)
                and (most is None or value <= most)):
            raise argparse.ArgumentTypeError(f"must be a finite number {want}, got {text}")
        return value
    return parse


def or_none(parse: Callable[[str], float]) -> Callable[[str], float | str]:
    """argparse type: ``none`` (kept as that text, so that a default of None tells an option not given from one
    turned off: :func:`chosen`) or what ``parse`` reads."""
    return lambda text: text if text == "none" else parse(text)


def chosen(value: float | str | None, default: float) -> float | None:
    """An :func:`or_none` option's value: ``default`` where it was not given, None where it was ``none``."""
    return default if value is None else None if value == "none" else value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a thread count)."""
    return _whole_number(text, 1)


def thread_count(text: str) -> int:
    """argparse type: a whole number of threads from 1 to the cores of this machine (more never runs faster, and
    a runaway count starts that many threads)."""
    value = _whole_number(text, 1)
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be at most {cores} (the CPU cores of this machine), got {value}")
    return value


def count(text: str) -> int:
    """argparse type: a whole number >= 0 (data workers)."""
    return _whole_number(text, 0)


def scale(text: str) -> float:
    """argparse type: a finite number > 0 (a photo scale)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a share in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def path_text(text: str) -> str:
    """argparse type: a path, not empty (which would name the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a file or folder, got an empty path")
    return text


def out_folder(text: str) -> str:
    """argparse type: a folder to write into, checked before any work: a name (not empty: that would write into
    the current folder) that is not an existing file."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty path")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def file_named(suffix: str) -> Callable[[str], Path]:
    """argparse type: a file path ending with ``suffix`` in any case (the format written there), not a folder
    (a trailing separator, or a last part ``.`` or ``..``, which Path would drop)."""
    def parse(text: str) -> Path:
        last = text.replace(os.altsep or os.sep, os.sep).rsplit(os.sep, 1)[-1]
        if last in ("", ".", "..") or Path(text).suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(f"must be a {suffix} file, got {text!r}")
        return Path(text)
    return parse


def repeated(values: list) -> list:
    """The values that ``values`` holds more than once, sorted."""
    return sorted({v for v in values if values.count(v) > 1})


class Distinct(argparse.Action):
    """argparse action of a list option whose values are meant to differ (targets, precisions): a value given
    twice is refused as the command line is read, where it would do the same work twice."""

    def __call__(self, parser, namespace, values, option_string=None):
        twice = repeated(values)
        if twice:
            parser.error(f"argument {option_string}: {', '.join(map(str, twice))} given more than once")
        setattr(namespace, self.dest, values)


def refuse_repeats(values: list, option: str) -> None:
    """ValueError naming the values given more than once to ``option`` (a model scored twice, a seed trained
    twice): a list option whose values are meant to differ."""
    twice = repeated(values)
    if twice:
        shown = (f"{v:g}" if isinstance(v, float) else str(v) for v in twice)
        raise ValueError(f"{option}: {', '.join(shown)} given more than once")
