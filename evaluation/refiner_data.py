"""Samples for the band refiner and its k-fold scores: the photos of an evaluation folder through the app's path.

A sample is one photo at one scale with one mask simulated by the ``phone`` recipe (seeded): the photo, the
network's alpha through :class:`runtime.matter.Matter` without the band refiner (what the refiner will be
given), the guided filter of the mask, the mask at the photo's resolution, the ground truth and the band
(:mod:`adamatting.train.band_refiner` trains on them). The folds put the held-back split in a fold of its own,
so the refiner that ships (trained without that fold) is scored on photos it never saw.
"""

from __future__ import annotations

from typing import Callable, Iterable

import cv2
import numpy as np

from calib_data.backgrounds import random_background
from calib_data.compositing import composite
from calib_data.procedural import KINDS, SEE_THROUGH_KINDS, make_foreground
from calib_data.segmenter_masks import RECIPES
from calib_data.splits import REAL_VALIDATION
from common.metrics import compute_regions
from evaluation.datasets import EvalImage, rescale, scaled_size
from evaluation.folder_eval import simulated_mask
from runtime.mask_prior import guided_mask, mask_at
from runtime.matter import WORKING_SIDE, Matter
from runtime.preprocess import MIN_SIDE, fit_long_side, make_trimap


def sample(item: EvalImage, matter: Matter, seed: int) -> dict:
    """One training sample (float32 planes; see the module docstring) of ``item`` with the mask of ``seed``."""
    mask = simulated_mask(item, RECIPES["phone"], seed)    # of the photo's aspect, a very wide one's too
    trimap = make_trimap(item.alpha.shape, mask=mask)
    alpha = matter.predict(item.image, trimap=trimap, with_trimap_prob=False).alpha
    return {"name": item.name, "seed": seed, "image": item.image.astype(np.float32), "alpha": alpha,
            "prior": guided_mask(item.image, mask), "mask": mask_at(mask, item.alpha.shape),
            "gt": item.alpha.astype(np.float32), "band": (trimap == 128).astype(np.float32), "trimap": trimap}


def refiner_samples(folder: Iterable[EvalImage], matter: Matter, scales: Iterable[float], seeds: Iterable[int],
                    progress: Callable[[str], None] | None = None) -> list[dict]:
    """Every photo of ``folder`` (an :class:`EvalFolder` or a list of images) at each scale (× its native size)
    with each seed's mask."""
    out = []
    for item in folder:
        for scale in scales:
            _check_scale(item, scale)
            scaled = item if scale == 1 else rescale(item, round(max(item.alpha.shape) * scale))
            out += [{**sample(scaled, matter, seed), "scale": scale} for seed in seeds]
        if progress:
            progress(item.name)
    return out


def _check_scale(item: EvalImage, scale: float) -> None:
    check_scale(item.name, item.alpha.shape[::-1], scale)


def check_scale(name: str, size: tuple[int, int], scale: float) -> None:
    """ValueError naming the photo ``name`` of ``size`` (W, H) and the scale where ``scale`` makes a side of it
    shorter than the runtime's MIN_SIDE (it was said as "photo is 2x1" of no photo, with no option, once the model
    ran)."""
    w, h = size
    sw, sh = scaled_size((w, h), round(max(h, w) * scale))       # as rescale scales it
    if min(sh, sw) < MIN_SIDE:
        raise ValueError(f"--scales {scale:g}: photo {name} ({w}x{h}) would be {sw}x{sh}, below the {MIN_SIDE} "
                         "px a side the runtime mattes at least")


def see_through_items(count: int, seed: int, sides: tuple[int, int] = (800, 1600)) -> list[EvalImage]:
    """``count`` composites of see-through subjects (:data:`calib_data.procedural.SEE_THROUGH_KINDS`: nets,
    foliage) over random backgrounds, long sides drawn from ``sides``, landscape or portrait: exact alpha with
    holes from several pixels down to below a phone mask's pixel."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        side = int(rng.integers(sides[0], sides[1] + 1))
        h, w = (side * 3 // 4, side) if rng.random() < 0.5 else (side, side * 3 // 4)
        kind = SEE_THROUGH_KINDS[i % len(SEE_THROUGH_KINDS)]
        items.append(EvalImage(f"{kind}-{i:03d}", *_drawn(kind, (h, w), rng)))
    return items


def phone_scale_items(count: int, seed: int, size: tuple[int, int] = (3024, 4032)) -> list[EvalImage]:
    """``count`` procedural subjects (:data:`calib_data.procedural.KINDS`: hair, fur, veil, ...) composited at a
    phone's 12 megapixels (``size``, landscape or portrait) and area-reduced to the working resolution the refiner
    runs at on such a photo (:data:`runtime.matter.WORKING_SIDE`): 12-megapixel detail as the runtime hands it
    to the refiner."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(count):
        h, w = size if rng.random() < 0.5 else size[::-1]
        kind = KINDS[i % len(KINDS)]
        photo, alpha = _drawn(kind, (h, w), rng)
        small = fit_long_side((h, w), WORKING_SIDE)
        if small:   # area averages of [0, 1] values, clipped: float rounding may step past either end
            photo, alpha = (np.clip(cv2.resize(x, small[::-1], interpolation=cv2.INTER_AREA), 0.0, 1.0)
                            for x in (photo, alpha))
        items.append(EvalImage(f"phone-{kind}-{i:03d}", photo, alpha))
    return items


def _drawn(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(photo, alpha): a procedural subject of ``kind`` drawn at ``shape``, composited over a random background."""
    fg, alpha = make_foreground(kind, shape, rng)
    return composite(fg, random_background(shape, rng), alpha), alpha


def folds(names: list[str], count: int) -> list[list[str]]:
    """``count`` folds of ``names``: the held-back photos first, the rest dealt round-robin."""
    held = [n for n in names if n in REAL_VALIDATION]
    rest = [n for n in names if n not in REAL_VALIDATION]
    return [held] + [rest[i::count - 1] for i in range(count - 1)] if held else [rest[i::count] for i in range(count)]


def most_folds(names: list[str]) -> int:
    """The folds :func:`folds` can make of ``names`` with a photo in each: the held-back photos one (where there
    are any), every other photo one."""
    held = sum(name in REAL_VALIDATION for name in names)
    return len(names) - held + 1 if held else len(names)


def score_sample(alpha: np.ndarray, s: dict) -> dict[str, float]:
    """Whole-image metrics of ``alpha`` against the sample's ground truth (the mask protocol's ``whole``)."""
    return compute_regions(np.clip(alpha, 0, 1), s["gt"], s["trimap"])["all"]
