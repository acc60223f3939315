"""Arguments for every loop of :mod:`runtime.kernel_source` on a small random scene: what ``tests/test_kernels.py``
runs through the extension and the JIT, and ``benchmarks.arm_loops`` through both on emulated Arm CPUs."""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from runtime import kernels
from runtime.resample import area_weights


def cases(rng: np.random.Generator) -> dict[str, Callable[[], tuple]]:
    """For each export's name, a function returning its arguments, its output arrays fresh on every call."""
    h, w, factor = 24, 30, 3
    photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = np.clip(rng.random((h, w)) * 3 - 1, 0, 1).astype(np.float32)
    lut, flat = rng.random(256).astype(np.float32), rng.random(256).astype(np.float32)
    v, above = rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (h, w), dtype=np.uint8)
    index = np.flatnonzero((alpha > 0) & (alpha < 1)).astype(np.int64)
    colours = rng.random((index.size, 3)).astype(np.float32)
    low = rng.random((8, 10, 3)).astype(np.float32)
    low_photo = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    rows, cols = kernels.neighbours(h, 8), kernels.neighbours(w, 10)
    decided = rng.choice(np.uint8([0, 128, 255]), (h // 2, w // 2))
    pick = kernels.nearest(h, h // 2), kernels.nearest(w, w // 2)
    means = _box_means(rng.random((3, h, w)).astype(np.float32), alpha)
    light = lambda: np.zeros((h // factor, w // factor, 3), np.float32)      # noqa: E731
    return {
        "block_light": lambda: (photo, alpha, lut, v, above, flat, lut, np.float32(2.0), factor, 0, h // factor,
                                light(), np.zeros((h // factor, w // factor), np.float32)),
        "replace_light": lambda: (photo, alpha, lut, v, above, flat, lut, np.float32(2.0), factor, index, colours,
                                  light()),
        "brightest": lambda: (photo.reshape(-1), np.zeros(h * w, np.uint8)),
        "apply_linear": lambda: (low, low[..., 0].copy(), photo, decided, *pick, rows, cols, np.float32(0.01), 0, h,
                                 np.zeros((h, w), np.float32)),
        "apply_linear_float": lambda: (low, low[..., 0].copy(), photo / np.float32(255), decided, *pick, rows, cols,
                                       np.float32(-1), 0, h, np.zeros((h, w), np.float32)),
        "guided_fit": lambda: (means, np.float32(1e-4), 2, h - 2, np.zeros((4, h, w), np.float32)),
        "guided_fit gray": lambda: (means[[0, 3, 4, 7]].copy(), np.float32(1e-4), 0, h, np.zeros((2, h, w), np.float32)),
        "area_reduce": lambda: (photo, *area_weights(h, 10), *area_weights(w, 13), np.float32(1 / 255), 1, 9,
                                np.zeros((10, 13, 3), np.float32)),
        "fuse_at": lambda: (photo, alpha, index, 0, 0, low, low[::-1].copy(), rows, cols, 0, index.size,
                            np.zeros((index.size, 3), np.float32), np.zeros((index.size, 3), np.float32)),
        "composite_rows": lambda: (alpha, low_photo, rows, cols, 2, h - 3, photo.copy()),
        "mix_at": lambda: (alpha, index, colours, 0, index.size, photo.copy()),
        "encode_light": lambda: (low * 4, low[..., 1].copy(), 0, 8, np.zeros((8, 10, 3), np.uint8)),
        "partly_transparent_at": lambda: (alpha.reshape(-1), 5, h * w - 5, np.zeros(h * w, np.int64)),
    }


def _box_means(guide: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The 13 box means :func:`runtime.kernels.guided_fit` takes of a 3-channel guide (3, h, w) and a plane p."""
    products = [*guide, p, *(c * p for c in guide), *(guide[i] * guide[j] for i in range(3) for j in range(i, 3))]
    return np.stack([cv2.blur(x, (3, 3)) for x in products])


def run_all(loops, arguments: dict[str, tuple]) -> dict[str, tuple]:
    """Each loop of ``loops`` run on a copy of its ``arguments`` (a case's name is its loop's, then what it is of
    it): (what it returned, its array arguments after)."""
    results = {}
    for name, given in arguments.items():
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in given)
        value = getattr(loops, name.split()[0])(*args)
        results[name] = (value, [a for a in args if isinstance(a, np.ndarray)])
    return results
