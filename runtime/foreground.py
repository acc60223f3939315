"""Foreground colours for compositing: blur-fusion estimation (Forte & Pitié, "Approximate Fast Foreground
Colour Estimation", ICIP 2021).

Where the subject is partly transparent (hair), the photo mixes the subject's colour F with the old
background: I = αF + (1−α)B. Compositing I itself onto the blurred background would keep the old
background's colour in every strand, a halo. Blur fusion estimates F from local means: with box means
F̄ (of F weighted by α) and B̄ (of B weighted by 1−α), F = F̄ + α·(I − αF̄ − (1−α)B̄). One pass with a
large window, then one with a small window seeded with the first pass's F and B̄.

Cost: the box means (``cv2.blur``, O(1) per pixel) are computed over the bounding box of the partly
transparent pixels (0 < α < 1) at a resolution of at most ``max_megapixels`` — they are smooth — and
sampled bilinearly at those pixels only, where the final correction, which carries the full-resolution
detail of I and α, is evaluated. The box sizes scale with the working resolution
(``window_fractions`` of its diagonal): the large box must reach across the hair into pure subject and
pure background. On the 32 composites of the validation set (512², real hair mattes, known F), the
α-weighted mean |F − F_true| over 0 < α < 1 is 0.019 with these sizes (0.020 with the means computed
at 1/5 of the resolution; 0.022 with 4 % of the diagonal,
the published 90 px at 2 MP; 0.038 keeping the photo's colours; 0.014 for pymatting's multilevel
``estimate_foreground_ml``, which is 13× slower here, needs numba's JIT, and has no on-device port). At 12
megapixels the means are computed at 1/7 of the resolution (0.25 megapixels): 24 ms against 47 at 1/4, the
α-weighted |F − F_true| of procedural hair, fur and veil 0.0364, 0.0373, 0.330 against 0.0359, 0.0365, 0.330
(the photo's own colours: 0.050, 0.128, 0.345), the bokeh at 66.7 dB PSNR against 1/4's
(``benchmarks/measured/foreground-resolution-*``).
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime import kernels
from runtime.parallel import each, strips

WINDOW_FRACTIONS = (0.12, 0.004)     # box sizes / working diagonal (87 and 3 px at 512², 245 and 8 at 2 MP)
PIXELS_PER_PASS = 65536              # band pixels per call of the per-pixel estimate (the calls shared by the threads)
BAND_ROWS = 64                       # rows per call of the search for partly transparent pixels
MAX_MEGAPIXELS = 0.25                # estimate at most at this resolution (12 MP: 1/7; 1/4 costs twice the time)


def _box_means(fg, bg, alpha, size):
    """F̄ = mean(αF)/mean(α) and B̄ = mean((1−α)B)/mean(1−α) over ``size``² boxes (OpenCV's multithreaded
    arithmetic: the same float32 operations as numpy's, a quarter faster)."""
    box = (size, size)
    a3 = _three(alpha)
    mean_a = cv2.blur(alpha, box)
    mean_f = cv2.divide(cv2.blur(cv2.multiply(fg, a3), box), _three(mean_a + np.float32(1e-5)))
    mean_b = cv2.divide(cv2.blur(cv2.multiply(bg, cv2.subtract(1.0, a3)), box),
                        _three((1.0 - mean_a) + np.float32(1e-5)))
    return mean_f, mean_b


def _three(x: np.ndarray) -> np.ndarray:
    """A 2-D plane as three equal channels."""
    return cv2.cvtColor(x, cv2.COLOR_GRAY2RGB)


def fuse(image, alpha, mean_f, mean_b):
    """F = F̄ + α·(I − αF̄ − (1−α)B̄), clipped: the local means corrected by the compositing residual. ``image``
    and the means (h, w, 3) with ``alpha`` (h, w), or (n, 3) with ``alpha`` (n,)."""
    shape = image.shape
    a3 = _three(alpha.reshape(alpha.shape[0], -1))
    image, mean_f, mean_b = (x.reshape(a3.shape) for x in (image, mean_f, mean_b))
    residual = cv2.subtract(cv2.subtract(image, cv2.multiply(a3, mean_f)), cv2.multiply(cv2.subtract(1.0, a3), mean_b))
    out = cv2.add(mean_f, cv2.multiply(a3, residual))
    return np.clip(out, 0.0, 1.0, out=out).reshape(shape)


def blur_fusion_means(image: np.ndarray, alpha: np.ndarray, sizes: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The second pass's (F̄, B̄) of two-pass blur fusion with box ``sizes``; :func:`fuse` gives F.

    ``image`` float32 (h, w, 3) in [0, 1]; ``alpha`` float32 (h, w). The means are smooth, so they can be
    computed at a lower resolution than the one :func:`fuse` is applied at.
    """
    mean_f, mean_b = _box_means(image, image, alpha, sizes[0])
    return _box_means(fuse(image, alpha, mean_f, mean_b), mean_b, alpha, sizes[1])


def _bounding_box(index: np.ndarray, shape: tuple[int, int], margin: int, factor: int) -> tuple[slice, slice]:
    """The bounding box of the pixels of sorted flat ``index`` grown by ``margin``, its sides multiples of
    ``factor`` where the photo allows (at its bottom and right edges the last rows or columns may be left out:
    they are sampled at the border)."""
    columns = index % shape[1]
    return tuple(_aligned(first - margin, last + margin + 1, size, factor) for first, last, size in
                 ((index[0] // shape[1], index[-1] // shape[1], shape[0]), (columns.min(), columns.max(), shape[1])))


def _aligned(start: int, stop: int, size: int, factor: int) -> slice:
    start = max(0, start) // factor * factor
    stop = min(size, start + -(-(min(size, stop) - start) // factor) * factor)
    return slice(start, start + max(factor, (stop - start) // factor * factor))


def check_photo_alpha(photo, alpha, alpha_required: bool = False) -> None:
    """TypeError unless ``photo`` is uint8 RGB (H, W, 3) and ``alpha`` float (H, W) of its size (or None, unless
    ``alpha_required``): what the renderer's passes over both take (:func:`foreground_at`, the lens blur)."""
    if not (isinstance(photo, np.ndarray) and photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3):
        raise TypeError(f"photo must be uint8 RGB (H, W, 3), got {getattr(photo, 'dtype', type(photo).__name__)} "
                        f"{getattr(photo, 'shape', '')}")
    fits = isinstance(alpha, np.ndarray) and np.issubdtype(alpha.dtype, np.floating) and alpha.shape == photo.shape[:2]
    if (alpha is not None or alpha_required) and not fits:
        raise TypeError(f"alpha must be float (H, W) of the photo's {photo.shape[:2]}, got "
                        f"{getattr(alpha, 'dtype', type(alpha).__name__)} {getattr(alpha, 'shape', '')}")


def partly_transparent(alpha: np.ndarray) -> np.ndarray:
    """The boolean (H, W) mask of the pixels with 0 < α < 1 (float32 ``alpha``)."""
    return cv2.bitwise_and(cv2.compare(alpha, 0.0, cv2.CMP_GT), cv2.compare(alpha, 1.0, cv2.CMP_LT)).view(np.bool_)


def partly_transparent_index(alpha: np.ndarray) -> np.ndarray:
    """The sorted flat indices of the pixels with 0 < α < 1 (float32 ``alpha``): :func:`partly_transparent`'s
    ``np.flatnonzero``, in one compiled pass over α (strip by strip on :mod:`runtime.parallel`'s threads: at 12 MP
    10 ms, the mask and its search 18, medians of 21 interleaved runs)."""
    flat = np.ascontiguousarray(alpha, np.float32).reshape(-1)
    width = alpha.shape[1] if alpha.ndim == 2 else 1

    def found_in(rows: slice) -> np.ndarray:
        found = np.empty((rows.stop - rows.start) * width, np.int64)
        return found[:kernels.partly_transparent_at(flat, rows.start * width, rows.stop * width, found)]

    parts = each(found_in, strips(alpha.shape[0], BAND_ROWS))
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def estimate_foreground(photo: np.ndarray, alpha: np.ndarray, max_megapixels: float = MAX_MEGAPIXELS,
                        window_fractions: tuple[float, float] = WINDOW_FRACTIONS,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground and background colours where the subject is partly transparent.

    ``photo``: uint8 (H, W, 3) RGB; ``alpha``: float32 (H, W). Returns ``(mask, fg, bg)``: the boolean
    mask of pixels with 0 < α < 1, and float32 sRGB colours for those pixels (``(n, 3)`` each, in raster
    order): :func:`foreground_at` those pixels.
    """
    mask = partly_transparent(alpha)
    return (mask, *foreground_at(photo, alpha, np.flatnonzero(mask), max_megapixels, window_fractions))


def foreground_at(photo: np.ndarray, alpha: np.ndarray, index: np.ndarray, max_megapixels: float = MAX_MEGAPIXELS,
                  window_fractions: tuple[float, float] = WINDOW_FRACTIONS) -> tuple[np.ndarray, np.ndarray]:
    """``(fg, bg)`` at the pixels of sorted flat ``index`` (the partly transparent ones), float32 sRGB
    (``(n, 3)`` each): F from blur fusion, and B = (I − αF)/(1 − α) clipped, the background the compositing
    equation leaves (used to fill the blurred background). Elsewhere F is the photo (α = 1) or unused (α = 0).
    The box means are computed at 1/k of the resolution, k the smallest integer that brings the photo to at
    most ``max_megapixels`` (an exact k×k area reduction). TypeError for a photo other than uint8 RGB, or an
    alpha other than float of its (H, W); ValueError for an index outside the photo.
    """
    check_photo_alpha(photo, alpha, alpha_required=True)
    h, w = alpha.shape
    index = np.ascontiguousarray(index, np.int64)
    if not kernels.indices_inside(index, h * w):
        raise ValueError(f"index must be sorted flat indices of the photo's {h * w} pixels, got {index[0]} to "
                         f"{index[-1]}")
    if index.size == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    factor = max(1, int(np.ceil(np.sqrt(h * w / (max_megapixels * 1e6)) - 1e-9)))
    diag = np.hypot(h, w) / factor
    sizes = tuple(max(3, int(round(f * diag)) | 1) for f in window_fractions)   # odd: centred boxes
    box = _bounding_box(index, (h, w), sizes[0] * factor, factor)
    crop_photo, crop_alpha = photo[box], alpha[box]
    ch, cw = crop_alpha.shape
    small_size = (cw // factor, ch // factor)
    image = cv2.resize(crop_photo, small_size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    means = blur_fusion_means(image, cv2.resize(crop_alpha, small_size, interpolation=cv2.INTER_AREA), sizes)
    fg, bg = np.empty((index.size, 3), np.float32), np.empty((index.size, 3), np.float32)
    arguments = (np.ascontiguousarray(photo), np.ascontiguousarray(alpha, np.float32), index,
                 int(box[0].start), int(box[1].start), *(np.ascontiguousarray(m, np.float32) for m in means),
                 kernels.neighbours(ch, means[0].shape[0], h - box[0].start),   # pixels past the box: its border
                 kernels.neighbours(cw, means[0].shape[1], w - box[1].start))
    each(lambda part: kernels.fuse_at(*arguments, part.start, part.stop, fg, bg), strips(index.size, PIXELS_PER_PASS))
    return fg, bg
