"""Compositing I = αF + (1−α)B, and the Adobe DIM protocol for fitting backgrounds."""

from __future__ import annotations

import cv2
import numpy as np

from common.errors import DataError
from common.image_files import to_uint8


def composite(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, round_uint8: bool = False) -> np.ndarray:
    """Return α·F + (1−α)·B in float32, per pixel, with no other change.

    fg, bg: (H, W, 3) float in [0, 1]; alpha: (H, W) float in [0, 1].
    round_uint8: round the result to 8 bits and back (what the Adobe compositing script saves), so a
    composite used for training or calibration is exactly what a PNG of it would hold.
    """
    if fg.shape != bg.shape or fg.ndim != 3 or fg.shape[2] != 3:
        raise DataError(f"foreground {fg.shape} and background {bg.shape} must both be (H, W, 3) and equal")
    if alpha.shape != fg.shape[:2]:
        raise DataError(f"alpha {alpha.shape} does not match the foreground {fg.shape[:2]}")
    a = alpha.astype(np.float32, copy=False)[..., None]
    out = a * fg.astype(np.float32, copy=False) + (np.float32(1.0) - a) * bg.astype(np.float32, copy=False)
    if round_uint8:
        out = to_uint8(out).astype(np.float32) / np.float32(255.0)
    return out


def fit_background(bg: np.ndarray, height: int, width: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Fit a background to (height, width) as the Adobe DIM script does.

    A background smaller than the foreground in either side is upscaled (bicubic) by
    max(width / bw, height / bh) and then cropped. The DIM script crops the top-left corner; with
    ``rng`` the crop position is random instead (for training variety).
    """
    bh, bw = bg.shape[:2]
    ratio = max(width / bw, height / bh)
    if ratio > 1.0:
        nw, nh = max(width, int(np.ceil(bw * ratio))), max(height, int(np.ceil(bh * ratio)))
        bg = cv2.resize(bg, (nw, nh), interpolation=cv2.INTER_CUBIC)
        bg = np.clip(bg, 0.0, 1.0) if bg.dtype != np.uint8 else bg
        bh, bw = nh, nw
    y = int(rng.integers(0, bh - height + 1)) if rng is not None else 0
    x = int(rng.integers(0, bw - width + 1)) if rng is not None else 0
    return np.ascontiguousarray(bg[y:y + height, x:x + width])
