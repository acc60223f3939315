"""Per-pixel loops compiled to machine code, for the full-resolution passes that OpenCV and numpy can only run as
a chain of whole-image operations.

A chain writes and reads a full-resolution temporary at every step: the lens blur's reduction of a 12-megapixel
photo (linear light by a look-up table, times 1 − α, then a 5 × 5 area mean) moved about 500 MB through memory
and took 90 ms on 2 cores; one loop reads the photo and α once and keeps each block's sums in registers: 17 ms.
numba compiles these functions on their first call in a process (about a second each, then cached beside this
file, or where ``NUMBA_CACHE_DIR`` says) and loads them from that cache later (a few tenths of a second for the
first of them: :func:`prepare`, which ``adamat bokeh`` runs while it opens the model). They release the GIL:
:mod:`runtime.parallel`'s threads run them strip by strip.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def block_light(photo, alpha, lut, boost_v, boost_above, bright_lut, isolated_lut, gain, factor, first, last,
                light, weight):  # pragma: no cover - compiled
    """For block rows ``first``..``last``: ``light`` (h, w, 3) the mean over each ``factor``² block of
    lut[photo] · (1 − α) · boost, ``weight`` (h, w) the mean of 1 − α. ``alpha`` of shape (0, 0): none (the weight
    is 1). ``boost_v`` of shape (0, 0): no boost; else the boost is 1 + gain · bright_lut[v] · isolated_lut[above]
    (:func:`runtime.lens_blur.highlight_boost` from its uint8 planes)."""
    has_alpha = alpha.shape[0] > 0
    has_boost = boost_v.shape[0] > 0
    blocks = light.shape[1]
    scale = np.float32(1.0 / (factor * factor))
    sums = np.zeros((blocks, 4), np.float32)
    for by in range(first, last):
        sums[:] = 0.0
        for y in range(by * factor, by * factor + factor):
            for bx in range(blocks):
                r = np.float32(0.0)
                g = np.float32(0.0)
                b = np.float32(0.0)
                k = np.float32(0.0)
                for x in range(bx * factor, bx * factor + factor):
                    keep = np.float32(1.0) - alpha[y, x] if has_alpha else np.float32(1.0)
                    k += keep
                    if has_boost:
                        keep *= np.float32(1.0) + gain * bright_lut[boost_v[y, x]] * isolated_lut[boost_above[y, x]]
                    r += lut[photo[y, x, 0]] * keep
                    g += lut[photo[y, x, 1]] * keep
                    b += lut[photo[y, x, 2]] * keep
                sums[bx, 0] += r
                sums[bx, 1] += g
                sums[bx, 2] += b
                sums[bx, 3] += k
        for bx in range(blocks):
            light[by, bx, 0] = sums[bx, 0] * scale
            light[by, bx, 1] = sums[bx, 1] * scale
            light[by, bx, 2] = sums[bx, 2] * scale
            weight[by, bx] = sums[bx, 3] * scale


@njit(nogil=True, cache=True)
def replace_light(photo, alpha, lut, boost_v, boost_above, bright_lut, isolated_lut, gain, factor, index, new,
                  light):  # pragma: no cover - compiled
    """Where the pixels of flat ``index`` (in rows of the photo's width) have the weighted light ``new`` (n, 3)
    instead of :func:`block_light`'s own, move their blocks' means in ``light`` by the difference (a dense boost,
    ``boost_v`` not empty, multiplies ``new`` too). Pixels in the rows and columns the blocks leave out are
    skipped."""
    has_alpha = alpha.shape[0] > 0
    has_boost = boost_v.shape[0] > 0
    width = photo.shape[1]
    scale = np.float32(1.0 / (factor * factor))
    for i in range(index.shape[0]):
        y = index[i] // width
        x = index[i] - y * width
        by = y // factor
        bx = x // factor
        if by >= light.shape[0] or bx >= light.shape[1]:
            continue
        keep = np.float32(1.0) - alpha[y, x] if has_alpha else np.float32(1.0)
        boost = np.float32(1.0)
        if has_boost:
            boost = np.float32(1.0) + gain * bright_lut[boost_v[y, x]] * isolated_lut[boost_above[y, x]]
        for c in range(3):
            light[by, bx, c] += (new[i, c] - lut[photo[y, x, c]] * keep) * boost * scale


@njit(nogil=True, cache=True)
def brightest(rgb, out):  # pragma: no cover - compiled
    """``out`` (n,) uint8: each pixel's brightest channel of ``rgb``, n uint8 RGB pixels (3n,), both flat (numpy's
    maximum over the strided channel views: 17 ms at 12 MP; this loop, which the compiler vectorises, 3)."""
    for i in range(out.shape[0]):
        r = rgb[3 * i]
        g = rgb[3 * i + 1]
        b = rgb[3 * i + 2]
        m = r if r > g else g
        out[i] = m if m > b else b


@njit(nogil=True, cache=True)
def apply_linear(a, b, guide, decided, rows, columns, tol, first, last, q):  # pragma: no cover - compiled
    """Rows ``first``..``last`` of ``q`` (H, W) = āᵀ·I + b̄, ā (h, w, C) and b̄ (h, w) read bilinearly at each pixel
    of the guide I (H, W, C): ``rows`` and ``columns`` (H, 3) and (W, 3) hold each full-resolution row's and
    column's two low-resolution neighbours and the second one's weight. ``tol`` ≥ 0: clipped to [0, 1] and
    snapped to 0 / 1 within ``tol``. ``decided`` (H, W), unless of shape (0, 0): 0 / 255 where q is 0 / 1 without
    the filter, which runs only on its other pixels."""
    channels = guide.shape[2]
    has_decided = decided.shape[0] > 0
    for y in range(first, last):
        y0, y1, wy = int(rows[y, 0]), int(rows[y, 1]), rows[y, 2]
        for x in range(guide.shape[1]):
            if has_decided and (decided[y, x] == 0 or decided[y, x] == 255):
                q[y, x] = np.float32(1.0) if decided[y, x] == 255 else np.float32(0.0)
                continue
            x0, x1, wx = int(columns[x, 0]), int(columns[x, 1]), columns[x, 2]
            w00 = (np.float32(1.0) - wy) * (np.float32(1.0) - wx)
            w01 = (np.float32(1.0) - wy) * wx
            w10 = wy * (np.float32(1.0) - wx)
            w11 = wy * wx
            v = w00 * b[y0, x0] + w01 * b[y0, x1] + w10 * b[y1, x0] + w11 * b[y1, x1]
            for c in range(channels):
                v += (w00 * a[y0, x0, c] + w01 * a[y0, x1, c] + w10 * a[y1, x0, c] + w11 * a[y1, x1, c]) * guide[y, x, c]
            if tol >= 0:
                if v <= tol:
                    v = np.float32(0.0)
                elif v > np.float32(1.0) - tol:
                    v = np.float32(1.0)
            q[y, x] = v


@njit(nogil=True, cache=True)
def fuse_at(photo, alpha, index, top, left, mean_f, mean_b, rows, columns, first, last, fg,
            bg):  # pragma: no cover - compiled
    """Blur fusion's last step at the pixels ``index[first:last]`` (flat, in rows of the photo's width): F̄ and B̄
    read bilinearly from ``mean_f`` and ``mean_b`` (h, w, 3), whose grid covers the photo's box from (``top``,
    ``left``) (``rows`` and ``columns``: that box's rows' and columns' neighbours, as :func:`apply_linear`'s), then
    F = clip(F̄ + α·(I − αF̄ − (1 − α)B̄)) and B = clip((I − αF) / (1 − α)) into ``fg`` and ``bg`` (n, 3)."""
    width = photo.shape[1]
    for i in range(first, last):
        y = index[i] // width
        x = index[i] - y * width
        r, c = y - top, x - left
        y0, y1, wy = int(rows[r, 0]), int(rows[r, 1]), rows[r, 2]
        x0, x1, wx = int(columns[c, 0]), int(columns[c, 1]), columns[c, 2]
        w00 = (np.float32(1.0) - wy) * (np.float32(1.0) - wx)
        w01 = (np.float32(1.0) - wy) * wx
        w10 = wy * (np.float32(1.0) - wx)
        w11 = wy * wx
        a = alpha[y, x]
        for k in range(3):
            f = w00 * mean_f[y0, x0, k] + w01 * mean_f[y0, x1, k] + w10 * mean_f[y1, x0, k] + w11 * mean_f[y1, x1, k]
            b = w00 * mean_b[y0, x0, k] + w01 * mean_b[y0, x1, k] + w10 * mean_b[y1, x0, k] + w11 * mean_b[y1, x1, k]
            image = np.float32(photo[y, x, k]) / np.float32(255.0)
            f = min(max(f + a * (image - a * f - (np.float32(1.0) - a) * b), np.float32(0.0)), np.float32(1.0))
            fg[i, k] = f
            bg[i, k] = min(max((image - a * f) / (np.float32(1.0) - a), np.float32(0.0)), np.float32(1.0))


@njit(nogil=True, cache=True)
def mix_at(alpha, index, fg, first, last, out):  # pragma: no cover - compiled
    """α·F + (1 − α)·out, rounded, into ``out`` (H, W, 3) uint8, which holds the background, at the pixels
    ``index[first:last]`` (flat, in rows of the photo's width), F = ``fg`` (n, 3) in [0, 1]."""
    width = alpha.shape[1]
    for i in range(first, last):
        y = index[i] // width
        x = index[i] - y * width
        a = alpha[y, x]
        for c in range(3):
            value = np.rint(a * fg[i, c] * np.float32(255.0) + (np.float32(1.0) - a) * np.float32(out[y, x, c]))
            out[y, x, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))


@njit(nogil=True, cache=True)
def encode_light(num, den, knee, first, last, out):  # pragma: no cover - compiled
    """Rows ``first``..``last`` of ``out`` (h, w, 3) uint8: the light ``num`` (h, w, 3) over ``den`` (h, w) (at least
    1e-6), tone-mapped (:func:`runtime.lens_blur.tone_map`, ``knee``) and encoded to sRGB
    (:func:`runtime.lens_blur.linear_to_srgb`), rounded."""
    one = np.float32(1.0)
    for y in range(first, last):
        for x in range(num.shape[1]):
            d = max(den[y, x], np.float32(1e-6))
            for c in range(3):
                v = num[y, x, c] / d
                if v > knee:
                    v = knee + (one - knee) * -np.expm1(-(v - knee) / (one - knee))
                v = min(max(v, np.float32(0.0)), one)
                if v <= np.float32(0.0031308):
                    v = v * np.float32(12.92)
                else:
                    v = np.float32(1.055) * v ** np.float32(1 / 2.4) - np.float32(0.055)
                out[y, x, c] = np.uint8(np.rint(v * np.float32(255.0)))


@njit(nogil=True, cache=True)
def partly_transparent_at(alpha, first, last):  # pragma: no cover - compiled
    """The flat indices i, ``first`` ≤ i < ``last``, where 0 < ``alpha[i]`` < 1 (``alpha`` flat), in order, int64."""
    found = np.empty(last - first, np.int64)
    n = 0
    for i in range(first, last):
        if np.float32(0.0) < alpha[i] < np.float32(1.0):
            found[n] = i
            n += 1
    return found[:n].copy()


def neighbours(full: int, low: int) -> np.ndarray:
    """float32 (full, 3): for each index of a full-resolution axis, its two neighbours on a ``low``-pixel axis and
    the second one's weight, as ``cv2.resize`` maps pixel centres, (x + ½)·low/full − ½, clamped at the borders:
    the bilinear reads of :func:`apply_linear` and :func:`fuse_at`."""
    at = np.maximum((np.arange(full) + 0.5) * (low / full) - 0.5, 0.0)
    first = np.minimum(np.floor(at), low - 1)
    return np.stack([first, np.minimum(first + 1, low - 1), at - first], axis=1).astype(np.float32)


_prepared: list[bool] = []


def prepare() -> None:
    """Load (or compile) every kernel now, on a few pixels: the one-off cost, where a command says it opens
    (nothing, once done in the process)."""
    if _prepared:
        return
    photo = np.zeros((2, 2, 3), np.uint8)
    alpha, none = np.zeros((2, 2), np.float32), np.zeros((0, 0), np.uint8)
    lut = np.zeros(256, np.float32)
    light, weight = np.zeros((1, 1, 3), np.float32), np.zeros((1, 1), np.float32)
    block_light(photo, alpha, lut, none, none, lut, lut, np.float32(0.0), 2, 0, 1, light, weight)
    replace_light(photo, alpha, lut, none, none, lut, lut, np.float32(0.0), 2, np.zeros(1, np.int64),
                  np.zeros((1, 3), np.float32), light)
    brightest(photo.reshape(-1), np.zeros(4, np.uint8))
    maps = np.zeros((2, 3), np.float32)
    apply_linear(np.zeros((1, 1, 3), np.float32), weight, photo, np.zeros((2, 2), np.uint8), maps, maps,
                 np.float32(0.0), 0, 2, alpha)
    fuse_at(photo, alpha, np.zeros(1, np.int64), 0, 0, light, light, maps, maps, 0, 1, np.zeros((1, 3), np.float32),
            np.zeros((1, 3), np.float32))
    mix_at(alpha, np.zeros(1, np.int64), np.zeros((1, 3), np.float32), 0, 1, photo.copy())
    encode_light(light, weight, np.float32(0.8), 0, 1, np.zeros((1, 1, 3), np.uint8))
    partly_transparent_at(alpha.reshape(-1), 0, 4)
    _prepared.append(True)
