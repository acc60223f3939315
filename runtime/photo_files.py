"""Photo files as a phone writes them: HEIC/HEIF in, the colour profile and metadata carried to the output.

- **HEIC/HEIF** is opened by Pillow through ``pillow-heif`` (:func:`register_heif`, called before any photo
  is opened). libheif applies the file's own rotation and mirror (``irot``/``imir``) and reports EXIF
  orientation 1, so the pixels come out upright; HDR files are read at 8 bits.
- **The output** (:func:`encode_photo`) is written **upright with EXIF orientation 1**: the pixels the
  pipeline rendered are the upright photo, and every viewer shows them the same way. The photo's **ICC
  profile** is embedded unchanged (the pipeline works on the photo's encoded values, a Display P3 photo stays
  Display P3), and its other EXIF fields (camera, date, exposure) are kept.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common.errors import DataError
from common.image_files import MAX_PIXELS, open_header

HEIF_SUFFIXES = (".heic", ".heif", ".hif")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp") + HEIF_SUFFIXES
OUTPUT_SUFFIXES = (".jpg", ".jpeg", ".png")
JPEG_QUALITY = 95
_ORIENTATION = 0x0112


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF files (idempotent). Without ``pillow-heif`` HEIC files stay unreadable, and
    :func:`read_pillow` says which package is missing."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return
    if "HEIF" not in Image.OPEN:
        register_heif_opener()


def is_heif(path: Path) -> bool:
    return path.suffix.lower() in HEIF_SUFFIXES


def is_heif_file(path: Path) -> bool:
    """Whether the file holds a HEIC/HEIF image whatever its name (read from its header when pillow-heif is
    installed)."""
    if "HEIF" not in Image.OPEN:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=("HEIF",)):
                return True
    except Image.DecompressionBombError:   # a HEIF image, and a huge one: read_pillow says how large
        return True
    except Exception:
        return False


def read_pillow(path: str | Path) -> np.ndarray:
    """Decode a file that Pillow reads and OpenCV does not (HEIC/HEIF): uint8 (H, W, 3) RGB or (H, W, 4)
    RGBA, upright; one of more than :data:`common.image_files.MAX_PIXELS` is refused from its header, before
    decoding. DataError naming the file and the problem otherwise."""
    path = Path(path)
    register_heif()
    if is_heif(path) and "HEIF" not in Image.OPEN:
        raise DataError("HEIC/HEIF photos need pillow-heif: pip install pillow-heif", path)
    im = open_header(path, path, None, MAX_PIXELS)   # the size from the header, checked before decoding
    try:
        with im:
            im.load()
            rgb = im.convert("RGBA" if "A" in im.getbands() else "RGB")
    except (OSError, ValueError, SyntaxError) as e:
        detail = " ".join(str(e).split())      # libheif's message ends in a newline: one line
        raise DataError(f"not a readable image (corrupt, truncated or unsupported format): {detail}", path) from None
    return np.asarray(rgb)


@dataclass(frozen=True)
class PhotoMetadata:
    """What of a photo's file an output keeps: its ICC profile and EXIF (orientation already set to 1)."""

    icc_profile: bytes | None = None
    exif: bytes | None = None


def read_metadata(path: str | Path) -> PhotoMetadata:
    """The ICC profile and EXIF of ``path`` (EXIF orientation set to 1: the pixels are read upright). A file
    whose metadata cannot be read has none: its pixels are what matters, and decoding reports real damage.

    Only what stays true of the output is kept: an RGB profile (the output is RGB: a gray or CMYK profile would
    make it an invalid file), no TIFF layout tags (a TIFF's own IFD, which Pillow gives as its EXIF: strip
    offsets, bits per sample), and no EXIF that Pillow finds damaged or that is larger than a JPEG holds (each
    dropped with a warning naming the file)."""
    register_heif()
    try:
        with warnings.catch_warnings(record=True) as caught:     # the pixels' reader reports the others
            warnings.simplefilter("always")
            with Image.open(path) as im:
                icc = _rgb_profile(im.info.get("icc_profile"))
                exif = im.getexif()
    except Exception:   # a format Pillow does not know, broken metadata
        return PhotoMetadata()
    damaged = [" ".join(str(w.message).split()) for w in caught if "exif" in str(w.message).lower()]
    if damaged:
        warnings.warn(f"{path}: its EXIF is damaged ({damaged[0]}); the output is written without it", stacklevel=2)
        return PhotoMetadata(icc)
    return PhotoMetadata(icc, _exif_bytes(exif, path))


TIFF_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 263, 266, 273, 277, 278, 279, 280, 281, 284, 317,
                              320, 322, 323, 324, 325, 338, 339, 530, 531, 532, 34675})
MAX_EXIF_BYTES = 65533   # a JPEG's APP1 segment (its 2-byte length counts itself), the "Exif\0\0" header included


def _exif_bytes(exif: Image.Exif, path: str | Path) -> bytes | None:
    """``exif`` as bytes with orientation 1 and no TIFF layout tags (None: empty, or too large, with a warning)."""
    for tag in TIFF_LAYOUT_TAGS & set(exif):
        del exif[tag]
    if _ORIENTATION in exif:
        exif[_ORIENTATION] = 1
    data = exif.tobytes() if len(exif) else None
    if data is not None and len(data) > MAX_EXIF_BYTES:
        warnings.warn(f"{path}: its EXIF is {len(data):,} bytes, more than a JPEG holds ({MAX_EXIF_BYTES:,}); the "
                      "output is written without it", stacklevel=3)
        return None
    return data


def _rgb_profile(icc: bytes | None) -> bytes | None:
    """``icc`` where it describes RGB pixels (its header's colour space, bytes 16-19, is 'RGB '), else None."""
    return icc if icc and icc[16:20] == b"RGB " else None


def encode_photo(image: np.ndarray, suffix: str, metadata: PhotoMetadata = PhotoMetadata(),
                 quality: int = JPEG_QUALITY) -> bytes:
    """uint8 (H, W, 3) RGB → the bytes of a JPEG (quality 95) or PNG file carrying ``metadata``."""
    suffix = suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"output must be {', '.join(OUTPUT_SUFFIXES)}, got {suffix or 'no suffix'!r}")
    options: dict = {}
    if metadata.icc_profile:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif:
        options["exif"] = metadata.exif
    if suffix == ".png":
        fmt = "PNG"
    else:
        fmt, options["quality"] = "JPEG", int(quality)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format=fmt, **options)
    return buf.getvalue()
