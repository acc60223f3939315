"""argparse types of the app's commands (the shared ones are in :mod:`common.arguments`)."""

from __future__ import annotations

import argparse

from adamatting.config import GUIDED_SCALES, format_scale


def guided_scale(text: str) -> float:
    """argparse type of --guided-scale: one of adamatting.config.GUIDED_SCALES, written 1, 4/3, 2, 4."""
    scales = {format_scale(s): s for s in GUIDED_SCALES}
    if text.strip() not in scales:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(scales)}, got {text!r}")
    return scales[text.strip()]


def minutes(text: str) -> float:
    """argparse type: a positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value
