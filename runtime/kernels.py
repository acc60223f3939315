"""The per-pixel loops of :mod:`runtime.kernel_source`, compiled: ``from runtime import kernels``, then
``kernels.block_light(...)``.

A chain of OpenCV or numpy passes writes and reads a full-resolution temporary at every step: the lens blur's
reduction of a 12-megapixel photo (linear light by a look-up table, times 1 − α, then a 5 × 5 area mean) moved
about 500 MB through memory and took 90 ms on 2 cores; one loop reads the photo and α once and keeps each block's
sums in registers (17 ms alone, 25 with the replaced pixels' corrections). The loops release the GIL:
:mod:`runtime.parallel`'s threads run them strip by strip.

They are loaded on first use from the extension module that ``make setup`` builds beside this file
(:mod:`runtime.kernel_build`; its name carries a hash of the loops' source, of their build and of the instruction
set it targets, so an extension built otherwise is never loaded): 8 ms and 5 MB, no compiler in the process, each
export behind a check of its arrays' kinds (:func:`_checked`). Where it is missing (the project installed without
``make setup``), or where this CPU may lack the target's instructions, numba compiles the same source just in
time: the same results, but importing numba and loading the loops costs 0.4–0.6 s and 130–160 MB of memory once
per process (compiling them the first time, seconds; :func:`prepare` does either where a command opens its
model).
"""

from __future__ import annotations

import hashlib
import importlib
import platform
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

SOURCE = Path(__file__).with_name("kernel_source.py")
BUILD = Path(__file__).with_name("kernel_build.py")
_loops: list[SimpleNamespace] = []      # the loaded loops, once
_loading = threading.Lock()


def target_cpu() -> str:
    """The CPU the extension is compiled for: x86-64 with AVX2 and FMA (Intel since 2013, AMD since 2015), the
    loops vectorised; elsewhere the architecture's baseline (Arm's includes NEON)."""
    return "haswell" if platform.machine().lower() in ("x86_64", "amd64") else ""


def module_name() -> str:
    """The extension's module name (in the ``runtime`` package) for this source, its build and its target."""
    digest = hashlib.sha256(SOURCE.read_bytes() + BUILD.read_bytes() + target_cpu().encode()).hexdigest()[:12]
    return f"_kernels_{digest}"


HASWELL_FLAGS = {"avx2", "fma", "bmi1", "bmi2", "movbe", "abm", "f16c"}   # what LLVM's "haswell" may emit (abm: lzcnt)


def _cpu_runs_target() -> bool:
    """Whether this CPU has the target's instructions: the architecture's baseline, or on x86-64 Haswell's, read
    from /proc/cpuinfo (on another system, or where it cannot be read, not assumed: the JIT runs)."""
    if target_cpu() != "haswell":
        return True
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return HASWELL_FLAGS <= set(flags.split(":", 1)[-1].split())


def _compiled() -> SimpleNamespace | None:
    """The extension's loops, or None where it is not built (or this CPU cannot run it)."""
    if not _cpu_runs_target():
        return None
    try:
        extension = importlib.import_module(f"runtime.{module_name()}")
    except ImportError:
        return None
    from runtime.kernel_source import EXPORTS

    return SimpleNamespace(**{name: _checked(name, getattr(extension, name), signature)
                              for name, (_, signature) in EXPORTS.items()})


_DTYPES = {"u1": np.uint8, "i8": np.int64, "f4": np.float32}


def _checked(name: str, export, signature: str):
    """``export`` behind a check of its array arguments against ``signature``: a compiled export reads whatever
    memory it is given (an int32 index as int64, a strided view as contiguous: wrong pixels, or a crash), where
    numba's JIT would compile another version. TypeError naming the loop and the argument instead."""
    arrays = [(i, np.dtype(_DTYPES[code]), dims.count(",") + 1) for i, (code, dims) in
              enumerate(re.findall(r"(\w\w)(\[[^\]]*\])?", signature[signature.index("(") + 1:-1])) if dims]

    def call(*values):
        for i, dtype, ndim in arrays:
            value = values[i]
            if not (isinstance(value, np.ndarray) and value.dtype == dtype and value.ndim == ndim
                    and value.flags.c_contiguous):
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"runtime.kernels.{name}: argument {i + 1} must be a C-contiguous {ndim}-D {dtype} "
                                f"array, got {got}")
        return export(*values)

    call.__name__ = call.__qualname__ = name
    return call


def _just_in_time() -> SimpleNamespace:
    """The loops compiled by numba's JIT (cached in ``__pycache__`` beside the source), one dispatcher per function."""
    from numba import njit

    from runtime.kernel_source import EXPORTS

    compiled: dict = {}
    for function, _ in EXPORTS.values():
        compiled.setdefault(function, njit(nogil=True, cache=True)(function))
    return SimpleNamespace(**{name: compiled[function] for name, (function, _) in EXPORTS.items()})


def loops() -> SimpleNamespace:
    """Every loop, by its name in :data:`runtime.kernel_source.EXPORTS`: the extension's, else numba's JIT."""
    with _loading:               # the strips' threads may ask first, together
        if not _loops:
            _loops.append(_compiled() or _just_in_time())
    return _loops[0]


def ahead_of_time() -> bool:
    """Whether the loops are the extension's (compiled by ``make setup``), not numba's JIT."""
    return not hasattr(loops().block_light, "py_func")


def __getattr__(name: str):
    from runtime.kernel_source import EXPORTS

    if name in EXPORTS:
        return getattr(loops(), name)
    raise AttributeError(f"module 'runtime.kernels' has no attribute {name!r}")


def indices_inside(index: np.ndarray, size: int) -> bool:
    """Whether sorted flat ``index`` lies inside ``size`` pixels (its first and last entries: the loops read and
    write at every one of them unchecked)."""
    return len(index) == 0 or (0 <= index[0] and index[-1] < size)


def neighbours(full: int, low: int, length: int | None = None) -> np.ndarray:
    """float32 (``length``, 3), ``length`` by default ``full``: for each index of a ``full``-pixel axis (and past
    its end, up to ``length``), its two neighbours on a ``low``-pixel axis and the second one's weight, as
    ``cv2.resize`` maps pixel centres, (x + ½)·low/full − ½, the border replicated: the bilinear reads of
    ``apply_linear`` and ``fuse_at``, never outside the ``low`` pixels."""
    at = np.clip((np.arange(full if length is None else length) + 0.5) * (low / full) - 0.5, 0.0, low - 1)
    first = np.floor(at)
    return np.stack([first, np.minimum(first + 1, low - 1), at - first], axis=1).astype(np.float32)


def nearest(full: int, low: int) -> np.ndarray:
    """int64 (full,): for each index of a full-resolution axis, the index on a ``low``-pixel axis that
    ``cv2.resize``'s nearest-neighbour interpolation reads (taken from OpenCV itself, so they never differ)."""
    ramp = np.arange(low, dtype=np.int32).reshape(1, low)
    return cv2.resize(ramp, (full, 1), interpolation=cv2.INTER_NEAREST)[0].astype(np.int64)


def prepare() -> None:
    """Load the loops now: the one-off cost, where a command says it opens (the extension: milliseconds; numba's
    JIT: each loop run on a few pixels, which loads or compiles it)."""
    if ahead_of_time():
        return
    k = loops()
    photo = np.zeros((2, 2, 3), np.uint8)
    alpha, none, flat = np.zeros((2, 2), np.float32), np.zeros((0, 0), np.uint8), np.zeros(256, np.float32)
    light, weight, zero = np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32), np.float32(0.0)
    index, colours, maps = np.zeros(1, np.int64), np.zeros((1, 3), np.float32), neighbours(2, 1)
    k.block_light(photo, alpha, flat, none, none, flat, flat, zero, 2, 0, 1, light, weight)
    k.replace_light(photo, alpha, flat, none, none, flat, flat, zero, 2, index, colours, light)
    k.brightest(photo.reshape(-1), np.zeros(4, np.uint8))
    k.apply_linear(light, weight, photo, np.zeros((2, 2), np.uint8), nearest(2, 2), nearest(2, 2), maps, maps, zero,
                   0, 2, alpha)
    k.guided_fit(np.zeros((4, 2, 2), np.float32), np.float32(1.0), 0, 2, np.zeros((2, 2, 2), np.float32))
    starts, ones = np.array([0, 1, 2], np.int64), np.ones(2, np.float32)
    k.area_reduce(photo, starts, starts[:2], ones, starts, starts[:2], ones, zero, 0, 2, light.repeat(2, 0).repeat(2, 1))
    k.fuse_at(photo, alpha, index, 0, 0, light, light, maps, maps, 0, 1, colours, colours.copy())
    k.composite_rows(alpha, photo, maps, maps, 0, 2, photo.copy())
    k.mix_at(alpha, index, colours, 0, 1, photo.copy())
    k.encode_light(light, weight, 0, 1, np.zeros((1, 1, 3), np.uint8))
    k.partly_transparent_at(alpha.reshape(-1), 0, 4, np.zeros(4, np.int64))
