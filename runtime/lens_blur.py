"""Lens blur of the background: a disc kernel in linear light, highlights boosted into bokeh balls, the
subject excluded by normalised convolution.

A real lens spreads each out-of-focus point of the background into a disc (the aperture's image), and
it does so with light, not with gamma-encoded pixel values. So:

1. decode sRGB to linear light and boost highlights: a pixel whose brightest channel is near clipping
   *and* well above its surroundings (a light, a specular glint: smaller than the disc) is multiplied by
   up to ``1 + gain``: the camera clipped it, the light it stands for was brighter. Large bright areas
   (a white wall, a sunlit shirt) are not boosted: they would bloom into a white blob. One factor per
   pixel, so a coloured light keeps its hue;
2. exclude the subject: blur (1−α)·B and (1−α) with the same disc and divide (normalised convolution,
   Knutsson & Westin 1993), so the background near the subject is the mean of *background* pixels only
   and the sharp subject does not smear into its own surroundings (a dark halo, or a ghost of the hair);
3. blur with an anti-aliased disc of radius ``strength × image diagonal``;
4. clip to white and encode to sRGB: light at most white stays as it is (a blown-out sky or a white wall
   stays 255: a flat area blurs to itself), and only the boosted highlights, which may reach ``1 + gain`` times
   white, are clipped, channel by channel, as a sensor clips an overexposed light: a bokeh ball is a
   flat-topped disc, a saturated light's ball keeps its low channel (yellow stays yellow), a bright orange
   one turns yellow as its green clips too, white only where its blue does.

Speed: a 12-megapixel photo with a 75 px radius would need a 151×151 kernel. The blurred image has no
detail finer than the disc, so it is computed at 1/k of the resolution, k the smallest integer that brings
the radius to at most ``max_radius`` (16 px: k = 5 at 12 megapixels, a 31×31 kernel, which
``cv2.filter2D`` runs by DFT), and upsampled bilinearly. The boost runs at full resolution *before* the
(area-averaging, energy-preserving) k×k reduction, so a highlight of a few pixels keeps all its light and
still becomes a full-size bokeh ball. The full-resolution work (linear light, weight, reduction) is one
compiled loop (:mod:`runtime.kernels`) over the photo and α, strip by strip on :mod:`runtime.parallel`'s threads:
no full-resolution float image is made (90 ms at 12 MP as a chain of OpenCV passes, 25 as one loop). Only the
few pixels whose light differs from the photo's own times 1 − α — the boosted highlights (the boost is 1 below
``threshold``) and the band's replaced background colours — are found beforehand and move their blocks by the
difference; the highlights' box mean is computed only on the strips that hold some. Where the highlights are
many (a bright sky: more than ``DENSE_HIGHLIGHTS`` of the pixels), the loop multiplies every pixel by its boost
instead, where a term per pixel would cost more.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from runtime import kernels
from runtime.foreground import check_photo_alpha
from runtime.parallel import each, strips

DEFAULT_STRENGTH = 0.015      # disc radius as a fraction of the image diagonal (75 px at 4000×3000)
HIGHLIGHT_THRESHOLD = 0.85    # brightest channel (sRGB, 0..1) where the boost starts
HIGHLIGHT_GAIN = 8.0          # linear-light multiplier added at full clipping
HIGHLIGHT_CONTRAST = 0.3      # how far (sRGB) above its surroundings a highlight must be for the full boost
MAX_RADIUS = 16.0             # disc radius at the working resolution (px)
STRIP_ROWS = 64               # full-resolution rows per pass of the reduction
ENCODE_ROWS = 32              # rows of the reduced blur per pass of its clipping and sRGB encoding
DENSE_HIGHLIGHTS = 0.003      # highlights above this share of the pixels: the loop multiplies each by its boost (the
                              # lens blur at 12 MP, ms, a term per highlight against the boost everywhere: 73 / 76
                              # at 0.2 %, 86 / 76 at 0.5 %, 131 / 81 at 5 %, 265 / 77 at 20 %)
HIGHLIGHT_ROWS = 256          # rows per pass of the highlights' search (the box mean reads 2 × its reach more)
COLOURS_PER_PASS = 32768      # the band's background colours per pass of their conversion to linear light


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def disc_kernel(radius: float) -> np.ndarray:
    """An anti-aliased disc (pixel coverage ≈ clip(r + ½ − distance, 0, 1)), normalised to sum 1."""
    n = int(np.floor(radius + 0.5))
    y, x = np.mgrid[-n:n + 1, -n:n + 1]
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0).astype(np.float32)
    return k / k.sum()


def blur_radius(shape: tuple[int, int], strength: float) -> float:
    """The disc radius in full-resolution pixels: ``strength`` × the image diagonal."""
    return float(strength * np.hypot(*shape))


def _lut(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).reshape(1, 256)


def highlight_boost(photo: np.ndarray, window: int, threshold: float = HIGHLIGHT_THRESHOLD,
                    gain: float = HIGHLIGHT_GAIN, contrast: float = HIGHLIGHT_CONTRAST) -> np.ndarray:
    """Per-pixel light multiplier (H, W) of a uint8 RGB photo: 1, up to ``1 + gain`` for small highlights.

    With v the brightest channel and m its mean over a ``window``² box, the multiplier is
    1 + gain · S((v − t)/(1 − t)) · S((v − m)/c), S the smoothstep, t ``threshold``, c ``contrast``:
    bright *and* brighter than its surroundings. Both factors are 256-entry look-up tables on uint8.
    """
    v, above_local = _highlight_inputs(photo, window)
    return _boost(v, above_local, *_boost_luts(threshold, contrast), gain)


def _highlight_inputs(photo: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W): the brightest channel v, and how far it stands above its ``window``² box mean."""
    v = _brightest(photo)
    return v, cv2.subtract(v, cv2.blur(v, (window, window)))      # saturating: 0 where darker


def _boost_luts(threshold: float, contrast: float) -> tuple[np.ndarray, np.ndarray]:
    levels = np.arange(256, dtype=np.float32) / 255.0
    return (_lut(smoothstep((levels - threshold) / max(1.0 - threshold, 1e-6))),
            _lut(smoothstep(levels / contrast)))


def _boost(v: np.ndarray, above_local: np.ndarray, bright_lut: np.ndarray, isolated_lut: np.ndarray,
           gain: float) -> np.ndarray:
    return cv2.add(cv2.multiply(cv2.LUT(v, bright_lut), cv2.LUT(above_local, isolated_lut), scale=float(gain)), 1.0)


def lens_blur(photo: np.ndarray, alpha: np.ndarray | None = None, strength: float = DEFAULT_STRENGTH, *,
              background: tuple[np.ndarray, np.ndarray] | None = None, threshold: float = HIGHLIGHT_THRESHOLD,
              gain: float = HIGHLIGHT_GAIN, max_radius: float = MAX_RADIUS) -> np.ndarray:
    """The lens-blurred background of ``photo`` (uint8 RGB), uint8, same shape.

    ``alpha`` (H, W float32): the subject to exclude (None: blur everything). ``background``: optional
    (mask, colours) replacing the photo's pixels where ``mask`` is set by estimated background colours
    (float sRGB, one row per masked pixel, in raster order): in the hair, where the photo mixes subject and
    background; the mask may also be given as the masked pixels' flat indices (sorted, distinct). ``gain=0`` gives a
    plain disc blur (no highlight boost). :func:`reduced_lens_blur`, upsampled bilinearly.
    """
    small = reduced_lens_blur(photo, alpha, strength, background=background, threshold=threshold, gain=gain,
                              max_radius=max_radius)
    h, w = photo.shape[:2]
    return small if small.shape[:2] == (h, w) else cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def reduced_lens_blur(photo: np.ndarray, alpha: np.ndarray | None = None, strength: float = DEFAULT_STRENGTH, *,
                      background: tuple[np.ndarray, np.ndarray] | None = None, threshold: float = HIGHLIGHT_THRESHOLD,
                      gain: float = HIGHLIGHT_GAIN, max_radius: float = MAX_RADIUS) -> np.ndarray:
    """:func:`lens_blur` before its last step: uint8 RGB at 1/k of the photo's resolution (its sides // k, k the
    smallest integer that brings the disc's radius to at most ``max_radius``; the photo itself, copied, when
    the radius is under half a pixel), which the renderer's composite reads bilinearly. TypeError or ValueError
    for a photo, alpha or background of another kind or size (:func:`_check_inputs`)."""
    _check_inputs(photo, alpha, background)
    h, w = photo.shape[:2]
    radius = blur_radius((h, w), strength)
    if radius < 0.5:
        return photo.copy()
    factor = max(1, min(int(np.ceil(radius / max_radius)), h, w))   # a long, thin photo keeps a pixel a side
    return _blurred_small(photo, alpha, background, radius, factor, threshold, gain)


def _check_inputs(photo, alpha, background) -> None:
    """TypeError unless ``photo`` is uint8 (H, W, 3) and ``alpha`` None or float (H, W)
    (:func:`runtime.foreground.check_photo_alpha`); ValueError unless the background's colours are one per masked
    pixel of a mask of the photo's size (or flat indices inside it)."""
    check_photo_alpha(photo, alpha)
    if background is not None:
        mask, colours = background
        count = int(np.count_nonzero(mask)) if mask.dtype == np.bool_ else len(mask)
        inside = mask.shape == photo.shape[:2] if mask.dtype == np.bool_ else kernels.indices_inside(
            mask, photo.shape[0] * photo.shape[1])
        if not inside or np.shape(colours) != (count, 3):
            raise ValueError(f"background must be a mask of the photo's {photo.shape[:2]} (or flat indices in it) "
                             f"and one colour per masked pixel, got {count} pixels and colours "
                             f"{np.shape(colours)}")


def _blurred_small(photo, alpha, background, radius, factor, threshold, gain) -> np.ndarray:
    """The blur at 1/``factor`` of the resolution, uint8: the weighted linear light reduced by ``factor``
    (area, strip by strip), blurred by the disc of radius ``radius / factor``, normalised, clipped to white, encoded
    (:func:`runtime.kernels.encode_light`)."""
    lin, weight = _reduced_light(photo, alpha, background, factor, radius, threshold, gain)
    kernel = disc_kernel(radius / factor)
    num, den = (cv2.filter2D(x, -1, kernel, borderType=cv2.BORDER_REFLECT) for x in (lin, weight))  # multithreaded
    out = np.empty(num.shape, np.uint8)      # where no background is in reach (in the subject: unused), den is 1e-6
    each(lambda rows: kernels.encode_light(num, den, rows.start, rows.stop, out),
         strips(out.shape[0], ENCODE_ROWS))
    return out


def _reduced_light(photo, alpha, background, factor, radius, threshold, gain) -> tuple[np.ndarray, np.ndarray]:
    """(Σ linear light · weight, Σ weight) over ``factor``² blocks: float32 (h, w, 3) and (h, w), h and w the
    photo's sides // ``factor`` (the last ``factor`` − 1 rows and columns are left out). The weight is 1 − α;
    the light is the photo's own, or the band's replaced background colour, times the highlight boost.

    One compiled loop (:func:`runtime.kernels.block_light`) reads the photo and α once, block row by block row, on
    :func:`runtime.parallel.each`'s threads: no full-resolution float image is made. It takes the photo's own
    light times 1 − α; the few pixels whose light differs — the band's replaced background colours and the
    highlights, whose boost is 1 everywhere else — then move their blocks by the difference
    (:func:`runtime.kernels.replace_light`). Where the highlights are many (a bright sky:
    :data:`DENSE_HIGHLIGHTS`), the loop multiplies every pixel by its boost instead."""
    lut = srgb_to_linear(np.arange(256) / 255.0)
    changed, dense = _changed_light(photo, alpha, background, lut, radius, threshold, gain)
    h, w = (s // factor for s in photo.shape[:2])
    light, weight = np.empty((h, w, 3), np.float32), np.empty((h, w), np.float32)
    photo = np.ascontiguousarray(photo)
    planes = (np.zeros((0, 0), np.float32) if alpha is None else np.ascontiguousarray(alpha, np.float32), lut,
              *_boost_planes(dense), factor)
    each(lambda rows: kernels.block_light(photo, *planes, rows.start, rows.stop, light, weight),
         strips(h, max(1, STRIP_ROWS // factor)))
    for index, new in changed:
        kernels.replace_light(photo, *planes, np.ascontiguousarray(index, np.int64),
                              np.ascontiguousarray(new, np.float32), light)
    return light, weight


def _boost_planes(dense: _Boost | None) -> tuple:
    """The compiled loops' boost arguments: the brightest channel, its height above the box mean, the two look-up
    tables and the gain (empty planes, a gain of 0: no boost in the loop)."""
    if dense is None:
        none, flat = np.zeros((0, 0), np.uint8), np.zeros(256, np.float32)
        return none, none, flat, flat, np.float32(0.0)
    return (np.ascontiguousarray(dense.v), np.ascontiguousarray(dense.above), *(lut.reshape(256) for lut in dense.luts),
            np.float32(dense.gain))


def _changed_light(photo, alpha, background, lut, radius, threshold,
                   gain) -> tuple[list[tuple[np.ndarray, np.ndarray]], _Boost | None]:
    """The pixels whose weighted light is not the photo's own times 1 − α, and that light, in parts of sorted flat
    indices and float32 (n, 3) light: the replaced background colours (boosted where they are highlights), then
    the highlights outside them, all times 1 − α; and None. Where the highlights are many, only the replaced
    colours, and the boost of every pixel (:class:`_Boost`), which multiplies them too."""
    index, light = _background_pixels(background)
    parts = [(index, light)]
    bright = _highlights(photo, max(3, int(radius) | 1), threshold, gain)
    dense = bright if isinstance(bright, _Boost) else None
    if bright is not None and dense is None:
        bright_index, boost = bright
        found, at = _lookup(index, bright_index)
        light[at] *= boost[found, None]                # a replaced pixel's boost lifts its new colour
        rest = bright_index[~found]
        parts.append((rest, lut[photo.reshape(-1, 3)[rest]] * boost[~found, None]))
    if alpha is not None:
        for index, light in parts:
            light *= (1.0 - alpha.reshape(-1)[index])[:, None]
    return parts, dense


def _lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``keys`` are in ``sorted_keys`` (boolean), and where those are in it."""
    at = np.searchsorted(sorted_keys, keys)
    found = at < sorted_keys.size
    found[found] = sorted_keys[at[found]] == keys[found]
    return found, at[found]


@dataclass(frozen=True)
class _Boost:
    """The highlight boost of a photo with many highlights: its brightest channel v and how far v stands above its
    box mean, whole uint8 planes, from which the reduction's loop looks each pixel's multiplier up
    (:func:`highlight_boost`)."""

    v: np.ndarray
    above: np.ndarray
    luts: tuple[np.ndarray, np.ndarray]
    gain: float


def _highlights(photo, window, threshold, gain) -> tuple[np.ndarray, np.ndarray] | _Boost | None:
    """The flat indices of the pixels the highlight boost raises, and their multipliers (None: none); where they
    are more than :data:`DENSE_HIGHLIGHTS` of the photo, the boost of every pixel instead (:class:`_Boost`).
    The boost's first factor is 0 at and below the threshold: the pixels above it are found strip by strip."""
    if gain <= 0:
        return None
    v = _brightest(photo)
    level, width = int(threshold * 255.0), v.shape[1]
    rows = strips(v.shape[0], HIGHLIGHT_ROWS)
    found = each(lambda part: np.flatnonzero(v[part] > level) + part.start * width, rows)
    count = sum(index.size for index in found)
    if count == 0:
        return None
    luts = _boost_luts(threshold, HIGHLIGHT_CONTRAST)
    if count > DENSE_HIGHLIGHTS * v.size:
        return _Boost(v, cv2.subtract(v, cv2.blur(v, (window, window))), luts, float(gain))
    index, above = _above_local_mean(v, [(r, i) for r, i in zip(rows, found) if i.size], window)
    return index, (1.0 + gain * luts[0][0, v.reshape(-1)[index]] * luts[1][0, above]).astype(np.float32)


def _above_local_mean(v: np.ndarray, parts: list[tuple[slice, np.ndarray]],
                      window: int) -> tuple[np.ndarray, np.ndarray]:
    """The flat indices of ``parts`` (rows, the indices of pixels in them), and how far v stands above its
    ``window``² box mean there (0 where darker, as :func:`_highlight_inputs`), the box mean computed only on
    those rows, each strip read with the box's reach (at the photo's top and bottom the strip ends where the
    photo does, so the box's border is the photo's)."""
    h, w = v.shape

    def box_mean_at(part: tuple[slice, np.ndarray]) -> np.ndarray:
        rows, index = part
        top, bottom = max(0, rows.start - window // 2), min(h, rows.stop + window // 2)
        return cv2.blur(v[top:bottom], (window, window)).reshape(-1)[index - top * w]

    index = np.concatenate([index for _, index in parts])
    mean = np.concatenate(each(box_mean_at, parts))
    return index, np.maximum(v.reshape(-1)[index].astype(np.int16) - mean, 0)


def _brightest(photo: np.ndarray) -> np.ndarray:
    """uint8 (H, W): each pixel's brightest channel, strip by strip (:func:`runtime.kernels.brightest`)."""
    photo, v = np.ascontiguousarray(photo), np.empty(photo.shape[:2], np.uint8)
    each(lambda rows: kernels.brightest(photo[rows].reshape(-1), v[rows].reshape(-1)),
         strips(photo.shape[0], STRIP_ROWS))
    return v


def _background_pixels(background) -> tuple[np.ndarray, np.ndarray]:
    """The replaced pixels' sorted flat indices and their colours in linear light, float32 (n, 3) (none: empty)."""
    if background is None:
        return np.empty(0, np.int64), np.empty((0, 3), np.float32)
    mask, colours = background
    index = np.flatnonzero(mask) if mask.dtype == np.bool_ else np.asarray(mask, np.int64)
    colours = np.asarray(colours, np.float32).reshape(-1, 3)
    light = np.empty(colours.shape, np.float32)

    def convert(part: slice) -> None:         # per value: the same whatever the parts (400 k: 6.5 -> 2.3 ms)
        light[part] = srgb_to_linear(colours[part])

    each(convert, strips(len(colours), COLOURS_PER_PASS))
    return index, light
