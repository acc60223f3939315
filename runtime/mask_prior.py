"""A coarse person mask refined by a fast guided filter with the photo as guide (He, Sun, Tang, TPAMI 2013):
the classic phone refinement of a segmenter's mask, the ``guided-filter`` baseline of ``adamat eval`` and the
prior the band refiner (:mod:`runtime.band_refiner`) starts from, so its worst case is this filter.

Coefficients are fitted at a long side of 512 px (radius 4, eps 1e-3) and applied to the full-resolution photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.upsample import fast_guided_upsample, snap

GUIDED_FILTER = {"long_side": 512, "radius": 4, "eps": 1e-3}


def mask_at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The mask (any resolution of the photo's aspect, values 0..1) bilinearly at ``shape`` = (H, W)."""
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def guided_mask(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask brought to ``photo`` (float RGB in [0, 1], (H, W, 3)) by the guided filter, clipped and snapped."""
    h, w = photo.shape[:2]
    s = min(1.0, GUIDED_FILTER["long_side"] / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    guide_low = cv2.resize(photo, small, interpolation=cv2.INTER_AREA)
    p_low = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_LINEAR)
    return snap(fast_guided_upsample(p_low, guide_low, photo, GUIDED_FILTER["radius"], GUIDED_FILTER["eps"]))
