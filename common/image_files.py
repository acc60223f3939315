"""Image files as the runtime and the data both read them: the size from the header before a pixel is decoded,
the decoding itself, the pixel values and their checks (8 / 16 bits or floats in [0, 1]; a matte in one channel), the
trimap values and their check, float to 8 bits.

Every file is decoded by :func:`decode_image`: its size is read from its header first, and an image over
:data:`MAX_PIXELS` (a decompression bomb: a few megabytes that decode to gigabytes) or in a format whose header
is not read here is refused before a pixel is decoded. Trimaps are uint8 with exactly the values 0
(background), 128 (unknown), 255 (foreground).
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from common.errors import DataError

BG, UNKNOWN, FG = 0, 128, 255   # the trimap's classes (the alphamatting.com / Composition-1k convention)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
TRIMAP_VALUES = (BG, UNKNOWN, FG)
MAX_PIXELS = 50_000_000   # larger images are refused from their header, before decoding (12 MP: 12,192,768 pixels)

# The formats OpenCV decodes whose header Pillow reads (Pillow's names): the size is known before a pixel is
# decoded. Each is recognised by its own leading bytes, the same for both libraries.
HEADER_FORMATS = ("AVIF", "BMP", "GIF", "JPEG", "JPEG2000", "PNG", "SUN", "TIFF", "WEBP")
# Formats OpenCV decodes whose size is not known before decoding, refused: Pillow does not read them, or (Netpbm's
# text header) reads it by other rules than OpenCV.
_UNREAD_FORMATS = ((b"#?", "Radiance HDR"), (b"PF", "PFM"), (b"Pf", "PFM"), (b"P7", "PAM"),
                   (b"\x76\x2f\x31\x01", "OpenEXR"), *((f"P{i}".encode(), "Netpbm") for i in range(1, 7)))
UNREADABLE = "not a readable image (corrupt, truncated or unsupported format)"


def check_pixels(width: int, height: int, path: str | Path | None = None, max_pixels: int = MAX_PIXELS,
                 what: str = "image") -> None:
    """DataError for an image over ``max_pixels``: its float copies alone would take gigabytes."""
    if width * height > max_pixels:
        raise DataError(f"{what} is {width}x{height} ({width * height / 1e6:.0f} megapixels); the limit is "
                        f"{max_pixels / 1e6:.0f} megapixels: scale it down first", path)


def open_header(source, path: str | Path | None = None, formats: tuple[str, ...] | None = HEADER_FORMATS,
                max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Pillow's image of ``source`` (a path or a binary file) with only its header read, once its size is
    within ``max_pixels``; DataError naming ``path`` otherwise, with the real size of an image over the limit."""
    if formats is not None:
        Image.init()
        formats = tuple(f for f in formats if f in Image.OPEN)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # Pillow's own bomb warning and format hints: decided here
            im = Image.open(source, formats=formats)
    except Image.DecompressionBombError as e:   # over twice Pillow's own limit: its message holds the size
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        size = (f"{int(pixels[1]) / 1e6:.0f} megapixels" if pixels
                else f"over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
        raise DataError(f"image is {size}; the limit is {max_pixels / 1e6:.0f} megapixels: scale it down first",
                        path) from None
    except Exception:   # not a format read here, or a header that cannot be parsed
        raise DataError(UNREADABLE, path) from None
    try:
        check_pixels(*im.size, path, max_pixels)
    except DataError:
        im.close()
        raise
    return im


def header_size(data: bytes, path: str | Path | None = None, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) of an encoded image from its header alone (a warning where it holds several frames: the
    first is decoded); DataError when it is over ``max_pixels``, in a format whose header is not read here
    (Radiance HDR, PFM, PAM, OpenEXR, Netpbm: OpenCV would decode all of a bomb before its size is known), or
    not an image at all."""
    return _header(data, path, max_pixels, stacklevel=4)[0]


def _header(data: bytes, path: str | Path | None, max_pixels: int,
            stacklevel: int) -> tuple[tuple[int, int], str | None]:
    """:func:`header_size`, and the header's format and mode as Pillow names them ("JPEG RGB"; None for a TIFF
    whose size was read from its tags); ``stacklevel``: where the warning of several frames points."""
    for magic, name in _UNREAD_FORMATS:
        if data.startswith(magic):
            raise DataError(f"unsupported image format ({name}): save it as PNG or JPEG", path)
    try:
        im = open_header(io.BytesIO(data), path, HEADER_FORMATS, max_pixels)
    except DataError as e:
        size = _tiff_size(data) if e.problem == UNREADABLE and data[:4] in _TIFF_MAGIC else None
        if size is None:
            raise
        check_pixels(*size, path, max_pixels)   # a TIFF Pillow does not open (float samples): from its tags
        return size, None
    with im:
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and im.format != "MPO":   # a multi-page TIFF, an animated WebP or GIF: OpenCV decodes the first
            warnings.warn(f"{path or 'image'}: {frames} frames; the first is used", stacklevel=stacklevel)
        return im.size, f"{im.format} {im.mode}"


_TIFF_MAGIC = {b"II*\0": "<", b"MM\0*": ">"}   # classic TIFF, little- and big-endian
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a classic TIFF's first page from its ImageWidth and ImageLength tags (OpenCV decodes
    float and other samples Pillow does not open); None when its first directory does not hold both."""
    order = _TIFF_MAGIC[data[:4]]
    try:
        (first,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, first)
        tags = {}
        for i in range(count):
            tag, kind, _, value = struct.unpack_from(order + "HHI4s", data, first + 2 + 12 * i)
            if tag in (_TIFF_WIDTH, _TIFF_LENGTH) and kind in (3, 4):     # SHORT or LONG
                tags[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), value)[0]
    except struct.error:   # offsets past the end: a truncated or damaged file
        return None
    return (tags[_TIFF_WIDTH], tags[_TIFF_LENGTH]) if len(tags) == 2 else None


def _imdecode_quietly(data: np.ndarray, flags: int) -> np.ndarray | None:
    """``cv2.imdecode``, with what its native libraries print on the process's stderr (libpng's "PNG input
    buffer is incomplete", OpenCV's own warnings) held back: dropped when decoding fails (the DataError says
    what happened, in one line), passed on when it succeeds."""
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):   # no stderr to protect
        saved = None
    with tempfile.TemporaryFile() as held:
        if saved is not None:
            os.dup2(held.fileno(), 2)
        try:
            img = cv2.imdecode(data, flags)
        except cv2.error:
            img = None
        finally:
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
        if img is not None and held.tell():
            held.seek(0)
            said = memoryview(held.read())
            while said:
                said = said[os.write(2, said):]
    return img


DANGLING_LINK = "a symbolic link to nothing (its target is missing, or it links to itself)"


def reading_problem(path: Path, missing: str = "file not found",
                    folder: str | None = "is a directory, not an image file") -> str | None:
    """Why ``path`` cannot be read as an input file, or None where it is a regular file (a symbolic link to one
    too): ``missing``, a ``folder`` (None: a folder is fine, as a CoreML package is one), or a pipe or a device,
    whose reading could wait for ever. Checked before anything opens it."""
    if path.is_file():
        return None
    if path.is_dir():
        return folder
    if path.exists():
        return "not a regular file (a pipe or a device)"
    return DANGLING_LINK if path.is_symlink() else missing


def check_image_file(path: str | Path) -> Path:
    """``path`` once it is a regular file; DataError naming it otherwise (:func:`reading_problem`)."""
    path = Path(path)
    problem = reading_problem(path)
    if problem:
        raise DataError(problem, path)
    return path


def decode_image(path: str | Path, flags: int = cv2.IMREAD_UNCHANGED, max_pixels: int = MAX_PIXELS, *,
                 rgb: bool = False) -> np.ndarray:
    """The file's pixels as OpenCV decodes them (BGR order, native dtype; ``rgb``: RGB(A) order); DataError naming
    the file when it is missing, empty, corrupt, truncated, of an unsupported format, or over ``max_pixels`` — the
    size is read from the header (:func:`header_size`) of the very bytes decoded, before any pixel is. A colour
    JPEG in RGB order is decoded so by libjpeg itself (a 12-megapixel photo in 71 ms, against 95 with the
    channels swapped after); other images are swapped in place."""
    path = check_image_file(path)
    try:
        data = path.read_bytes()   # one read: the header checked is the header of what is decoded
    except OSError as e:
        raise DataError(f"cannot read it: {e.strerror or e}", path) from None
    if not data:
        raise DataError("file is empty", path)
    kind = _header(data, path, max_pixels, stacklevel=3)[1]
    straight = rgb and flags == cv2.IMREAD_UNCHANGED and kind in _COLOUR_JPEG
    # imdecode of the bytes read: works for any path and never returns a half-decoded image silently.
    img = _imdecode_quietly(np.frombuffer(data, np.uint8), _JPEG_AS_RGB if straight else flags)
    if img is None:
        raise DataError(UNREADABLE, path)
    if rgb and not straight and img.ndim == 3 and img.shape[2] in _TO_RGB:
        img = _swapped(img)
    return img


def _swapped(img: np.ndarray) -> np.ndarray:
    """BGR(A) as RGB(A): in place by cvtColor where it takes the depth (8 and 16 bits, float32: one pass, where a
    reversed view's copy takes 7×), else a reordered copy (float64, 32-bit integers)."""
    if img.dtype in (np.uint8, np.uint16, np.float32):
        return cv2.cvtColor(img, _TO_RGB[img.shape[2]], dst=img)
    return np.ascontiguousarray(img[..., [2, 1, 0, 3][:img.shape[2]]])


_COLOUR_JPEG = ("JPEG RGB", "MPO RGB")    # MPO: a phone's JPEG with previews or a depth map after it (OpenCV decodes
                                           # the first picture, the photo, and no warning is given for the others)
_JPEG_AS_RGB = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION   # IMREAD_UNCHANGED's pixels, red first
_TO_RGB = {3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGBA}               # OpenCV decodes blue first


_NOT_A_TRIMAP_VALUE = np.isin(np.arange(256), TRIMAP_VALUES, invert=True).astype(np.uint8)   # 1 but at 0, 128, 255


def check_trimap(trimap: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    """Validate a trimap array: 2-D uint8 with values in {0, 128, 255}."""
    if trimap.ndim != 2:
        raise DataError(f"trimap must be single-channel, got shape {trimap.shape}", path)
    if trimap.dtype != np.uint8:
        raise DataError(f"trimap must be uint8, got {trimap.dtype}", path)
    if not cv2.countNonZero(cv2.LUT(trimap, _NOT_A_TRIMAP_VALUE)):     # one pass (np.unique sorts: 9x the time)
        return trimap
    bad = np.setdiff1d(np.unique(trimap), TRIMAP_VALUES)
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:8]) + (" ..." if bad.size > 8 else "")
        raise DataError(f"trimap has values other than 0/128/255: {shown}", path)
    return trimap


def in_native_order(arr: np.ndarray) -> np.ndarray:
    """``arr`` in this machine's byte order (a big-endian uint16 compares unequal to np.uint16)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def to_unit_float(arr: np.ndarray, what: str, path: Path | None = None) -> np.ndarray:
    """uint8 / uint16 / bool / float in [0, 1] → float32 in [0, 1], in either byte order; anything else is a
    DataError."""
    arr = in_native_order(arr)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise DataError(f"{what} contains NaN or inf", path)
        lo, hi = float(out.min(initial=0.0)), float(out.max(initial=0.0))
        if lo < 0.0 or hi > 1.0:
            raise DataError(f"{what} is float with values in [{lo:.8g}, {hi:.8g}]; float {what}s must lie in "
                            f"[0, 1] (divide 8-bit data by 255)", path)
        return out
    raise DataError(f"{what} has unsupported dtype {arr.dtype}; use uint8, uint16 or float in [0, 1]", path)


def single_channel(arr: np.ndarray, what: str, expected: str, path: Path | None = None) -> np.ndarray:
    """``arr`` with a colour file's equal channels reduced to one (gray saved as RGB or RGBA accepted), or a
    cutout's transparency where its colour is one flat value (gray + alpha or RGBA: the matte stored as the
    alpha channel); a DataError "<what> has different colour channels; expected <expected>" where they differ,
    or where its colour and its transparency both vary and differ (which of them is the matte?)."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        colour, transparency = (arr[..., :-1], arr[..., -1]) if arr.shape[2] in (2, 4) else (arr, None)
        if transparency is not None and not _flat(transparency):
            if _flat(colour):
                return transparency
            if not (_gray(colour) and np.array_equal(colour[..., 0], transparency)):
                raise DataError(f"{what} has both colour and transparency that vary; expected {expected}", path)
        if not _gray(colour):
            raise DataError(f"{what} has different colour channels; expected {expected}", path)
        arr = arr[..., 0]
    return arr


def _flat(x: np.ndarray) -> bool:
    return x.size == 0 or bool((x == x.flat[0]).all())


def _gray(colour: np.ndarray) -> bool:
    return all(np.array_equal(colour[..., 0], colour[..., c]) for c in range(1, colour.shape[2]))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [0, 1] → uint8 with rounding (the Adobe script's convention)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
