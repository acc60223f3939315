"""Folders of photos with ground-truth alpha, read one image at a time (a 12-megapixel set does not fit twice).

Two layouts:

- **alphamatting.com**: ``input/`` (or ``input_lowres/``), ``gt/``, one folder per trimap (``trimap1/``,
  ``trimap2/``, ...), as :class:`calib_data.readers.AlphaMattingReader` reads it;
- **simple**: ``image/`` (the photos), ``alpha/`` (ground truth, same file stems), optional ``trimap/``
  (0/128/255) and optional ``mask/`` (a coarse person mask, any resolution of the photo's aspect: a
  segmenter's output).

In both, every photo needs a file of its name in each of the other folders, and no folder may hold two files of
one name (``GT01.png`` and ``GT01.jpg``); sub-folders and entries that are not files are skipped.

Every file is decoded as the app decodes a photo, mask or trimap (:func:`runtime.preprocess.read_image`: the
size checked from the header, EXIF orientation applied, a DataError naming any file that cannot be read).

``long_side`` scales every photo (area or bicubic), its alpha (area or bilinear) and trimaps (nearest) so
that the long side is that many pixels: the same set at another resolution.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from calib_data.io import check_same_size
from calib_data.readers import AlphaMattingReader
from common.errors import DataError
from common.image_files import IMAGE_SUFFIXES, open_header
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
    """The images of one folder, in name order; ``folder[i]`` reads image ``i``.

    Everything that can be known from the file names and headers is checked when it is made, before any image is
    read: two files of one folder that share a name (``GT01.png`` and ``GT01.jpg``: which is the photo?), a photo
    without its ground truth, trimap or mask, and a photo that ``long_side`` would scale below the runtime's
    :data:`~runtime.preprocess.MIN_SIDE`. Folders and other entries that are not files are skipped (a link to
    nothing is not: it is named when it is read); a ground truth with no photo of its name is said in a warning."""

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
        # the photos' folder and each companion folder: (key, folder), the ground truth's key "alpha"
        self._folders = self._simple_folders() if self.layout == "simple" else self._alphamatting_folders()
        photos = _image_files(self._folders[0][1])
        self.names = sorted(photos)
        if not self.names:
            raise DataError(NO_IMAGES, self.root)
        if only:
            missing = [n for n in only if n not in self.names]
            if missing:
                raise DataError(f"no image named {', '.join(missing)}", self.root)
            self.names = [n for n in self.names if n in only]
        self.names = self.names[:limit] if limit else self.names
        self.has_masks = self.layout == "simple" and (self.root / "mask").is_dir()
        self._files = {name: {"image": photos[name]} for name in self.names}
        self._check_companions()
        if not (only or limit):
            _warn_of_truth_without_photo(self._folders[1][1], photos)
        self._check_sizes()

    def _simple_folders(self) -> list[tuple[str, Path]]:
        if not (self.root / "alpha").is_dir():
            raise DataError("has image/ but no alpha/ folder of ground truth", self.root)
        return [("image", self.root / "image")] + [(sub, self.root / sub) for sub in ("alpha", "trimap", "mask")
                                                   if (self.root / sub).is_dir()]

    def _alphamatting_folders(self) -> list[tuple[str, Path]]:
        reader = AlphaMattingReader(self.root)    # where its photos, ground truth and trimaps are
        if reader.gt_dir is None:
            raise DataError(f"has {reader.input_dir.name}/ but no gt/ folder of ground truth", self.root)
        return [("image", reader.input_dir), ("alpha", reader.gt_dir), *reader.trimap_dirs.items()]

    def _check_companions(self) -> None:
        """DataError naming the first photo with no file in the ground truth's, a trimap's or the masks' folder (or
        with two there that share its name): before any image is read, not when the evaluation reaches it."""
        for key, folder in self._folders[1:]:
            files = _image_files(folder, self.names)
            for name in self.names:
                if name not in files:
                    raise DataError(f"no file named {name} (one of {', '.join(IMAGE_SUFFIXES)})", folder)
                self._files[name][key] = files[name]

    def _check_sizes(self) -> None:
        """DataError naming a photo whose short side is (or, scaled to ``long_side``, would be) below the
        runtime's MIN_SIDE, from its header. A photo whose header is not read here is checked when it is read."""
        for name, size in self.header_sizes().items():
            _check_scaled_size(size, self.long_side, self._files[name]["image"])

    def header_sizes(self) -> dict[str, tuple[int, int]]:
        """{name: (W, H)} of the photos, from their headers (before any is decoded); a photo whose header is not
        read here is left out (unreadable or too large: said when it is read, as any reader says it)."""
        sizes = {}
        for name in self.names:
            path = self._files[name]["image"]
            try:
                with open_header(path, path) as im:
                    sizes[name] = im.size
            except DataError:
                continue
        return sizes

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[EvalImage]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int) -> EvalImage:
        name = self.names[i]
        item = self._read_simple(name) if self.layout == "simple" else self._read_alphamatting(name)
        if self.long_side:
            _check_scaled_size(item.alpha.shape[::-1], self.long_side, self._files[name]["image"])
            return rescale(item, self.long_side)
        return item

    def _read_alphamatting(self, name: str) -> EvalImage:
        """A photo, its ground truth and its trimaps, each read and checked as the other layout reads them."""
        files = self._files[name]
        image = to_rgb(read_image(files["image"]), files["image"])
        items = {"image": (image, files["image"]), "alpha": (_read_alpha(files["alpha"]), files["alpha"])}
        items.update({key: (to_trimap(read_image(path), path), path) for key, path in files.items() if key not in items})
        check_same_size(items)
        return EvalImage(name, image, items["alpha"][0],
                         {key: arr for key, (arr, _) in items.items() if key not in ("image", "alpha")})

    def _read_simple(self, name: str) -> EvalImage:
        files = self._files[name]
        image_path, alpha_path = files["image"], files["alpha"]
        image = to_rgb(read_image(image_path), image_path)
        alpha = _read_alpha(alpha_path)
        if alpha.shape != image.shape[:2]:
            raise DataError(f"alpha is {alpha.shape[1]}x{alpha.shape[0]} but the photo ({image_path.name}) is "
                            f"{image.shape[1]}x{image.shape[0]}", alpha_path)
        item = EvalImage(name, image, alpha)
        if "trimap" in files:
            path = files["trimap"]
            trimap = to_trimap(read_image(path), path)
            if trimap.shape != alpha.shape:
                raise DataError(f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the photo ({image_path.name}) "
                                f"is {image.shape[1]}x{image.shape[0]}", path)
            item.trimaps["trimap"] = trimap
        if "mask" in files:
            path = files["mask"]
            item.mask = to_mask(read_image(path), path)
            check_aspect(item.mask.shape, alpha.shape, "mask", path)    # any resolution, the photo's aspect
        return item


def _image_files(folder: Path, names: list[str] | None = None) -> dict[str, Path]:
    """{stem: file} of the image files of ``folder`` (any case of an image suffix; folders, pipes and other
    entries that are not files skipped), those of ``names`` only where given; DataError naming the folder where
    two files share a stem (``GT01.png`` and ``GT01.jpg``: which one is meant?)."""
    found: dict[str, list[Path]] = {}
    for p in folder.iterdir():      # a link to nothing is a file that cannot be read: named when it is read
        if (p.suffix.lower() in IMAGE_SUFFIXES and (names is None or p.stem in names)
                and (p.is_file() or p.is_symlink() and not p.exists())):
            found.setdefault(p.stem, []).append(p)
    for stem in sorted(found):
        if len(found[stem]) > 1:
            same = [p.name for p in sorted(found[stem], key=lambda p: (IMAGE_SUFFIXES.index(p.suffix.lower()), p.name))]
            raise DataError(f"{', '.join(same[:-1])} and {same[-1]} share a name", folder)
    return {stem: files[0] for stem, files in found.items()}


def _warn_of_truth_without_photo(truth: Path, photos: dict[str, Path]) -> None:
    """A warning naming the ground-truth files of folder ``truth`` that no photo of ``photos`` is named after: they
    are not evaluated (a photo renamed, or missing?)."""
    alone = sorted(set(_image_files(truth)) - set(photos))
    if alone:
        shown = ", ".join(alone[:5]) + (", ..." if len(alone) > 5 else "")
        warnings.warn(f"{truth}: {len(alone)} ground truth{'s' if len(alone) > 1 else ''} with no photo of "
                      f"{'their' if len(alone) > 1 else 'its'} name, not evaluated: {shown}", stacklevel=3)


def _check_scaled_size(size: tuple[int, int], long_side: int | None, path: Path) -> None:
    """DataError naming ``path`` where its photo of ``size`` (W, H), or that photo scaled to ``long_side`` as
    :func:`rescale` scales it, has a side below the runtime's MIN_SIDE."""
    if min(size) < MIN_SIDE:
        raise DataError(f"photo is {size[0]}x{size[1]}; both sides must be at least {MIN_SIDE} px", path)
    if long_side is None:
        return
    scaled = scaled_size(size, long_side)
    if min(scaled) < MIN_SIDE:
        raise DataError(f"photo is {size[0]}x{size[1]}: --long-side {long_side} scales it to {scaled[0]}x{scaled[1]}, "
                        f"below the {MIN_SIDE} px the runtime mattes at least", path)


def scaled_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(W, H) of a photo of ``size`` (W, H) with its long side at ``long_side``."""
    s = long_side / max(size)
    return max(1, round(size[0] * s)), max(1, round(size[1] * s))


def _read_alpha(path: Path) -> np.ndarray:
    """Ground-truth alpha as float32 (H, W) in [0, 1]: a gray file, or one whose colour channels are equal."""
    arr = single_channel(read_image(path), "alpha matte", "a single-channel matte", path)
    if arr.dtype == np.uint16 and 1 < arr.max(initial=0) <= 255:
        warnings.warn(f"{path}: a 16-bit matte whose values are all at most 255, read as 16 bits (alpha at most "
                      f"{arr.max() / 65535:.4f}): an 8-bit matte saved in 16 bits?", stacklevel=2)
    return to_unit_float(arr, "alpha", path)


def rescale(item: EvalImage, long_side: int) -> EvalImage:
    """``item`` with its long side at ``long_side`` pixels (the mask keeps its own resolution)."""
    h, w = item.alpha.shape
    s = long_side / max(h, w)
    if s == 1:
        return item
    size = scaled_size((w, h), long_side)
    shrink = s < 1
    image = cv2.resize(item.image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    alpha = cv2.resize(item.alpha, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    trimaps = {k: cv2.resize(t, size, interpolation=cv2.INTER_NEAREST_EXACT) for k, t in item.trimaps.items()}
    return EvalImage(item.name, np.clip(image, 0, 1), np.clip(alpha, 0, 1), trimaps, item.mask)
