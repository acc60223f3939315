"""Alpha back to the photo's full resolution: a fast guided filter, or plain bilinear.

The network sees the photo at ~512 px; a phone photo is 4000 px. Bilinear upsampling of the alpha
blurs every hair across ~8 full-resolution pixels. Guided upsampling (He, Sun, Tang, "Guided Image
Filtering", TPAMI 2013; the "fast guided filter", He & Sun, arXiv:1505.00996) instead models the alpha
locally as a linear function of the photo, q = aᵀ·I + b, fits (a, b) at low resolution where the alpha
exists, upsamples the smooth coefficients, and applies them to the full-resolution photo: edges come
from the photo. With an RGB guide (the default) a is a 3-vector per pixel, solved from the 3×3 local
colour covariance; with a gray guide it is a scalar.

All box means are ``cv2.boxFilter`` (O(1) per pixel). Results are clipped to [0, 1], and values within
half an 8-bit step of 0 or 1 are snapped to it, so float noise never turns a solid subject into 0.9999
(the bokeh renderer keeps pixels with α = 1 exactly).

Defaults (radius 1 low-resolution pixel, eps 1e-5, RGB guide) were chosen on the 14 real alphamatting.com
images by ``benchmarks/upsampling.py`` (GT alpha downsampled 4× or 8×, upsampled back, guided by the
photo): every larger radius or eps was worse on SAD, MSE and Grad. At 4×, mean SAD 1.89 vs 4.75 for
bilinear and Grad 1.43 vs 8.91; at 8×, SAD 3.21 vs 8.64, Grad 3.20 vs 22.2. A gray guide is no
better than bilinear (SAD 5.25 at 4×, 9.53 at 8×): hair and background often differ in colour, not in
luminance.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime import kernels
from runtime.parallel import each, strips
from runtime.tiles import cover, strip_columns, window

METHODS = ("guided", "bilinear")
GUIDED_RADIUS = 1        # window radius, in low-resolution pixels
GUIDED_EPS = 1e-5        # regularisation: larger = smoother, closer to bilinear
SNAP = 0.5 / 255.0       # |α − 0| or |α − 1| below this is set to exactly 0 or 1
STRIP_ROWS = 64          # full-resolution rows per pass of the filter's full-resolution work and of snap
OPEN = 128               # ``decided``'s label of the pixels the filter computes (0 / 255: alpha is 0 / 1 there)
_AT_LEAST = np.array([0.0] * 255 + [1.0], np.float32).reshape(1, 256)   # decided 255 → at least 1
_AT_MOST = np.array([0.0] + [1.0] * 255, np.float32).reshape(1, 256)    # decided 0 → at most 0
FIT_PIXELS = 32 * 1024   # pixels per pass of the guided filter's per-pixel fit (its planes stay in the cache): 32
                         # rows of a 1024-px plane, more of a narrow one (the tiles' stacked windows)
RUN_GAP = 32             # open column runs closer than this are one rectangle of the coefficients' footprint
FIT_TILES = (64, 128)    # the sides tried for a fit restricted to where its coefficients are used (the one
                         # that reads fewer pixels with its halo wins: 64 for a wide filter, 128 for a narrow one)
SPARSE_AT_MOST = 0.75    # the restricted fit runs when its tiles, with their reach, read less of the plane: at
                         # 12 MP, their windows stacked in one call, the refinement's fit (1024×768, a quarter
                         # read) takes 12 ms against 33, the first and last filters' (42 % and 50 % read) 6 against
                         # 10 and 14 against 24


def box_mean(x: np.ndarray, radius: int, out: np.ndarray | None = None) -> np.ndarray:
    """Mean over a (2r+1)² window (reflected borders), per channel (into ``out`` where given)."""
    k = 2 * radius + 1
    return cv2.boxFilter(x, -1, (k, k), dst=out, normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_coefficients(guide: np.ndarray, p: np.ndarray, radius: int, eps: float,
                        need: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Window-averaged coefficients (ā, b̄) of the guided filter q = āᵀ·I + b̄ of ``p`` by ``guide``.

    ``guide``: (h, w) gray or (h, w, 3) colour, float32; ``p``: (h, w). Returns ā (h, w, C) and b̄ (h, w).
    ``need`` (bool (h, w), optional): where the coefficients are used. When tiles over it (:mod:`runtime.tiles`;
    :data:`FIT_TILES`), each read with the fit's reach of 2·radius, read less than :data:`SPARSE_AT_MOST` of the
    plane, the coefficients are fitted on those tiles alone and are 0 elsewhere; where they are used they are
    the whole plane's.
    """
    if need is not None:
        halo = 2 * radius                  # two box means: the mean of the windows' fits over the window
        area, tile, corners = min(_tiles_read(need, tile, halo) for tile in FIT_TILES)
        if area < SPARSE_AT_MOST * p.size:
            return _coefficients_at(guide, p, radius, eps, corners, tile, halo)
    return _coefficients(guide, p, radius, eps)


def _tiles_read(need: np.ndarray, tile: int, halo: int) -> tuple[int, int, list[tuple[int, int]]]:
    """(pixels read, ``tile``, corners) of the tiles of that side covering ``need``, each with its ``halo``."""
    corners = cover(need, tile)
    return len(corners) * (tile + 2 * halo) ** 2, tile, corners


def _coefficients_at(guide: np.ndarray, p: np.ndarray, radius: int, eps: float, corners: list[tuple[int, int]],
                     tile: int, halo: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_coefficients` on the ``tile``-px tiles at ``corners``, each fitted on its window with ``halo``
    (reflected at the plane's borders as :func:`box_mean` reflects), 0 outside them.

    The windows are stacked into one tall plane and fitted in one call (a call per window costs its Python
    overhead forty times over on a band's 64-px tiles): where two windows meet, the box means mix them, but only
    within the halo, whose fit the tiles do not keep."""
    channels = 1 if guide.ndim == 2 else guide.shape[2]
    a = np.zeros((*p.shape, channels), np.float32)
    b = np.zeros(p.shape, np.float32)
    if not corners:                        # no pixel needs them (a trimap or mask with no unknown band)
        return a, b
    side = tile + 2 * halo
    tall_a, tall_b = _coefficients(*(np.concatenate([window(x, y - halo, x0 - halo, side) for y, x0 in corners])
                                     for x in (guide, p)), radius, eps)
    for k, (y, x) in enumerate(corners):
        inside = (slice(y, y + tile), slice(x, x + tile))
        h, w = b[inside].shape
        top = k * side + halo
        a[inside] = tall_a[top:top + h, halo:halo + w]
        b[inside] = tall_b[top:top + h, halo:halo + w]
    return a, b


def _coefficients(guide: np.ndarray, p: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`guided_coefficients` over the whole plane. The work is planar: every product and box mean is one
    contiguous (h, w) plane (3× faster than over interleaved channels), the box means spread over
    :func:`runtime.parallel.each`'s threads, and the per-pixel fit is one compiled loop
    (:func:`runtime.kernels.guided_fit`: the float32 operations of the numpy form it replaced,
    :func:`benchmarks.pipeline_reference.local_fit`) over :data:`FIT_PIXELS` pixels at
    a time, the strips on those threads too."""
    if guide.shape[:2] != p.shape or (guide.ndim == 3 and guide.shape[2] not in (1, 3)):
        raise ValueError(f"the guided filter takes a gray or RGB guide of p's {p.shape}, got {guide.shape}")
    g = [np.ascontiguousarray(x, np.float32) for x in cv2.split(guide.astype(np.float32, copy=False))]
    p = p.astype(np.float32, copy=False)
    pairs = [(i, j) for i in range(len(g)) for j in range(i, len(g))]
    planes = [*g, p, *(cv2.multiply(x, p) for x in g), *(cv2.multiply(g[i], g[j]) for i, j in pairs)]
    means = np.empty((len(planes), *p.shape), np.float32)
    each(lambda k: box_mean(planes[k], radius, out=means[k]), range(len(planes)))
    fit = np.empty((len(g) + 1, *p.shape), np.float32)      # a per channel, then b
    each(lambda rows: kernels.guided_fit(means, np.float32(eps), rows.start, rows.stop, fit),
         strips(p.shape[0], max(1, FIT_PIXELS // p.shape[1])))
    *a, b = each(lambda x: box_mean(x, radius), list(fit))
    return (a[0][..., None] if len(g) == 1 else cv2.merge(a)), b


def _apply_coefficients(a: np.ndarray, b: np.ndarray, guide_full: np.ndarray, tol: float | None,
                        decided: np.ndarray | None = None) -> np.ndarray:
    """q = āᵀ·I + b̄ at the guide's full resolution, ā and b̄ read bilinearly (``cv2.resize``'s pixel centres,
    the border replicated), then :func:`snap`-ped when ``tol`` is given: one compiled loop
    (:func:`runtime.kernels.apply_linear`), strip by strip on :func:`runtime.parallel.each`'s threads, which
    writes q and nothing else at full resolution. With ``decided`` (see :func:`upsample_alpha`; any resolution of
    the guide's aspect, read by nearest neighbour) q is 0 / 1 where it is decided and the filter runs only on the
    other pixels, the decided spans of each row filled, not visited pixel by pixel: the last filter of a 12 MP
    photo (5 % of it open) 29.5 -> 21.8 ms into the new q, most of the rest its pages' first touch (16.6 -> 8.2
    into an array written before, measured alone)."""
    h_full, w_full = guide_full.shape[:2]
    if guide_full.dtype == np.uint8:       # 8-bit pixels: the coefficients take the 1/255, no float copy of them
        a = a * np.float32(1.0 / 255.0)
    guide = guide_full if guide_full.ndim == 3 else guide_full[..., None]
    guide, apply_linear = ((np.ascontiguousarray(guide), kernels.apply_linear) if guide.dtype == np.uint8 else
                           (np.ascontiguousarray(guide, np.float32), kernels.apply_linear_float))
    q = np.empty((h_full, w_full), np.float32)
    label = np.zeros((0, 0), np.uint8) if decided is None else np.ascontiguousarray(decided, np.uint8)
    arguments = (np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32), guide, label,
                 kernels.nearest(h_full, max(1, label.shape[0])), kernels.nearest(w_full, max(1, label.shape[1])),
                 kernels.neighbours(h_full, b.shape[0]), kernels.neighbours(w_full, b.shape[1]),
                 np.float32(-1.0 if tol is None else tol))
    each(lambda rows: apply_linear(*arguments, rows.start, rows.stop, q), strips(h_full, STRIP_ROWS))
    return q


def open_runs(columns: np.ndarray, gap: int = RUN_GAP) -> list[tuple[int, int]]:
    """[x0, x1) runs of the set entries of ``columns`` (a strip's columns that hold :data:`OPEN` pixels), runs
    closer than ``gap`` columns merged (fewer rectangles in :func:`_footprint`)."""
    cols = np.flatnonzero(columns)
    if cols.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(cols) > gap)
    return list(zip(cols[np.r_[0, breaks + 1]].tolist(), (cols[np.r_[breaks, cols.size - 1]] + 1).tolist()))


def open_strips(decided: np.ndarray) -> list[tuple[slice, list[tuple[int, int]]]]:
    """(rows, :func:`open_runs` of them) for each strip of :data:`STRIP_ROWS` rows of ``decided`` (an empty list
    of runs where a strip holds no open pixel)."""
    columns = strip_columns(cv2.compare(decided, OPEN, cv2.CMP_EQ), STRIP_ROWS)
    return [(rows, open_runs(row)) for rows, row in zip(strips(decided.shape[0], STRIP_ROWS), columns)]


def _footprint(runs: list, low: tuple[int, int], full: tuple[int, int]) -> np.ndarray:
    """bool ``low`` = (h, w): the low-resolution pixels the bilinear interpolation of :func:`_apply_coefficients`
    reads for the open ``runs`` of a plane of size ``full`` (each run's rectangle, scaled, one pixel more on every
    side: where the plane is smaller than the photo, the photo's pixels each of its pixels stands for read
    within it)."""
    need = np.zeros(low, bool)
    ry, rx = low[0] / full[0], low[1] / full[1]
    for rows, strip_runs in runs:
        y0, y1 = max(0, int(rows.start * ry) - 1), int(rows.stop * ry) + 2
        for x0, x1 in strip_runs:
            need[y0:y1, max(0, int(x0 * rx) - 1):int(x1 * rx) + 2] = True
    return need


def _decide_into(q: np.ndarray, decided: np.ndarray) -> None:
    """``q`` (float32, in place) 0 where ``decided`` is 0 and 1 where it is 255 (two look-up tables and a min and
    a max: in the cache, where boolean indexing would make two full-resolution passes more)."""
    cv2.max(q, cv2.LUT(decided, _AT_LEAST), dst=q)
    cv2.min(q, cv2.LUT(decided, _AT_MOST), dst=q)


def fast_guided_upsample(alpha_low: np.ndarray, guide_low: np.ndarray, guide_full: np.ndarray,
                         radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> np.ndarray:
    """Upsample ``alpha_low`` (h, w) to ``guide_full``'s size, edges from the full-resolution guide.

    ``guide_low`` is the guide at the alpha's resolution (the photo as the model saw it); both guides are
    (·, ·, 3) RGB or 2-D gray, float32 in [0, 1].
    """
    a, b = guided_coefficients(guide_low, alpha_low.astype(np.float32), radius, eps)
    return _apply_coefficients(a, b, guide_full, None)


def bilinear_upsample(alpha_low: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain bilinear upsampling to (H, W) (half-pixel centres, as the downsampling)."""
    return cv2.resize(alpha_low.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def snap(alpha: np.ndarray, tol: float = SNAP) -> np.ndarray:
    """Clip to [0, 1] and set values within ``tol`` of 0 or 1 to exactly 0 or 1: in place for a C-contiguous
    float32 array (returned), on a float32 copy otherwise; strip by strip, in the cache."""
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    rows = alpha.reshape(alpha.shape[0], -1) if alpha.ndim >= 2 else alpha.reshape(1, -1)
    for part in strips(rows.shape[0], STRIP_ROWS):
        _snap_into(rows[part], tol)
    return alpha


def _snap_into(x: np.ndarray, tol: float) -> None:
    """:func:`snap` of a 2-D float32 array, in place (four OpenCV passes)."""
    cv2.threshold(x, 1.0, 1.0, cv2.THRESH_TRUNC, dst=x)                         # above 1 → 1
    cv2.threshold(x, tol, 0.0, cv2.THRESH_TOZERO, dst=x)                        # at most tol (or < 0) → 0
    cv2.max(x, cv2.threshold(x, 1.0 - tol, 1.0, cv2.THRESH_BINARY)[1], dst=x)   # above 1 − tol → 1


def as_float(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as float32 in [0, 1] (divided by 255, as :func:`runtime.preprocess.to_unit_float` does);
    float ones as they are."""
    return pixels.astype(np.float32) / np.float32(255.0) if pixels.dtype == np.uint8 else pixels


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def upsample_alpha(alpha_low: np.ndarray, guide_full: np.ndarray, guide_low: np.ndarray | None = None,
                   method: str = "guided", guide: str = "rgb", radius: int = GUIDED_RADIUS,
                   eps: float = GUIDED_EPS, decided: np.ndarray | None = None) -> np.ndarray:
    """Alpha (h, w) → (H, W) of ``guide_full`` (the photo, float32 RGB in [0, 1] or uint8), clipped and snapped.

    ``method``: "guided" (default) or "bilinear". ``guide``: "rgb" or "gray" for the guided filter.
    ``guide_low``: the photo at the alpha's size; area-downsampled from ``guide_full`` when omitted.
    ``decided``: uint8, 0 / 255 where alpha is already known to be 0 / 1 and :data:`OPEN` where the filter
    decides, at (H, W) or any lower resolution of the same aspect (read by nearest neighbour, as ``cv2.resize``
    would bring it to (H, W); the guided filter never makes it there, the bilinear path does): applied pixel by
    pixel as the filter is, and the coefficients fitted only where the open pixels read them
    (:func:`guided_coefficients`' ``need``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown upsampling method {method!r}; use one of {', '.join(METHODS)}")
    if guide not in ("rgb", "gray"):
        raise ValueError(f"unknown guide {guide!r}; use 'rgb' or 'gray'")
    size = guide_full.shape[:2]
    if method == "bilinear" or alpha_low.shape == size:
        q = snap(bilinear_upsample(alpha_low, size))
        if decided is not None:
            _decide_into(q, decided if decided.shape == size else cv2.resize(decided, size[::-1],
                                                                             interpolation=cv2.INTER_NEAREST))
        return q
    if guide_low is None:
        guide_low = as_float(cv2.resize(guide_full, alpha_low.shape[::-1], interpolation=cv2.INTER_AREA))
    if guide == "gray":
        guide_full, guide_low = to_gray(guide_full), to_gray(guide_low)
    runs = None if decided is None else open_strips(decided)
    need = None if runs is None else _footprint(runs, alpha_low.shape, decided.shape)
    a, b = guided_coefficients(guide_low, alpha_low.astype(np.float32), radius, eps, need)
    return _apply_coefficients(a, b, guide_full, tol=SNAP, decided=decided)
