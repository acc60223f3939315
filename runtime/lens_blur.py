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
4. tone-map (identity below a knee, a soft shoulder to 1 above it) and encode to sRGB.

Speed: a 12-megapixel photo with a 75 px radius would need a 151×151 kernel. The blurred image has no
detail finer than the disc, so it is computed at a scale where the radius is at most ``max_radius``
(16 px: a 33×33 kernel, which ``cv2.filter2D`` runs by DFT) and upsampled bilinearly. The boost runs
at full resolution *before* the (area-averaging, energy-preserving) downsampling, so a highlight of a
few pixels keeps all its light and still becomes a full-size bokeh ball.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_STRENGTH = 0.015      # disc radius as a fraction of the image diagonal (75 px at 4000×3000)
HIGHLIGHT_THRESHOLD = 0.85    # brightest channel (sRGB, 0..1) where the boost starts
HIGHLIGHT_GAIN = 8.0          # linear-light multiplier added at full clipping
HIGHLIGHT_CONTRAST = 0.3      # how far (sRGB) above its surroundings a highlight must be for the full boost
TONE_KNEE = 0.8               # linear light: identity below, soft shoulder to 1 above
MAX_RADIUS = 16.0             # disc radius at the working resolution (px)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def tone_map(x: np.ndarray, knee: float = TONE_KNEE) -> np.ndarray:
    """Identity up to ``knee``, then k + (1−k)(1 − e^(−(x−k)/(1−k))): continuous slope, limit 1."""
    over = np.maximum(x - knee, 0.0)
    return np.where(x > knee, knee + (1.0 - knee) * -np.expm1(-over / (1.0 - knee)), x).astype(np.float32)


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
    v = cv2.max(cv2.max(photo[..., 0], photo[..., 1]), photo[..., 2])
    above_local = cv2.subtract(v, cv2.blur(v, (window, window)))      # saturating: 0 where darker
    levels = np.arange(256, dtype=np.float32) / 255.0
    bright = cv2.LUT(v, _lut(smoothstep((levels - threshold) / max(1.0 - threshold, 1e-6))))
    isolated = cv2.LUT(above_local, _lut(smoothstep(levels / contrast)))
    return 1.0 + np.float32(gain) * bright * isolated


def lens_blur(photo: np.ndarray, alpha: np.ndarray | None = None, strength: float = DEFAULT_STRENGTH, *,
              background: tuple[np.ndarray, np.ndarray] | None = None, threshold: float = HIGHLIGHT_THRESHOLD,
              gain: float = HIGHLIGHT_GAIN, max_radius: float = MAX_RADIUS) -> np.ndarray:
    """The lens-blurred background of ``photo`` (uint8 RGB), uint8, same shape.

    ``alpha`` (H, W float32): the subject to exclude (None: blur everything). ``background``: optional
    (mask, colours) replacing the photo's pixels where ``mask`` is set by estimated background colours
    (float sRGB, one row per masked pixel): in the hair, where the photo mixes subject and background.
    ``gain=0`` gives a plain disc blur (no highlight boost).
    """
    h, w = photo.shape[:2]
    radius = blur_radius((h, w), strength)
    if radius < 0.5:
        return photo.copy()
    lin = cv2.LUT(photo, _lut(srgb_to_linear(np.arange(256) / 255.0)))
    if background is not None:
        mask, colours = background
        lin[mask] = srgb_to_linear(colours)
    weight = np.ones((h, w), np.float32) if alpha is None else (1.0 - alpha).astype(np.float32)
    window = max(3, int(radius) | 1)
    lin *= (weight * highlight_boost(photo, window, threshold, gain) if gain > 0 else weight)[..., None]

    scale = min(1.0, max_radius / radius)
    if scale < 1.0:
        small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
        lin = cv2.resize(lin, small_size, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, small_size, interpolation=cv2.INTER_AREA)
    kernel = disc_kernel(radius * scale)
    num = cv2.filter2D(lin, -1, kernel, borderType=cv2.BORDER_REFLECT)
    den = cv2.filter2D(weight, -1, kernel, borderType=cv2.BORDER_REFLECT)
    blurred = num / np.maximum(den, 1e-6)[..., None]   # no background in reach: inside the subject, unused
    out = np.rint(linear_to_srgb(tone_map(blurred)) * 255.0).astype(np.uint8)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if scale < 1.0 else out
