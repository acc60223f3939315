"""Backgrounds for composites: scikit-image's bundled photos, procedural textures, or a user's folder.

All backgrounds are float32 RGB HxWx3 in [0, 1]. ``random_background`` returns one of exactly the
requested size: photos are upscaled (bicubic, by the ratio that makes both sides fit) only when
smaller than the request, then randomly cropped; procedural textures are generated at that size.
"""

from __future__ import annotations

import colorsys
import functools
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from calib_data.procedural import fractal_noise
from common.errors import DataError
from common.image_files import decode_image

SOURCES = ("natural", "procedural", "folder")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# scikit-image loaders of photographs that ship inside the wheel (no download), with their files.
# Loaders whose file is missing are skipped, so nothing here ever reaches for the network.
_SKIMAGE_PHOTOS = {
    "astronaut": "astronaut.png", "coffee": "coffee.png", "chelsea": "chelsea.png", "rocket": "rocket.jpg",
    "camera": "camera.png", "coins": "coins.png", "grass": "grass.png", "gravel": "gravel.png",
    "brick": "brick.png", "moon": "moon.png", "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png", "stereo_motorcycle": "motorcycle_left.png", "clock": "clock_motion.png",
}


# --------------------------------------------------------------------------------------- photos

def natural_backgrounds() -> list[np.ndarray]:
    """scikit-image's bundled photographs that load offline, as float32 RGB in [0, 1].

    Loaded once per process; the arrays are shared and read-only (copy before writing).
    """
    return list(_natural_backgrounds())


@functools.cache
def _natural_backgrounds() -> tuple[np.ndarray, ...]:
    import skimage.data

    photos = []
    for loader, filename in _SKIMAGE_PHOTOS.items():
        if not (Path(skimage.data.data_dir) / filename).is_file() or not hasattr(skimage.data, loader):
            continue
        try:
            image = getattr(skimage.data, loader)()
        except Exception:   # a loader that changed or needs an optional dependency: skip it
            continue
        if isinstance(image, tuple):   # stereo_motorcycle → (left, right, disparity)
            image = image[0]
        photo = _to_rgb_float(np.asarray(image))
        photo.setflags(write=False)
        photos.append(photo)
    return tuple(photos)


def folder_backgrounds(folder: str | Path) -> list[Path]:
    """Image files (png, jpg, jpeg, bmp, tif, tiff, webp; any case) in ``folder`` and its subfolders, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("background folder does not exist or is not a folder", folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no background images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in folder", folder)
    return files


@functools.lru_cache(maxsize=8)
def _folder_listing(folder: str) -> tuple[Path, ...]:
    """``folder_backgrounds`` listed once per process for ``random_background`` (errors are not cached)."""
    return tuple(folder_backgrounds(folder))


def refresh_folders() -> None:
    """Forget the folder listings, so files added or removed since are seen (each set build calls this)."""
    _folder_listing.cache_clear()


def load_background(path: str | Path) -> np.ndarray:
    """One background image as float32 RGB in [0, 1].

    Gray images are replicated to RGB, an alpha channel is dropped, 16-bit images keep their
    precision. A missing, unreadable or corrupt file raises DataError naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("background image does not exist", path)
    image = decode_image(path, rgb=True)   # the size checked from the header first, as for every image read
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    try:
        return _to_rgb_float(image)
    except ValueError as e:
        raise DataError(str(e), path) from None


def _to_rgb_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16/float, gray/RGB/RGBA → float32 RGB in [0, 1] (alpha dropped, gray replicated)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"unsupported image layout {image.shape}: need gray, RGB or RGBA")
    image = image[..., :3]
    # Integer images span their type's range; float (and bool) images are taken as [0, 1] already.
    scale = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    return np.ascontiguousarray(np.clip(image.astype(np.float32) / scale, 0.0, 1.0))


# ------------------------------------------------------------------------------------ procedural

def procedural_background(size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A textured background of ``size`` (H, W), float32 RGB in [0, 1].

    A colour gradient with multi-scale noise, overlaid with one or two motifs (stripes, checker,
    bokeh light spots, blurred shapes) and sometimes an overall defocus blur.
    """
    h, w = _check_size(size)
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    a = rng.uniform(0, 2 * np.pi)
    ramp = (xs * math.cos(a) + ys * math.sin(a)) / max(h, w)
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    image = c0 + (c1 - c0) * ramp[..., None]
    tint = rng.normal(0.0, 1.0, 3).astype(np.float32)
    image *= 1 + rng.uniform(0.05, 0.3) * fractal_noise((h, w), rng, cells=rng.uniform(2, 8))[..., None]
    image += 0.05 * fractal_noise((h, w), rng, cells=4)[..., None] * (tint / np.linalg.norm(tint))

    motifs = (_stripes, _checker, _bokeh, _shapes)
    for i in rng.choice(len(motifs), size=rng.integers(1, 3), replace=False):
        image = motifs[i](np.clip(image, 0, 1), rng, xs, ys)
    if rng.random() < 0.4:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 4.0) * max(h, w) / 512)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _stripes(image, rng, xs, ys) -> np.ndarray:
    """Soft stripes along a random direction, their phase warped by noise."""
    h, w = image.shape[:2]
    a = rng.uniform(0, np.pi)
    period = rng.uniform(0.02, 0.15) * max(h, w)
    u = (xs * math.cos(a) + ys * math.sin(a)) / period + rng.uniform(0.0, 1.5) * fractal_noise((h, w), rng, cells=3)
    sharpness = rng.uniform(1.0, 6.0)
    t = 0.5 + 0.5 * np.tanh(sharpness * np.sin(2 * np.pi * u)) / math.tanh(sharpness)
    return _blend(image, _random_colour(rng), rng.uniform(0.3, 0.9) * t)


def _checker(image, rng, xs, ys) -> np.ndarray:
    """A rotated checkerboard (tiles, fabric), slightly softened."""
    h, w = image.shape[:2]
    a = rng.uniform(0, np.pi)
    cell = rng.uniform(0.02, 0.1) * max(h, w)
    u = (xs * math.cos(a) + ys * math.sin(a)) / cell
    v = (-xs * math.sin(a) + ys * math.cos(a)) / cell
    t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
    t = cv2.GaussianBlur(t, (0, 0), rng.uniform(0.4, 2.0))
    return _blend(image, _random_colour(rng), rng.uniform(0.3, 0.8) * t)


def _bokeh(image, rng, xs, ys) -> np.ndarray:
    """Out-of-focus light spots: soft discs, brighter at the rim, added with a screen blend."""
    h, w = image.shape[:2]
    m = max(h, w)
    light = np.zeros((h, w, 3), np.float32)
    for _ in range(rng.integers(8, 40)):
        r = m * rng.uniform(0.01, 0.07)
        cx, cy = rng.uniform(-r, w + r), rng.uniform(-r, h + r)
        x0, x1 = max(int(cx - r) - 2, 0), min(int(cx + r) + 3, w)
        y0, y1 = max(int(cy - r) - 2, 0), min(int(cy + r) + 3, h)
        if x0 >= x1 or y0 >= y1:
            continue
        d = np.hypot(xs[:, x0:x1] - cx, ys[y0:y1] - cy) / r
        edge = max(0.04, 1.5 / r)   # about a pixel of soft edge, wider for small spots
        disc = np.clip((1.0 - d) / edge + 0.5, 0.0, 1.0) * (0.6 + 0.4 * np.minimum(d, 1.0) ** 2)
        colour = _random_colour(rng, value=(0.6, 1.0)) * rng.uniform(0.2, 0.7)
        light[y0:y1, x0:x1] += disc[..., None] * colour
    light = np.clip(light, 0.0, 1.0)
    return 1.0 - (1.0 - image) * (1.0 - light)


def _shapes(image, rng, xs, ys) -> np.ndarray:
    """Random semi-opaque ellipses and rectangles, blurred as if out of focus."""
    h, w = image.shape[:2]
    m = max(h, w)
    layer = image.copy()
    for _ in range(rng.integers(3, 12)):
        centre = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
        axes = (float(m * rng.uniform(0.03, 0.25)), float(m * rng.uniform(0.03, 0.25)))
        mask = np.zeros((h, w), np.uint8)
        if rng.random() < 0.5:
            cv2.ellipse(mask, (centre, axes, float(rng.uniform(0, 180))), 255, -1, cv2.LINE_AA)
        else:
            box = cv2.boxPoints((centre, axes, float(rng.uniform(0, 180))))
            cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 255, cv2.LINE_AA)
        layer = _blend(layer, _random_colour(rng), rng.uniform(0.4, 1.0) * (mask.astype(np.float32) / 255))
    return cv2.GaussianBlur(layer, (0, 0), rng.uniform(1.0, 6.0) * m / 512)


def _random_colour(rng, saturation=(0.0, 0.9), value=(0.1, 0.95)) -> np.ndarray:
    """A random colour drawn in HSV, as float32 RGB."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return np.array(rgb, np.float32)


def _blend(image: np.ndarray, colour: np.ndarray, t: np.ndarray) -> np.ndarray:
    return image + (colour - image) * t[..., None]


# ---------------------------------------------------------------------------------------- picking

def random_background(size: Sequence[int], rng: np.random.Generator,
                      sources: Sequence[str] = ("natural", "procedural"),
                      folder: str | Path | None = None) -> np.ndarray:
    """A background of exactly ``size`` (H, W), from a source drawn uniformly from ``sources``.

    Sources: "natural" (scikit-image photos), "procedural" (textures), "folder" (images in
    ``folder``). Giving ``folder`` adds "folder" to the sources if it is not listed. Photos smaller
    than ``size`` are upscaled (bicubic) just enough to cover it, then a random crop is taken.
    """
    h, w = _check_size(size)
    sources = tuple(sources)
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise DataError(f"unknown background sources {unknown}; use {', '.join(SOURCES)}")
    if folder is not None and "folder" not in sources:
        sources += ("folder",)
    if not sources:
        raise DataError("no background sources given")
    if "folder" in sources and folder is None:
        raise DataError("background source 'folder' needs a folder")
    listing = _folder_listing(str(Path(folder).resolve())) if folder is not None else ()

    source = sources[int(rng.integers(len(sources)))]
    if source == "procedural":
        return procedural_background((h, w), rng)
    if source == "natural":
        photos = natural_backgrounds()
        if not photos:
            raise DataError("no scikit-image photos could be loaded for natural backgrounds")
        photo = photos[int(rng.integers(len(photos)))]
    else:
        photo = load_background(listing[int(rng.integers(len(listing)))])
    return random_crop(photo, (h, w), rng)


def random_crop(image: np.ndarray, size: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random (H, W) window of ``image``, upscaled first (bicubic) if it is smaller than that."""
    h, w = _check_size(size)
    ih, iw = image.shape[:2]
    scale = max(h / ih, w / iw)
    if scale > 1:
        new_w, new_h = max(w, math.ceil(iw * scale)), max(h, math.ceil(ih * scale))
        image = np.clip(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        ih, iw = new_h, new_w
    y = int(rng.integers(ih - h + 1))
    x = int(rng.integers(iw - w + 1))
    return np.ascontiguousarray(image[y:y + h, x:x + w], dtype=np.float32)


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {h}×{w}")
    return h, w
