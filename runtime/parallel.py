"""Full-resolution work strip by strip on as many threads as OpenCV uses: the renderer's and the upsampling's
passes over a 12-megapixel photo.

Each strip's OpenCV and numpy calls release the GIL and, on a strip of a few dozen rows, run on one core:
alone, a loop over the strips leaves the other cores idle (on 2 cores the lens blur's reduction at 12 MP takes
about 65 ms in one loop, 35 on two threads). Every strip writes its own rows of the output, so the result is
the same bit for bit whatever the number of threads. The number is OpenCV's (``cv2.setNumThreads``; 1 runs the
strips in the calling thread, in order), so an app that limits OpenCV limits this too, and at most eight. A
process forked after the threads started (a data loader's worker) starts its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import cv2

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 8      # each thread holds a strip's temporaries (about 10 MB at 12 MP): bounded on a many-core machine
_PREFIX = "adamat-strips"
_pools: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):                # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_pools.clear)   # a forked child has none of its parent's threads: new pools


def workers() -> int:
    """The number of threads the strips run on: OpenCV's, at least 1 and at most :data:`MAX_WORKERS`."""
    return min(MAX_WORKERS, max(1, cv2.getNumThreads()))


def each(function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[function(item) for item in items]``, the items spread over :func:`workers` threads (in order on one);
    the first exception raised is raised here."""
    items = list(items)
    n = min(workers(), len(items))
    if n <= 1 or threading.current_thread().name.startswith(_PREFIX):     # a strip's own strips run in it
        return [function(item) for item in items]
    if n not in _pools:
        _pools[n] = ThreadPoolExecutor(n, thread_name_prefix=_PREFIX)
    return list(_pools[n].map(function, items))


def strips(height: int, rows: int) -> list[slice]:
    """The row slices of ``rows`` rows (the last one shorter) that cover ``height`` rows."""
    if rows < 1:
        raise ValueError(f"a strip has at least one row, got {rows}")
    return [slice(y0, min(height, y0 + rows)) for y0 in range(0, height, rows)]
