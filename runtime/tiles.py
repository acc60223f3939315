"""Square tiles over the pixels of a plane that need work, and the windows they read: how the band refiner
batches its network and the guided filter fits its coefficients only where they are used.

An operation whose output at a pixel depends on inputs at most ``halo`` pixels away gives the same answer
tile by tile as on the whole plane when each tile is read with that halo, reflected at the plane's borders as
OpenCV's filters reflect them (``cv2.BORDER_REFLECT``).
"""

from __future__ import annotations

import cv2
import numpy as np


def strip_columns(plane: np.ndarray, rows: int) -> np.ndarray:
    """uint8 (⌈H / rows⌉, W): per strip of ``rows`` rows of ``plane`` (bool or uint8 (H, W)), the columns that
    hold a set pixel (their largest value). One numpy reduction over the strips as a 3-D view: ten times faster
    than ``cv2.reduce`` strip by strip, whose column maximum walks the rows."""
    if plane.itemsize != 1:
        raise TypeError(f"strip_columns takes a bool or uint8 plane, got {plane.dtype}")
    plane = plane.view(np.uint8)
    whole = plane.shape[0] // rows * rows
    strips = plane[:whole].reshape(-1, rows, plane.shape[1]).max(axis=1)
    if whole < plane.shape[0]:
        strips = np.vstack([strips, plane[whole:].max(axis=0, keepdims=True)])
    return strips


def cover(need: np.ndarray, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of ``tile``-px tiles that cover every set pixel of ``need`` (bool (H, W)): rows of tiles
    ``tile`` px apart, and in each row the fewest tiles that cover its set columns (each starts at the first
    column left uncovered: the greedy cover of intervals, which is the smallest). A thin band that runs across
    a fixed grid would take a tile for every cell it clips; this takes about a fifth fewer."""
    corners = []
    for y, row in zip(range(0, need.shape[0], tile), strip_columns(need, tile)):
        cols = np.flatnonzero(row)
        i = 0
        while i < cols.size:
            corners.append((y, int(cols[i])))
            i = int(np.searchsorted(cols, cols[i] + tile))
    return corners


def window(plane: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """``plane``[y:y + side, x:x + side], reflected (``cv2.BORDER_REFLECT``) where it reaches past the plane's
    borders: the pixels a tile's outputs inside the plane depend on are those of the whole padded plane."""
    h, w = plane.shape[:2]
    if y >= 0 and x >= 0 and y + side <= h and x + side <= w:
        return plane[y:y + side, x:x + side]
    return plane[np.ix_(reflected(np.arange(y, y + side), h), reflected(np.arange(x, x + side), w))]


def reflected(index: np.ndarray, n: int) -> np.ndarray:
    """Indices into ``n`` entries as ``cv2.borderInterpolate`` with ``cv2.BORDER_REFLECT`` maps them (fedcba|abcdef|
    fedcba: a period of 2n), for a whole array of them at once."""
    index = np.mod(index, 2 * n)
    return np.where(index < n, index, 2 * n - 1 - index)

