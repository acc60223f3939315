"""Folders of photos with ground-truth alpha, read one image at a time (a 12-megapixel set does not fit twice).

Two layouts:

- **alphamatting.com**: ``input/`` (or ``input_lowres/``), ``gt/``, one folder per trimap (``trimap1/``,
  ``trimap2/``, ...), as :class:`calib_data.readers.AlphaMattingReader` reads it;
- **simple**: ``image/`` (the photos), ``alpha/`` (ground truth, same file stems), optional ``trimap/``
  (0/128/255) and optional ``mask/`` (a coarse person mask, any resolution of the photo's aspect: a
  segmenter's output).

Every file is decoded as the app decodes a photo, mask or trimap (:func:`runtime.preprocess.read_image`: the
size checked from the header, EXIF orientation applied, a DataError naming any file that cannot be read).

``long_side`` scales every photo (area or bicubic), its alpha (area or bilinear) and trimaps (nearest) so
that the long side is that many pixels: the same set at another resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from calib_data.readers import AlphaMattingReader
from common.errors import DataError
from common.image_files import IMAGE_SUFFIXES
from runtime.preprocess import (
    MIN_SIDE,
    check_aspect,
    read_image,
    single_channel,
    to_mask,
    to_rgb,
    to_trimap,
    to_unit_float,
)


NO_IMAGES = "no images with ground truth (expected image/ + alpha/, or the alphamatting.com layout input/ + gt/)"


@dataclass
class EvalImage:
    name: str
    image: np.ndarray                               # float32 (H, W, 3) RGB in [0, 1]
    alpha: np.ndarray                               # float32 (H, W) ground truth in [0, 1]
    trimaps: dict[str, np.ndarray] = field(default_factory=dict)   # uint8 0/128/255 at (H, W)
    mask: np.ndarray | None = None                  # float32 in [0, 1] at the mask's own resolution


MIN_LONG_SIDE = 2 * MIN_SIDE   # a photo up to 2:1 scaled to it keeps its short side at the runtime's MIN_SIDE


class EvalFolder:
    """The images of one folder, in name order; ``folder[i]`` reads image ``i``."""

    def __init__(self, root: str | Path, long_side: int | None = None, limit: int | None = None,
                 only: list[str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("is a file, not a folder of photos" if self.root.exists() else "evaluation folder not found",
                            self.root)
        if long_side is not None and long_side < MIN_LONG_SIDE:
            raise ValueError(f"--long-side must be at least {MIN_LONG_SIDE} px, got {long_side}")
        self.long_side = long_side
        self.layout = "simple" if (self.root / "image").is_dir() else "alphamatting"
        if self.layout == "alphamatting" and not any(self.root.glob("input*")):
            raise DataError(NO_IMAGES, self.root)
        self._reader = None if self.layout == "simple" else AlphaMattingReader(self.root)
        self.names = self._simple_names() if self.layout == "simple" else list(self._reader.names)
        if not self.names:
            raise DataError(NO_IMAGES, self.root)
        if only:
            missing = [n for n in only if n not in self.names]
            if missing:
                raise DataError(f"no image named {', '.join(missing)}", self.root)
            self.names = [n for n in self.names if n in only]
        self.names = self.names[:limit] if limit else self.names
        self.has_masks = self.layout == "simple" and (self.root / "mask").is_dir()
        self._check_companions()

    def _check_companions(self) -> None:
        """DataError naming the first photo of a simple layout with no file in alpha/, trimap/ or mask/ (where
        that folder is there): before any image is read, not when the evaluation reaches it."""
        if self.layout != "simple":
            return
        for sub in ("alpha", "trimap", "mask"):
            if (self.root / sub).is_dir():
                for name in self.names:
                    _find(self.root / sub, name)

    def _simple_names(self) -> list[str]:
        if not (self.root / "alpha").is_dir():
            raise DataError("has image/ but no alpha/ folder of ground truth", self.root)
        return sorted(p.stem for p in (self.root / "image").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[EvalImage]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> EvalImage:
        item = self._read_simple(self.names[i]) if self.layout == "simple" else self._read_alphamatting(i)
        return rescale(item, self.long_side) if self.long_side else item

    def _read_alphamatting(self, i: int) -> EvalImage:
        s = self._reader[self._reader.names.index(self.names[i])]
        if s.alpha is None:
            raise DataError(f"{s.name}: no ground truth in gt/", self.root)
        return EvalImage(s.name, s.image, s.alpha, dict(s.trimaps))

    def _read_simple(self, name: str) -> EvalImage:
        image_path, alpha_path = _find(self.root / "image", name), _find(self.root / "alpha", name)
        image = to_rgb(read_image(image_path), image_path)
        alpha = _read_alpha(alpha_path)
        if alpha.shape != image.shape[:2]:
            raise DataError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]} but the photo ({image_path.name}) is "
                            f"{image.shape[1]}x{image.shape[0]}", alpha_path)
        item = EvalImage(name, image, alpha)
        if (self.root / "trimap").is_dir():
            path = _find(self.root / "trimap", name)
            trimap = to_trimap(read_image(path), path)
            if trimap.shape != alpha.shape:
                raise DataError(f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the photo ({image_path.name}) "
                                f"is {image.shape[1]}x{image.shape[0]}", path)
            item.trimaps["trimap"] = trimap
        if (self.root / "mask").is_dir():
            path = _find(self.root / "mask", name)
            item.mask = to_mask(read_image(path), path)
            check_aspect(item.mask.shape, alpha.shape, "mask", path)    # any resolution, the photo's aspect
        return item


def _read_alpha(path: Path) -> np.ndarray:
    """Ground-truth alpha as float32 (H, W) in [0, 1]: a gray file, or one whose colour channels are equal."""
    arr = single_channel(read_image(path), "alpha matte", "a single-channel matte", path)
    return to_unit_float(arr, "alpha", path)


def _find(folder: Path, stem: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DataError(f"no file named {stem} (one of {', '.join(IMAGE_SUFFIXES)})", folder)


def rescale(item: EvalImage, long_side: int) -> EvalImage:
    """``item`` with its long side at ``long_side`` pixels (the mask keeps its own resolution)."""
    h, w = item.alpha.shape
    s = long_side / max(h, w)
    if s == 1:
        return item
    size = (max(1, round(w * s)), max(1, round(h * s)))
    shrink = s < 1
    image = cv2.resize(item.image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    alpha = cv2.resize(item.alpha, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    trimaps = {k: cv2.resize(t, size, interpolation=cv2.INTER_NEAREST_EXACT) for k, t in item.trimaps.items()}
    return EvalImage(item.name, np.clip(image, 0, 1), np.clip(alpha, 0, 1), trimaps, item.mask)
