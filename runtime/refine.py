"""Refinement of the unknown band at a higher resolution: the same network, on a fixed number of tiles.

The coarse pass letterboxes the whole photo into the model's input (512 px for a 12-megapixel photo: 8×
smaller), where a 32-px band around the mask is 4 px wide. Here the photo is scaled to ``zoom`` × the model's
size (a long side of 1024 px for the 512-px export), cut into tiles of the model's input size, and the
``tiles`` tiles holding the most uncertain band pixels of the coarse alpha (the band's pixels that are
neither 0 nor 1) go through the network again, with the photo and the trimap at that resolution. Their alphas,
averaged where tiles overlap, are brought to the photo once by the guided filter (the full-resolution photo as
guide) and replace the coarse alpha inside the band, feathered at the tiles' borders: one full-resolution pass,
whatever the number of tiles. As BGMv2 (Lin et al., CVPR 2021) refines patches, but
with the network the artifact already is: every exported target runs it, at its fixed input size, and the
fixed tile count keeps the cost known (``tiles`` network calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from common.values import is_real_number, is_whole_number
from runtime.upsample import OPEN, snap, upsample_alpha

UNSURE = 0.02        # a band pixel whose coarse alpha is within this of 0 or 1 counts as decided
FEATHER = 32         # tile-border blend, in pixels at the refinement's resolution


@dataclass(frozen=True)
class Refinement:
    tiles: int = 8           # network calls at most, each at the model's input size
    zoom: float = 2.0        # refinement resolution: the photo's long side at zoom × the model's input side

    def __post_init__(self):
        if not is_whole_number(self.tiles) or not is_real_number(self.zoom):
            raise ValueError(f"refinement needs a whole number of tiles and a number zoom, got tiles={self.tiles!r}, "
                             f"zoom={self.zoom!r}")
        if self.tiles < 1 or not (math.isfinite(self.zoom) and self.zoom > 1):   # NaN compares false
            raise ValueError(f"refinement needs tiles >= 1 and zoom > 1, got tiles={self.tiles}, zoom={self.zoom}")


DEFAULT_REFINEMENT = Refinement()   # what runtime.matter.Matter does unless told otherwise


def refine(run, photo: np.ndarray, trimap: np.ndarray, alpha: np.ndarray, input_size: tuple[int, int],
           settings: Refinement) -> np.ndarray:
    """``alpha`` (the coarse full-resolution matte) with its band re-estimated on the most uncertain tiles.

    ``run(image01, trimap_u8) -> alpha`` runs the network on one tile of exactly ``input_size``."""
    h, w = photo.shape[:2]
    th, tw = input_size
    s = min(1.0, settings.zoom * max(th, tw) / max(h, w))
    work = (max(th, round(h * s)), max(tw, round(w * s)))
    if work[0] <= th and work[1] <= tw:
        return alpha                                   # the coarse pass already ran at this resolution
    photo_w = cv2.resize(photo, work[::-1], interpolation=cv2.INTER_AREA)
    trimap_w = cv2.resize(trimap, work[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    alpha_w = cv2.resize(alpha, work[::-1], interpolation=cv2.INTER_AREA)
    unsure = (trimap_w == 128) & (np.abs(alpha_w - 0.5) < 0.5 - UNSURE)
    acc, reach = np.zeros(work, np.float32), np.zeros(work, np.float32)   # Σ weight·tile alpha, Σ weight
    for y, x in _tiles(unsure, (th, tw), settings.tiles):
        weight = _feather((th, tw), (y, x), work)
        acc[y:y + th, x:x + tw] += weight * run(photo_w[y:y + th, x:x + tw], trimap_w[y:y + th, x:x + tw])
        reach[y:y + th, x:x + tw] += weight
    band = trimap == 128
    if not reach.any() or not band.any():
        return alpha
    # The tiles' weighted mean where they reach (the coarse alpha elsewhere, for the filter's windows), brought
    # to the photo once; it replaces the coarse alpha as far as the tiles reach, feathered at their borders.
    # The filter computes only the band's pixels the tiles reach: the others keep the coarse alpha.
    tiles = np.where(reach > 0, acc / np.maximum(reach, 1e-6), alpha_w)
    reach_full = np.minimum(cv2.resize(reach, (w, h), interpolation=cv2.INTER_LINEAR), 1.0)
    new = upsample_alpha(tiles, photo, photo_w, decided=np.where(band & (reach_full > 0), OPEN, 0).astype(np.uint8))
    out = alpha.copy()
    out[band] = snap(alpha[band] + reach_full[band] * (new[band] - alpha[band]))
    return out


def _tiles(unsure: np.ndarray, size: tuple[int, int], count: int) -> list[tuple[int, int]]:
    """Top-left corners of the ``count`` tiles (on a grid overlapping by a quarter) with the most unsure pixels;
    a tile is taken only if it adds unsure pixels that no chosen tile covers."""
    th, tw = size
    h, w = unsure.shape
    ys = sorted({min(y, h - th) for y in range(0, max(1, h - th + th * 3 // 4), th * 3 // 4)})
    xs = sorted({min(x, w - tw) for x in range(0, max(1, w - tw + tw * 3 // 4), tw * 3 // 4)})
    left = unsure.copy()
    chosen = []
    for _ in range(count):
        y, x = max(((y, x) for y in ys for x in xs), key=lambda c: int(left[c[0]:c[0] + th, c[1]:c[1] + tw].sum()))
        if not left[y:y + th, x:x + tw].any():
            break
        left[y:y + th, x:x + tw] = False
        chosen.append((y, x))
    return chosen


def _feather(size: tuple[int, int], corner: tuple[int, int], work: tuple[int, int]) -> np.ndarray:
    """1 inside, ramping to 0 over FEATHER pixels at each tile side that is not the photo's border."""
    th, tw = size
    (y, x), (h, w) = corner, work

    def ramp(n: int, at_start: bool, at_end: bool) -> np.ndarray:
        r = np.ones(n, np.float32)
        k = min(FEATHER, n // 2)
        edge = (np.arange(k, dtype=np.float32) + 0.5) / k
        if not at_start:
            r[:k] = edge
        if not at_end:
            r[n - k:] = np.minimum(r[n - k:], edge[::-1])
        return r

    return np.outer(ramp(th, y == 0, y + th >= h), ramp(tw, x == 0, x + tw >= w))

