"""Refinement of the unknown band at a higher resolution: the same network, on a fixed number of tiles.

The coarse pass letterboxes the whole photo into the model's input (512 px for a 12-megapixel photo: 8×
smaller), where a 32-px band around the mask is 4 px wide. Here the photo is scaled to ``zoom`` × the model's
size (a long side of 1024 px for the 512-px export), cut into tiles of the model's input size, and at most
``tiles`` tiles over the band go through the network again, with the photo and the trimap at that resolution.
Their alphas, averaged where tiles overlap, are brought to the photo once by the guided filter (the
full-resolution photo as guide) and replace the coarse alpha inside the band, feathered at the tiles' borders:
one full-resolution pass, whatever the number of tiles. As BGMv2 (Lin et al., CVPR 2021) refines patches, but
with the network the artifact already is: every exported target runs it, at its fixed input size, and the
fixed tile count keeps the cost known (``tiles`` network calls).

The tiles are planned before the coarse pass (:func:`plan_tiles`): taken one by one, each the tile that holds the
most band pixels no tile taken covers with its full weight yet. Where they cover every band pixel so (at 12
megapixels the 1024-px photo takes four), the coarse alpha would be replaced wherever the trimap does not fix it,
so :class:`runtime.matter.Matter` does not compute it: :func:`refine` is given no coarse alpha. Where they do not
(their feathered borders fall in the band, or the band needs more tiles than ``tiles``), the coarse alpha fills in
there, and the tiles go where it is least sure: the band pixels neither within :data:`UNSURE` of 0 nor of 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

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


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles go: ``work``, the refinement's resolution (H, W); ``size``, a tile's (the model input's);
    ``corners``, their top-left corners there."""

    work: tuple[int, int]
    size: tuple[int, int]
    corners: list[tuple[int, int]]
    _at: dict = field(default_factory=dict, init=False, repr=False, compare=False)   # reach_at's, by shape

    @cached_property
    def reach(self) -> np.ndarray:
        """float32 ``work``: the tiles' summed feathered weights (at least 1 where a pixel is fully refined)."""
        th, tw = self.size
        reach = np.zeros(self.work, np.float32)
        for y, x in self.corners:
            reach[y:y + th, x:x + tw] += _feather(self.size, (y, x), self.work)
        return reach

    def reach_at(self, shape: tuple[int, int]) -> np.ndarray:
        """float32 ``shape``: :attr:`reach` read bilinearly there, at most 1 (the share of a pixel's alpha the
        tiles give). Computed once per shape: :func:`plan_tiles` and :func:`refine` read the same one."""
        if shape not in self._at:
            self._at[shape] = cv2.min(cv2.resize(self.reach, shape[::-1], interpolation=cv2.INTER_LINEAR), 1.0)
        return self._at[shape]


def work_size(shape: tuple[int, int], input_size: tuple[int, int],
              settings: Refinement) -> tuple[int, int] | None:
    """The refinement's resolution for a photo of ``shape``; None where the coarse pass already ran at it."""
    (h, w), (th, tw) = shape, input_size
    s = min(1.0, settings.zoom * max(th, tw) / max(h, w))
    work = (max(th, round(h * s)), max(tw, round(w * s)))
    return None if work[0] <= th and work[1] <= tw else work


def plan_tiles(trimap: np.ndarray, input_size: tuple[int, int], settings: Refinement) -> TilePlan | None:
    """The tiles holding the band's pixels (``trimap`` == 128), where they cover every one of them with their
    full weight at ``trimap``'s resolution: then the coarse alpha is not needed (:func:`refine` without it).
    None where they do not, or where there is no band or no refinement at this size."""
    work = work_size(trimap.shape, input_size, settings)
    if work is None:
        return None
    band = cv2.compare(trimap, 128, cv2.CMP_EQ)
    band_w = cv2.resize(trimap, work[::-1], interpolation=cv2.INTER_NEAREST_EXACT) == 128
    plan = TilePlan(work, input_size, _tiles(band_w, input_size, settings.tiles, fully=True))
    if not plan.corners:
        return None
    short = cv2.compare(plan.reach_at(trimap.shape), 1.0, cv2.CMP_LT)
    return plan if cv2.countNonZero(cv2.bitwise_and(band, short)) == 0 else None


def refine(run, photo: np.ndarray, trimap: np.ndarray, alpha: np.ndarray | None, input_size: tuple[int, int],
           settings: Refinement, plan: TilePlan | None = None) -> np.ndarray:
    """``alpha`` (the coarse matte at ``photo``'s resolution, 0 / 1 where ``trimap`` is) with its band re-estimated
    on the tiles of ``plan``, or, without one, on the tiles over the band's most uncertain pixels of ``alpha``.
    ``alpha`` None: a ``plan`` of :func:`plan_tiles` covers the band, and the matte is the trimap's 0 / 1 outside it.

    ``run(image01, trimap_u8) -> alpha`` runs the network on one tile of exactly ``input_size``."""
    if alpha is None:
        if plan is None:
            raise ValueError("refine needs the coarse alpha unless a plan of plan_tiles covers the band")
        alpha = (trimap == 255).astype(np.float32)    # the band: unread
    h, w = photo.shape[:2]
    work = plan.work if plan is not None else work_size((h, w), input_size, settings)
    if work is None:
        return alpha                                   # the coarse pass already ran at this resolution
    th, tw = input_size
    photo_w = cv2.resize(photo, work[::-1], interpolation=cv2.INTER_AREA)
    trimap_w = cv2.resize(trimap, work[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    alpha_w = cv2.resize(alpha, work[::-1], interpolation=cv2.INTER_AREA)
    if plan is None:
        unsure = (trimap_w == 128) & (np.abs(alpha_w - 0.5) < 0.5 - UNSURE)
        plan = TilePlan(work, (th, tw), _tiles(unsure, (th, tw), settings.tiles))
    acc = np.zeros(work, np.float32)                   # Σ weight·tile alpha (Σ weight: plan.reach)
    for y, x in plan.corners:
        tile = run(photo_w[y:y + th, x:x + tw], trimap_w[y:y + th, x:x + tw])
        cv2.accumulateProduct(tile.astype(np.float32, copy=False), _feather((th, tw), (y, x), work),
                              acc[y:y + th, x:x + tw])
    band = cv2.compare(trimap, 128, cv2.CMP_EQ)
    if not plan.corners or not cv2.countNonZero(band):
        return alpha
    # The tiles' weighted mean where they reach (the coarse alpha elsewhere, for the filter's windows), brought
    # to the photo once; it replaces the coarse alpha as far as the tiles reach, feathered at their borders.
    # The filter computes only the band's pixels the tiles reach: the others keep the coarse alpha.
    tiles = cv2.divide(acc, cv2.max(plan.reach, 1e-6))
    np.copyto(tiles, alpha_w, where=plan.reach <= 0)
    share = plan.reach_at((h, w))
    open_ = cv2.bitwise_and(band, cv2.compare(share, 0.0, cv2.CMP_GT))
    new = upsample_alpha(tiles, photo, photo_w, decided=np.bitwise_and(open_, OPEN, out=open_))
    at = np.flatnonzero(band)
    old = alpha.reshape(-1)[at]
    out = alpha.copy()
    out.reshape(-1)[at] = snap(old + share.reshape(-1)[at] * (new.reshape(-1)[at] - old))
    return out


def _tiles(unsure: np.ndarray, size: tuple[int, int], count: int, fully: bool = False) -> list[tuple[int, int]]:
    """Top-left corners of the ``count`` tiles (on a grid overlapping by a quarter) with the most ``unsure``
    pixels (the band's, or its uncertain ones); a tile is taken only if it adds ones that no chosen tile covers
    (``fully``: covers with its full weight, inside the borders it feathers: :func:`_feather`)."""
    th, tw = size
    h, w = unsure.shape
    ys = sorted({min(y, h - th) for y in range(0, max(1, h - th + th * 3 // 4), th * 3 // 4)})
    xs = sorted({min(x, w - tw) for x in range(0, max(1, w - tw + tw * 3 // 4), tw * 3 // 4)})
    covers = {(y, x): _covered((y, x), size, (h, w), fully) for y in ys for x in xs}
    left = unsure.copy()
    chosen = []
    for _ in range(count):
        corner = max(covers, key=lambda c: int(left[covers[c]].sum()))
        if not left[covers[corner]].any():
            break
        left[covers[corner]] = False
        chosen.append(corner)
    return chosen


def _covered(corner: tuple[int, int], size: tuple[int, int], work: tuple[int, int],
             fully: bool) -> tuple[slice, slice]:
    """The pixels a tile covers: all of it, or (``fully``) those of weight 1, inside the :data:`FEATHER`-pixel
    ramps of the sides that are not the photo's border."""
    (y, x), (th, tw), (h, w) = corner, size, work
    ky, kx = (min(FEATHER, n // 2) if fully else 0 for n in size)
    return (slice(y + (ky if y > 0 else 0), y + th - (ky if y + th < h else 0)),
            slice(x + (kx if x > 0 else 0), x + tw - (kx if x + tw < w else 0)))


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

