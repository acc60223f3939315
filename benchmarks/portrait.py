"""A synthetic 12-megapixel portrait for timing the bokeh pipeline (no photo of a person is needed).

Textured background with small highlights (bokeh balls), an elliptical subject whose rim is a band of
hair-like strands: about 4 % of the pixels are partly transparent, a realistic share for a portrait.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from runtime.bokeh import render_bokeh
from runtime.person_mask import MASK_SIDE, PersonSegmenter, segmenter_band

H, W = 3000, 4000


def synthetic_portrait(h: int = H, w: int = W, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(photo uint8 (h, w, 3), alpha float32 (h, w))."""
    rng = np.random.default_rng(seed)
    texture = cv2.resize(rng.random((60, 80, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    photo = np.clip(texture * 180 + rng.normal(0, 6, (h, w, 3)).astype(np.float32), 0, 255).astype(np.uint8)
    for y, x in rng.integers((0, 0), (h, w), (40, 2)):
        cv2.circle(photo, (int(x), int(y)), int(rng.integers(3, 9)), (255, 250, 235), -1)
    yy, xx = np.ogrid[:h, :w]
    radius = np.sqrt(((yy - 0.633 * h) / (0.433 * h)) ** 2 + ((xx - 0.5 * w) / (0.225 * w)) ** 2)
    strands = cv2.resize(rng.random((h // 8, w // 8), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = np.clip((1.0 - radius) * 25 + (strands - 0.5) * 1.5, 0, 1).astype(np.float32)
    photo[alpha >= 1] = (200, 150, 120)
    return photo, alpha


def person_photos(folder: Path, count: int, size: tuple[int, int] = (3024, 4032)) -> list[Path]:
    """``count`` JPEGs of scikit-image's astronaut (a person, for the segmenter) of ``size`` = (H, W), 4032×3024 by
    default, each a different crop and scale, upscaled (seeded)."""
    from skimage.data import astronaut

    source, rng, paths = astronaut(), np.random.default_rng(0), []
    for i in range(count):
        side = int(rng.integers(380, 512))
        y, x = (int(rng.integers(0, 512 - side * 3 // 4 + 1)), int(rng.integers(0, 512 - side + 1)))
        crop = source[y:y + side * 3 // 4, x:x + side]
        path = folder / f"person_{i:02d}.jpg"
        cv2.imwrite(str(path), cv2.resize(crop, size[::-1], interpolation=cv2.INTER_CUBIC)[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths


SEGMENTER_SIDE = 256   # the person mask arrives at a segmenter's resolution (MediaPipe's selfie model: 256)


def segmenter_mask(alpha: np.ndarray, side: int = SEGMENTER_SIDE) -> np.ndarray:
    """The subject's mask at a segmenter's resolution (long side ``side``), uint8 0/255."""
    h, w = alpha.shape
    s = side / max(h, w)
    small = cv2.resize((alpha > 0.5).astype(np.float32), (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return (small > 0.5).astype(np.uint8) * 255


def time_bokeh_pipeline(matter, photo: np.ndarray, alpha: np.ndarray, band: int | None = None,
                        segmenter: PersonSegmenter | None = None) -> dict[str, float]:
    """Seconds per stage of the app's path on ``photo``: the person segmenter (``segment``: the shipped model on
    the photo, its probability upsampled to the app's mask size and thresholded), a mask of that size → trimap
    (band: :func:`runtime.person_mask.segmenter_band`), model (with pre-processing), guided upsampling, the band's refinement when
    ``matter`` has one, then the bokeh renderer's foreground, blur and composite. The synthetic subject is no
    person the segmenter knows, so the trimap comes from the subject's own mask at 256 px, and the renderer
    gets the synthetic ``alpha``: the costs do not depend on what the models make of a synthetic subject."""
    segmenter = segmenter or PersonSegmenter()
    start = time.perf_counter()
    segmenter.mask(photo, require_person=False, long_side=MASK_SIDE)
    segment = time.perf_counter() - start
    band = segmenter_band(photo.shape[:2]) if band is None else band
    result = matter.predict(photo, mask=segmenter_mask(alpha, MASK_SIDE), band=band, with_trimap_prob=False)
    _, timings = render_bokeh(photo, alpha)
    return {"segment": segment, **result.timings, **timings}
