"""Square tiles over the pixels of a plane that need work, and the windows they read: how the band refiner
batches its network and the guided filter fits its coefficients only where they are used.

An operation whose output at a pixel depends on inputs at most ``halo`` pixels away gives the same answer
tile by tile as on the whole plane when each tile is read with that halo, reflected at the plane's borders as
OpenCV's filters reflect them (``cv2.BORDER_REFLECT``).
"""

from __future__ import annotations

import cv2
import numpy as np


def cover(need: np.ndarray, tile: int) -> list[tuple[int, int]]:
    """Top-left corners of ``tile``-px tiles that cover every set pixel of ``need`` (bool (H, W)): rows of tiles
    ``tile`` px apart, and in each row the fewest tiles that cover its set columns (each starts at the first
    column left uncovered: the greedy cover of intervals, which is the smallest). A thin band that runs across
    a fixed grid would take a tile for every cell it clips; this takes about a fifth fewer."""
    corners = []
    for y in range(0, need.shape[0], tile):
        cols = np.flatnonzero(cv2.reduce(need[y:y + tile].view(np.uint8), 0, cv2.REDUCE_MAX)[0])
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
    rows, cols = ([cv2.borderInterpolate(i, n, cv2.BORDER_REFLECT) for i in range(start, start + side)]
                  for start, n in ((y, h), (x, w)))
    return plane[np.ix_(rows, cols)]

