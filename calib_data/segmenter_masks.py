"""Coarse person masks simulated from ground truth, as a phone's segmenter gives them, by named recipes.

A recipe thresholds the true alpha, shrinks it to the segmenter's resolution (``factor``: the photo's size
over ``factor``; or ``long_side``: that many pixels on the long side), blurs the outline by moving it up to
``jitter`` mask pixels with a smooth random field (a segmenter's edge is never where the hair is), and
thresholds again. The mask stays at its own resolution: the runtime and every baseline bring it to the photo,
and the unknown band follows from its resolution (:func:`runtime.preprocess.band_for_mask`). Seeded by the
recipe's seed and the image's name, so every method of a run sees the same masks, in any order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class MaskRecipe:
    name: str
    factor: float | None = None        # mask = photo / factor
    long_side: int | None = None       # or: the mask's long side in pixels
    threshold: float = 0.5
    jitter: float = 0.0                # outline displacement, mask pixels (amplitude of a smooth field)

    def mask_shape(self, shape: tuple[int, int]) -> tuple[int, int]:
        h, w = shape
        s = 1 / self.factor if self.factor else self.long_side / max(h, w)
        return max(2, round(h * s)), max(2, round(w * s))


RECIPES: dict[str, MaskRecipe] = {r.name: r for r in (
    # alpha > 0.5 at 1/8 of the photo: the coarse-mask protocol of the 800-px measurements
    MaskRecipe("down8", factor=8),
    # a phone segmenter: a 256-px mask (MediaPipe's selfie model is 256x256) with an outline off by up to a pixel
    MaskRecipe("phone", long_side=256, jitter=1.0),
)}


def simulate_mask(alpha: np.ndarray, recipe: MaskRecipe, name: str, seed: int = 0) -> np.ndarray:
    """The float32 mask in {0, 1} at ``recipe.mask_shape(alpha.shape)`` for the image ``name``."""
    h, w = recipe.mask_shape(alpha.shape)
    person = (alpha > recipe.threshold).astype(np.float32)
    small = cv2.resize(person, (w, h), interpolation=cv2.INTER_AREA)
    if recipe.jitter:
        small = _displace(small, recipe.jitter, _rng(name, seed))
    return (small > 0.5).astype(np.float32)


def _rng(name: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _displace(mask: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """``mask`` resampled through a smooth random displacement of up to ``amplitude`` pixels."""
    h, w = mask.shape
    coarse = rng.uniform(-1, 1, (2, max(2, h // 16), max(2, w // 16))).astype(np.float32)
    field = [cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) * amplitude for c in coarse]
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    return cv2.remap(mask, xx + field[0], yy + field[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
