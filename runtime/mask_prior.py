"""A coarse person mask refined by a fast guided filter with the photo as guide (He, Sun, Tang, TPAMI 2013):
the classic phone refinement of a segmenter's mask, the ``guided-filter`` baseline of ``adamat eval`` and the
prior the band refiner (:mod:`runtime.band_refiner`) starts from, so its worst case is this filter.

Coefficients are fitted at a long side of 512 px (radius 4, eps 1e-3) and applied to the full-resolution photo:
to all of it, or only where the prior is read (the band refiner's tiles, a third of a 12-megapixel photo's
working resolution).
"""

from __future__ import annotations

import cv2
import numpy as np

from common.errors import DataError
from runtime.upsample import OPEN, fast_guided_upsample, snap, upsample_alpha

GUIDED_FILTER = {"long_side": 512, "radius": 4, "eps": 1e-3}


def mask_at(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The mask (any resolution of the photo's aspect, values 0..1) bilinearly at ``shape`` = (H, W)."""
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def guided_mask(photo: np.ndarray, mask: np.ndarray, need: np.ndarray | None = None) -> np.ndarray:
    """The mask brought to ``photo`` (float RGB in [0, 1], (H, W, 3)) by the guided filter, clipped and snapped.
    ``need`` (bool (H, W), optional): where the prior is used; it is 0 elsewhere, and the filter is applied (and
    its coefficients fitted) only where it is used (:func:`runtime.upsample.upsample_alpha`'s ``decided``: the
    same prior there, up to float noise). TypeError or DataError for arguments it cannot take (:func:`_check`)."""
    _check(photo, mask, need)
    h, w = photo.shape[:2]
    s = min(1.0, GUIDED_FILTER["long_side"] / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    guide_low = cv2.resize(photo, small, interpolation=cv2.INTER_AREA)
    p_low = cv2.resize(mask.astype(np.float32), small, interpolation=cv2.INTER_LINEAR)
    radius, eps = GUIDED_FILTER["radius"], GUIDED_FILTER["eps"]
    if need is None or small == (w, h):    # at the fitting resolution itself upsample_alpha would not filter
        return snap(fast_guided_upsample(p_low, guide_low, photo, radius, eps))
    return upsample_alpha(p_low, photo, guide_low, radius=radius, eps=eps, decided=need.view(np.uint8) * np.uint8(OPEN))


def _check(photo: np.ndarray, mask: np.ndarray, need: np.ndarray | None) -> None:
    """TypeError unless ``photo`` is a float (H, W, 3) array, ``mask`` a 2-D array and ``need`` None or a bool
    array of the photo's (H, W); DataError for an empty one or a mask with NaN or inf (the filter returned an
    all-zero prior). The photo's values are the caller's to keep finite: a 12-megapixel scan costs milliseconds on
    every call of the band refiner, whose photo is decoded 8-bit pixels."""
    for name, x in (("photo", photo), ("mask", mask)):
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if photo.ndim != 3 or photo.shape[2] != 3 or not np.issubdtype(photo.dtype, np.floating):
        raise TypeError(f"photo must be float RGB in [0, 1], (H, W, 3), got {photo.dtype} {photo.shape}")
    if mask.ndim != 2:
        raise TypeError(f"mask must be (h, w), one value per pixel, got shape {mask.shape}")
    if 0 in photo.shape or 0 in mask.shape:
        raise DataError(f"photo {photo.shape} and mask {mask.shape} must not be empty")
    if not np.isfinite(mask).all():
        raise DataError("mask contains NaN or inf")
    if need is not None and not (isinstance(need, np.ndarray) and need.dtype == np.bool_
                                 and need.shape == photo.shape[:2]):
        raise TypeError(f"need must be a bool array of the photo's {photo.shape[:2]}, got "
                        f"{getattr(need, 'dtype', type(need).__name__)} {getattr(need, 'shape', '')}")
