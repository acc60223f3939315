"""Reading and writing images, alpha mattes and trimaps, with errors that name the file.

Conventions used across the project:
- images are float32 RGB in [0, 1], shape (H, W, 3);
- alpha mattes are float32 in [0, 1], shape (H, W) (8-bit files are divided by 255, 16-bit by 65535; a float
  file must lie in [0, 1] and be finite: one in 0..255 is refused, not clipped);
- trimaps are uint8 with exactly the values 0 (background), 128 (unknown), 255 (foreground).

Every file is decoded by :func:`common.image_files.decode_image`, which refuses an image over
:data:`common.image_files.MAX_PIXELS`, or in a format whose header is not read, before a pixel is decoded.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from common.errors import DataError
from common.image_files import check_trimap, decode_image, single_channel, to_uint8, to_unit_float
from common.outputs import atomic_path


def read_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an image as float32 RGB plus its alpha channel (None when it has none).

    Grayscale is replicated to RGB explicitly; 16-bit files are scaled by 65535.
    """
    path = Path(path)
    img = decode_image(path, cv2.IMREAD_UNCHANGED, rgb=True)
    if img.ndim == 2:
        rgb, alpha = np.repeat(img[..., None], 3, axis=2), None
    elif img.ndim == 3 and img.shape[2] == 1:
        rgb, alpha = np.repeat(img, 3, axis=2), None
    elif img.ndim == 3 and img.shape[2] == 3:
        rgb, alpha = img, None
    elif img.ndim == 3 and img.shape[2] == 4:
        rgb, alpha = img[..., :3], img[..., 3]
    else:
        raise DataError(f"unsupported channel layout {img.shape}", path)
    rgb = to_unit_float(np.ascontiguousarray(rgb), "image", path)
    return rgb, (None if alpha is None else to_unit_float(alpha, "alpha", path))


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image as float32 RGB in [0, 1]; an alpha channel, if any, is dropped."""
    return read_rgba(path)[0]


def read_alpha(path: str | Path) -> np.ndarray:
    """Read an alpha matte as float32 (H, W) in [0, 1], as the evaluation reads one: a gray file, one whose colour
    channels are equal (as alphamatting.com ships), or a cutout's transparency where its colour is flat
    (:func:`common.image_files.single_channel`); 8- and 16-bit files scaled, floats in [0, 1] only."""
    path = Path(path)
    img = single_channel(decode_image(path, cv2.IMREAD_UNCHANGED), "alpha matte", "a single-channel matte", path)
    return to_unit_float(img, "alpha", path)


def read_trimap(path: str | Path) -> np.ndarray:
    """Read a trimap file (0 = bg, 128 = unknown, 255 = fg) as uint8 (H, W), validated."""
    path = Path(path)
    img = decode_image(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        if not all(np.array_equal(img[..., 0], img[..., c]) for c in range(1, min(3, img.shape[2]))):
            raise DataError("trimap has different colour channels; expected grayscale", path)
        img = img[..., 0]
    if img.dtype != np.uint8:
        raise DataError(f"trimap must be 8-bit, got {img.dtype}", path)
    return check_trimap(img, path)


def check_same_size(items: dict[str, tuple[np.ndarray, Path | None]]) -> None:
    """Raise DataError naming the file whose (H, W) differs from the first item's."""
    names = list(items)
    ref_name = names[0]
    ref_arr, ref_path = items[ref_name]
    for name in names[1:]:
        arr, path = items[name]
        if arr.shape[:2] != ref_arr.shape[:2]:
            raise DataError(
                f"{name} is {arr.shape[1]}x{arr.shape[0]} but {ref_name} "
                f"({ref_path if ref_path else 'array'}) is {ref_arr.shape[1]}x{ref_arr.shape[0]}",
                path,
            )


def write_image(path: str | Path, img: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Write a float [0,1] or uint8 RGB / gray image atomically (format from the suffix)."""
    path = Path(path)
    arr = img if img.dtype == np.uint8 else to_uint8(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise DataError(f"cannot write an image of shape {arr.shape}: need gray, RGB or RGBA", path)
        arr = arr[..., ::-1] if arr.shape[2] == 3 else arr[..., [2, 1, 0, 3]]
    try:
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix.lower() in (".jpg", ".jpeg") else []
        ok, buf = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(arr), params)
    except cv2.error:  # unknown suffix: OpenCV raises instead of returning False
        ok = False
    if not ok:
        raise DataError(f"could not encode image as {path.suffix or '.png'}", path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path
