"""Pre-processing: photos, masks and trimaps from files or arrays, checked, into the model's inputs.

Choices (each one explicit, so nothing surprising happens to a user's photo):

- **Files** are decoded by OpenCV at their native bit depth (8 or 16 bit) and turned upright with their
  EXIF orientation, read by Pillow (``cv2.IMREAD_UNCHANGED`` ignores it, and Pillow alone would read a
  16-bit RGB file at 8 bits). The eight orientations match ``PIL.ImageOps.exif_transpose`` exactly.
  HEIC/HEIF files are decoded by Pillow with ``pillow-heif``, upright (:mod:`runtime.photo_files`).
- **Arrays** are RGB (not OpenCV's BGR), (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); ``uint8`` is divided
  by 255, ``uint16`` by 65535, floats must already lie in [0, 1] (a float photo in 0..255 is refused,
  not silently clipped); NaN or inf is refused; any other dtype is refused.
- **Grayscale** is replicated to RGB. **RGBA**: the alpha channel is dropped (with a warning unless it is
  fully opaque). Compositing onto some colour would invent a background the camera never saw, and the
  bokeh renderer promises to keep the subject's stored pixels.
- **Masks**: 8-bit (> 127 = person), 16-bit, bool, float in [0, 1], or integer 0/1 labels.
- **Trimap**: a given trimap (uint8 0/128/255, validated) wins over a mask; a coarse person mask becomes a
  trimap with an unknown band around its edge (:func:`trimap_from_mask`: distances at an eighth of the band's
  resolution, one upsample to the photo); with neither, the trimap is all unknown (the model's "no trimap").
  The band follows the mask's own resolution (:func:`band_for_mask`: two mask pixels inside the edge and six
  outside it, where hair and fur reach past a segmenter's outline, at least 14 and 16 photo pixels; 32 and 95 for
  a 256-px mask of a 4032-px photo) unless ``band`` is given (the same number of pixels on both sides).
- **Sizes**: a mask (at any resolution: a segmenter's 256-px output is the phone case) or a trimap whose
  size differs from the photo's is resized to it when the aspect ratios agree within 1 % (mask: bilinear;
  trimap: nearest neighbour, keeping 0/128/255; a trimap with a warning), and refused otherwise. Every error is a :class:`common.errors.DataError` naming the file and the problem.

The model-size geometry is :class:`Letterbox`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Union

import cv2
import numpy as np
from PIL import Image

from common.encoding import encode_inputs
from common.errors import DataError
from common.image_files import (
    MAX_PIXELS,
    UNKNOWN,
    UNREADABLE,
    check_image_file,
    check_pixels,
    check_trimap,
    decode_image,
    in_native_order,
    single_channel,
    to_uint8,
    to_unit_float,
)
from common.values import is_whole_number
from runtime.parallel import strips
from runtime.photo_files import PHOTO_SUFFIXES, is_heif, is_heif_file, read_pillow, register_heif

ImageInput = Union[str, Path, np.ndarray]

ASPECT_TOLERANCE = 0.01   # a mask/trimap is resized to the photo only if the aspect ratios agree this well
MIN_SIDE = 8              # smaller photos carry nothing to matte
MAX_BAND = 2048           # px: an unknown band wider than this around a mask is no longer a band
# A segmenter's mask is uncertain by about a pixel of its own resolution, and a 256-px mask on a 4032-px photo
# is 16 photo pixels per mask pixel: the default band reaches this many mask pixels inside the edge and
# OUTER_BAND_MASK_PIXELS outside it (hair, fur and veils reach past the outline; a wider inner band lets the
# network thin solid or see-through subjects: docs/PHONE_PATH.md), never less than MIN_BAND photo pixels (a
# full-resolution mask still comes from a coarse one; 14 inside, where a wider band thins a net, 16 outside).
BAND_MASK_PIXELS = 2
OUTER_BAND_MASK_PIXELS = 6
DISTANCE_STEPS = 8        # a mask's distances are computed on a grid of band / DISTANCE_STEPS photo pixels
TRIMAP_STRIP_ROWS = 256   # photo rows per pass of the trimap's upsample and classification (64: slower)

_EXIF_ORIENTATION = 0x0112
# EXIF orientation → the array operation that makes the image upright (same as ImageOps.exif_transpose).
_UPRIGHT = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),
    8: lambda a: np.rot90(a, 1),
}


# --------------------------------------------------------------------------------------------- files
def exif_orientation(path: str | Path) -> int:
    """The file's EXIF orientation (1..8), or 1 when it has none or Pillow cannot read its metadata (quietly:
    Pillow's warnings of damaged EXIF name no file; :func:`runtime.photo_files.read_metadata` says it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a format Pillow does not know, or broken metadata: OpenCV decoded the pixels
        return 1
    return value if value in _UPRIGHT else 1


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file upright, at its native dtype, as (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA.
    A file of more than :data:`MAX_PIXELS` is refused from its header, before decoding, and so is a format
    whose header is not read (:func:`common.image_files.decode_image`)."""
    path = check_image_file(path)      # before the format's sniff opens it: a pipe would wait for ever
    register_heif()
    if is_heif(path) or is_heif_file(path):   # OpenCV does not decode HEIC; libheif returns it upright
        return read_pillow(path)
    try:
        img = decode_image(path, max_pixels=MAX_PIXELS, rgb=True)
    except DataError as e:
        if e.problem == UNREADABLE and path.suffix.lower() not in PHOTO_SUFFIXES:
            raise DataError(f"unsupported image format {path.suffix or '(no suffix)'!r}: photos are "
                            f"{', '.join(PHOTO_SUFFIXES)}", path) from None
        raise e
    return np.ascontiguousarray(_UPRIGHT[exif_orientation(path)](img))


def _as_array(source: ImageInput, what: str) -> tuple[np.ndarray, Path | None]:
    if isinstance(source, (str, Path)):
        return read_image(source), Path(source)
    if isinstance(source, np.ndarray):
        return source, None
    raise DataError(f"{what} must be a file path or a NumPy array, got {type(source).__name__}")


# --------------------------------------------------------------------------------------------- pixels
def to_rgb(arr: np.ndarray, path: Path | None = None) -> np.ndarray:
    """A photo array → float32 (H, W, 3) RGB in [0, 1] (gray replicated, an alpha channel dropped)."""
    return to_unit_float(rgb_pixels(arr, path), "photo", path)


def as_uint8_rgb(photo: np.ndarray, path: Path | None = None) -> np.ndarray:
    """A photo array as uint8 (H, W, 3) RGB: uint8 RGB as is, anything else through the runtime's checks
    and conversions (:func:`to_rgb`), rounded to 8 bits; TypeError for what is not an array (a file's path)."""
    if not isinstance(photo, np.ndarray):
        raise TypeError(f"photo must be a numpy array (a file: runtime.preprocess.read_image), got "
                        f"{type(photo).__name__}")
    if photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= MIN_SIDE:
        return np.ascontiguousarray(photo)
    return to_uint8(to_rgb(photo, path))


def rgb_pixels(arr: np.ndarray, path: Path | None = None) -> np.ndarray:
    """A photo array → (H, W, 3) RGB, checked as :func:`to_rgb` checks it: 8-bit pixels stay uint8 (a
    12-megapixel photo as float is 145 MB), anything else is float32 in [0, 1]."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        if not _is_opaque(arr[..., 3]):
            warnings.warn(f"{path or 'photo'}: the alpha channel is dropped; matting uses the RGB pixels as stored",
                          stacklevel=3)
        arr = arr[..., :3]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"photo must be (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA, got shape {arr.shape}", path)
    if min(arr.shape[:2]) < MIN_SIDE:
        raise DataError(f"photo is {arr.shape[1]}x{arr.shape[0]}; both sides must be at least {MIN_SIDE} px", path)
    check_pixels(arr.shape[1], arr.shape[0], path, what="photo")
    return arr if arr.dtype == np.uint8 else to_unit_float(arr, "photo", path)


def _is_opaque(channel: np.ndarray) -> bool:
    if np.issubdtype(channel.dtype, np.integer):
        return bool((channel == np.iinfo(channel.dtype).max).all())
    return bool((channel >= 1.0).all())


def load_photo(image: ImageInput) -> tuple[np.ndarray, Path | None]:
    """A photo path or array → (float32 (H, W, 3) RGB in [0, 1], its path or None)."""
    arr, path = _as_array(image, "photo")
    return to_rgb(arr, path), path


def load_pixels(image: ImageInput) -> tuple[np.ndarray, Path | None]:
    """A photo path or array → (its :func:`rgb_pixels`: uint8 kept, else float32 in [0, 1], its path or None)."""
    arr, path = _as_array(image, "photo")
    return rgb_pixels(arr, path), path


def to_mask(arr: np.ndarray, path: Path | None = None) -> np.ndarray:
    """A coarse mask → float32 (H, W) in [0, 1]; colour masks must have equal channels.

    An integer mask holding only 0 and 1 is a label mask (1 = person), not an 8-bit mask that is nearly
    black everywhere."""
    arr = single_channel(arr, "mask", "a single-channel mask", path)
    if arr.ndim != 2:
        raise DataError(f"mask must be (H, W), got shape {arr.shape}", path)
    if np.issubdtype(arr.dtype, np.integer) and arr.max(initial=0) == 1 and arr.min(initial=0) == 0:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer) and arr.dtype not in (np.uint8, np.uint16):
        raise DataError(f"mask is {arr.dtype} with values from {arr.min(initial=0)} to {arr.max(initial=0)}: an "
                        "integer mask of another type than uint8 / uint16 holds labels 0 and 1 only (a 0..255 mask: "
                        "cast it to uint8)", path)
    return to_unit_float(arr, "mask", path)


def to_trimap(arr: np.ndarray, path: Path | None = None) -> np.ndarray:
    """A trimap → uint8 (H, W) with values 0 / 128 / 255 only (gray files saved as RGB accepted)."""
    return check_trimap(single_channel(arr, "trimap", "grayscale", path), path)


# --------------------------------------------------------------------------------------------- trimaps
def fit_to_photo(arr: np.ndarray, shape: tuple[int, int], what: str, path: Path | None,
                 interpolation: int) -> np.ndarray:
    """``arr`` at the photo's (H, W), resized when the aspect ratio agrees within 1 % (a trimap with a warning:
    a mask at its own resolution is the phone case, a trimap of another size a likely mistake)."""
    h, w = shape
    ah, aw = arr.shape[:2]
    if (ah, aw) == (h, w):
        return arr
    check_aspect(arr.shape[:2], shape, what, path)
    if what != "mask":
        warnings.warn(f"{path or what}: {what} is {aw}x{ah}, resized to the photo's {w}x{h}", stacklevel=3)
    return cv2.resize(arr, (w, h), interpolation=interpolation)


def check_aspect(own: tuple[int, int], shape: tuple[int, int], what: str, path: Path | None) -> None:
    """DataError unless an (H, W) = ``own`` map has the photo's aspect ratio within 1 %."""
    (ah, aw), (h, w) = own, shape
    if min(ah, aw) < 1:
        raise DataError(f"{what} is {aw}x{ah}: it has no pixels", path)
    if abs((aw / ah) / (w / h) - 1.0) > ASPECT_TOLERANCE:
        hint = " (it matches the photo turned by 90°: was one of them rotated, by its EXIF orientation for example?)" if (ah, aw) == (w, h) else ""
        raise DataError(f"{what} is {aw}x{ah} but the photo is {w}x{h}: different aspect ratio{hint}", path)


def read_mask(mask: ImageInput, shape: tuple[int, int]) -> np.ndarray:
    """A coarse mask (path or array) as float32 (h, w) in [0, 1] at its own resolution, checked against the
    photo's ``shape``: what :func:`make_trimap` and the band refiner take."""
    arr, path = _as_array(mask, "mask")
    arr = to_mask(arr, path)
    check_aspect(arr.shape, shape, "mask", path)
    return arr


def check_band(band: int) -> int:
    """The unknown band around a mask's edge, in photo pixels: an integer from 1 to MAX_BAND; ValueError
    naming it otherwise. (A band wider than the photo makes it all unknown: :func:`make_trimap` clamps it.)"""
    if not is_whole_number(band) or not 1 <= band <= MAX_BAND:
        raise ValueError(f"band must be a whole number of pixels from 1 to {MAX_BAND}, got {band!r}")
    return int(band)


class Band(NamedTuple):
    """The unknown band around a mask's edge, in photo pixels: ``inside`` the mask and ``outside`` it."""

    inside: int
    outside: int


MIN_BAND = Band(inside=14, outside=16)   # the default band's floor, photo pixels (see BAND_MASK_PIXELS)


def as_band(band: int | Band) -> Band:
    """``band`` as a :class:`Band` (a whole number of pixels is the same on both sides), each side checked by
    :func:`check_band`."""
    if isinstance(band, tuple) and len(band) != 2:
        raise ValueError(f"band must be a whole number of pixels or (inside, outside), got {band!r}")
    inside, outside = band if isinstance(band, tuple) else (band, band)
    return Band(check_band(inside), check_band(outside))


def fit_long_side(shape: tuple[int, int], side: int) -> tuple[int, int] | None:
    """(h, w) of an (h, w) image scaled to ``side`` px on its long side (rounded, each at least 1); None when it
    is no larger than that already."""
    h, w = shape[:2]
    if max(h, w) <= side:
        return None
    s = side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def band_for_mask(photo_shape: tuple[int, int], mask_shape: tuple[int, int]) -> Band:
    """The default unknown band, in photo pixels, around the edge of a mask of ``mask_shape``."""
    scale = max(photo_shape[:2]) / max(mask_shape[:2])
    return Band(*(min(MAX_BAND, max(floor, math.ceil(n * scale)))
                  for n, floor in zip((BAND_MASK_PIXELS, OUTER_BAND_MASK_PIXELS), MIN_BAND)))


def make_trimap(shape: tuple[int, int], trimap: ImageInput | None = None, mask: ImageInput | None = None,
                band: int | Band | None = None, *, at: tuple[int, int] | None = None) -> np.ndarray:
    """The uint8 trimap for a photo of ``shape``: given, from a mask (``band``: the unknown band in photo pixels,
    a number for both sides or a :class:`Band`; None: :func:`band_for_mask`, from the mask's own resolution), or
    all unknown. ``at``: the (h, w) of the same aspect to make it at (default ``shape``): a given trimap resized
    (nearest), a mask's made there with its band scaled from the photo's pixels (not made at full resolution
    and reduced: :class:`runtime.matter.Matter`'s working resolution)."""
    at = tuple(shape) if at is None else tuple(at)
    if trimap is not None:
        if mask is not None:
            warnings.warn("both a trimap and a mask were given: the trimap is used, the mask ignored", stacklevel=2)
        arr, path = _as_array(trimap, "trimap")
        return trimap_at(fit_to_photo(to_trimap(arr, path), shape, "trimap", path, cv2.INTER_NEAREST_EXACT), at)
    if mask is not None:
        arr = read_mask(mask, shape)
        band = band_for_mask(shape, arr.shape) if band is None else as_band(band)
        scale = 1 if at == tuple(shape) else max(at) / max(shape)
        return trimap_from_mask(arr, at, tuple(min(side, max(shape)) * scale for side in band))
    return np.full(at, UNKNOWN, np.uint8)


def trimap_at(trimap: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    """A uint8 trimap at (h, w) ``at``: itself, or resized by nearest neighbour (no class is blended)."""
    return trimap if tuple(at) == trimap.shape else cv2.resize(trimap, tuple(at)[::-1],
                                                              interpolation=cv2.INTER_NEAREST_EXACT)


def trimap_from_mask(mask: np.ndarray, shape: tuple[int, int], band: float | tuple[float, float],
                     threshold: float = 0.5) -> np.ndarray:
    """The uint8 trimap of a photo of ``shape`` from a float mask at any resolution of its aspect: unknown
    within ``band`` photo pixels of the mask's edge (a number: both sides; a :class:`Band` or a pair: inside and
    outside the mask, fractions allowed; values above ``threshold`` are the person).

    The same band as a Euclidean distance transform of the mask bilinearly resized to the photo (foreground
    where the nearest background pixel is more than ``band.inside`` away, and the reverse), computed where it
    is cheap: the mask resized to a grid of ``band / DISTANCE_STEPS`` photo pixels (the narrower side's; the
    photo's own for a band of up to that many pixels: then exactly that transform), its signed distance there,
    and one bilinear upsample of it to the photo, classified strip by strip as it is made (the 12-megapixel
    photo's float distances would take 48 MB). The band's limits move by up to about half a grid step (band /
    16 pixels; on the 12-megapixel portrait of ``benchmarks.pipeline_stages``, 0.1 % of the pixels change
    class) for a tenth of the cost."""
    inside, outside = band if isinstance(band, tuple) else (band, band)
    h, w = shape
    step = max(1.0, min(inside, outside) / DISTANCE_STEPS)     # photo pixels per grid pixel
    grid = (max(1, round(w / step)), max(1, round(h / step)))
    shrink = step > 1 and grid[0] * grid[1] < mask.shape[0] * mask.shape[1]
    person = cv2.compare(cv2.resize(mask, grid, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR),
                         threshold, cv2.CMP_GT)
    signed = cv2.subtract(cv2.distanceTransform(person, cv2.DIST_L2, cv2.DIST_MASK_PRECISE),
                          cv2.distanceTransform(cv2.bitwise_not(person), cv2.DIST_L2, cv2.DIST_MASK_PRECISE))
    # pixel-centre distances d on the grid are (d - 1/2)·step + 1/2 photo pixels: the edge lies between centres
    limits = ((inside - 0.5) / step + 0.5, -((outside - 0.5) / step + 0.5))
    if grid == (w, h):
        return _classify(signed, *limits)
    # the bilinear upsample to the photo, separably: to its height at the grid's width, then strip by strip to
    # its width, each strip classified as it comes (no full-resolution float plane)
    tall = cv2.resize(signed, (grid[0], h), interpolation=cv2.INTER_LINEAR)
    trimap = np.empty((h, w), np.uint8)
    for rows in strips(h, TRIMAP_STRIP_ROWS):
        trimap[rows] = _classify(cv2.resize(tall[rows], (w, rows.stop - rows.start), interpolation=cv2.INTER_LINEAR),
                                 *limits)
    return trimap


def _classify(signed: np.ndarray, fg_above: float, bg_below: float) -> np.ndarray:
    """uint8 trimap of a signed distance to the mask's edge (positive inside): foreground above ``fg_above``,
    background below ``bg_below``, unknown between."""
    fg = cv2.compare(signed, fg_above, cv2.CMP_GT)
    return cv2.bitwise_or(fg, cv2.bitwise_and(cv2.compare(signed, bg_below, cv2.CMP_GE), UNKNOWN))


# --------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Letterbox:
    """Photo (full resolution) ↔ model input: an aspect-preserving resize, then reflect padding.

    ``full``: the photo's (H, W); ``scaled``: its size after the resize; ``padded``: the model input's
    size; ``pads``: (top, bottom, left, right), centred as :mod:`adamatting.padding` does.

    The photo is scaled to fit inside the model's fixed ``input_size`` (up or down), then letterboxed: the
    same geometry for a checkpoint and for its exports (:class:`runtime.matter.Matter`).

    Reflect padding (rather than zeros) keeps the border statistics the network saw in training, as
    :func:`adamatting.padding.pad_to_stride` does; the trimap is reflected with the image.
    """

    full: tuple[int, int]
    scaled: tuple[int, int]
    padded: tuple[int, int]

    @classmethod
    def fit(cls, full: tuple[int, int], input_size: tuple[int, int]) -> "Letterbox":
        (h, w), (mh, mw) = full, input_size
        s = min(mh / h, mw / w)
        scaled = (min(mh, max(1, round(h * s))), min(mw, max(1, round(w * s))))
        return cls(full, scaled, (mh, mw))

    @property
    def pads(self) -> tuple[int, int, int, int]:
        ph, pw = self.padded[0] - self.scaled[0], self.padded[1] - self.scaled[1]
        return ph // 2, ph - ph // 2, pw // 2, pw - pw // 2

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """The photo at ``scaled`` size (area averaging down, bilinear up)."""
        if image.shape[:2] == self.scaled:
            return image
        shrink = self.scaled[0] < self.full[0]
        return cv2.resize(image, self.scaled[::-1], interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)

    def resize_trimap(self, trimap: np.ndarray) -> np.ndarray:
        """The trimap at ``scaled`` size by nearest neighbour (values stay 0 / 128 / 255)."""
        if trimap.shape == self.scaled:
            return trimap
        return cv2.resize(trimap, self.scaled[::-1], interpolation=cv2.INTER_NEAREST_EXACT)

    def pad(self, x: np.ndarray) -> np.ndarray:
        """Reflect-pad a (..., H, W) array from ``scaled`` to ``padded`` (the array itself where it fills it)."""
        top, bottom, left, right = self.pads
        if not (top or bottom or left or right):
            return x
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)], mode="reflect")

    def crop(self, x: np.ndarray) -> np.ndarray:
        """The ``scaled`` region of a (..., padded H, padded W) array."""
        top, _, left, _ = self.pads
        return x[..., top:top + self.scaled[0], left:left + self.scaled[1]]

    def model_inputs(self, image_small: np.ndarray, trimap_small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled image and trimap → the encoded, padded (1, 3, H, W) and (1, 1, H, W) model inputs."""
        img, tri = encode_inputs(image_small, trimap_small)
        return np.ascontiguousarray(self.pad(img)[None]), np.ascontiguousarray(self.pad(tri)[None])
