"""What the runtime's and the commands' plain arguments are: a whole number (a band, a count of tiles or threads)
or a real number (a factor, a strength), whichever Python or numpy type holds it, and never a bool (which Python
counts as an integer: ``band=True`` is a mistake, not one pixel)."""

from __future__ import annotations

import numbers


def is_whole_number(value) -> bool:
    """An integer: ``int`` or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real_number(value) -> bool:
    """A real number (an integer or a float, Python's or numpy's; NaN and inf included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
