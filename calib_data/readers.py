"""Readers for the matting data layouts users have, and foreground estimation for real photos.

- alphamatting.com: ``input/`` (or ``input_lowres/``), optional ``gt/``, trimaps in ``trimap*/`` folders
  beside them or in ``trimap_lowres/Trimap*/`` (the test-set layout).
- Adobe Deep Image Matting: ``fg/``, ``alpha/``, ``bg/`` (and optionally ``trimaps/``) with name lists
  (``fg_names.txt``, ``bg_names.txt``); each foreground is composited on ``num_bgs`` consecutive backgrounds
  of the list, as the DIM script does. The images are licensed: point the reader at your copy, never commit it.
- A folder of RGBA cut-outs (PNG with an alpha channel).

Real photos become re-compositable foregrounds through :func:`estimate_foreground` (pymatting's
``estimate_foreground_ml``); photos without ground truth get a pseudo-label alpha from their trimap by
classical closed-form matting (:func:`estimate_alpha_closed_form`).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calib_data.compositing import composite, fit_background
from calib_data.io import (
    check_same_size,
    read_alpha,
    read_rgb,
    read_rgba,
    read_trimap,
)
from common.errors import DataError
from common.image_files import IMAGE_SUFFIXES, check_trimap


@dataclass
class MattingSample:
    """One matting example. ``image`` is the photo or composite; ``fg`` is set when the true colours are known."""

    name: str
    image: np.ndarray
    alpha: np.ndarray | None = None
    trimaps: dict[str, np.ndarray] = field(default_factory=dict)
    fg: np.ndarray | None = None
    bg: np.ndarray | None = None


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, sorted by name. A missing or empty folder is a DataError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("folder not found", folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError("folder has no image files", folder)
    return files


def _find_by_stem(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if cand.is_file():
                return cand
    return None


class AlphaMattingReader:
    """The alphamatting.com layout (training set with ``gt/``; test set without)."""

    def __init__(self, root: str | Path, names: list[str] | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("is a file, not an alphamatting folder" if self.root.exists() else
                            "alphamatting folder not found", self.root)
        input_dir = next((self.root / d for d in ("input", "input_lowres", "input_training_lowres")
                          if (self.root / d).is_dir()), None)
        if input_dir is None:
            raise DataError("no input/ or input_lowres/ folder (alphamatting.com layout expected)", self.root)
        self.input_dir = input_dir
        gt = self.root / "gt"
        self.gt_dir = gt if gt.is_dir() else None
        self.trimap_dirs = self._trimap_dirs()
        all_files = {p.stem: p for p in list_images(input_dir)}
        if names is not None:
            missing = [n for n in names if n not in all_files]
            if missing:
                raise DataError(f"images not found: {', '.join(missing)}", input_dir)
            all_files = {n: all_files[n] for n in names}
        self.files = all_files

    def _trimap_dirs(self) -> dict[str, Path]:
        dirs: dict[str, Path] = {}
        for d in sorted(self.root.iterdir()):
            if not d.is_dir() or not d.name.lower().startswith("trimap"):
                continue
            subdirs = sorted(s for s in d.iterdir() if s.is_dir() and s.name.lower().startswith("trimap"))
            if subdirs:  # test layout: trimap_lowres/Trimap1, Trimap2, ...
                dirs.update({s.name.lower(): s for s in subdirs})
            else:
                dirs[d.name.lower()] = d
        return dirs

    @property
    def names(self) -> list[str]:
        return list(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def source_files(self) -> list[Path]:
        files = list(self.files.values())
        for stem in self.files:
            if self.gt_dir is not None and (p := _find_by_stem(self.gt_dir, stem)):
                files.append(p)
            files += [p for d in self.trimap_dirs.values() if (p := _find_by_stem(d, stem))]
        return files

    def __getitem__(self, i: int) -> MattingSample:
        name, path = list(self.files.items())[i]
        image = read_rgb(path)
        items: dict[str, tuple[np.ndarray, Path | None]] = {"image": (image, path)}
        alpha = None
        if self.gt_dir is not None:
            gt_path = _find_by_stem(self.gt_dir, name)
            if gt_path is None:
                raise DataError(f"no ground-truth alpha for {name}", self.gt_dir)
            alpha = read_alpha(gt_path)
            items["alpha"] = (alpha, gt_path)
        trimaps = {}
        for key, d in self.trimap_dirs.items():
            if (p := _find_by_stem(d, name)) is not None:
                trimaps[key] = read_trimap(p)
                items[key] = (trimaps[key], p)
        check_same_size(items)
        return MattingSample(name=name, image=image, alpha=alpha, trimaps=trimaps)


def _read_names(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("name list not found", path)
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not names:
        raise DataError("name list is empty", path)
    return names


class AdobeDIMReader:
    """The Adobe Deep Image Matting layout: fg/, alpha/, bg/ plus name lists.

    Sample ``i`` is foreground ``i // num_bgs`` on background ``i`` of the background list, fitted by the
    DIM protocol (upscale by the max ratio when smaller, crop the top-left corner).
    """

    def __init__(self, root: str | Path, fg_names: str | Path | None = None, bg_names: str | Path | None = None,
                 num_bgs: int = 1, bg_dir: str | Path | None = None):
        self.root = Path(root)
        self.fg_dir, self.alpha_dir = self.root / "fg", self.root / "alpha"
        self.bg_dir = Path(bg_dir) if bg_dir else self.root / "bg"
        self.trimap_dir = next((self.root / d for d in ("trimaps", "trimap") if (self.root / d).is_dir()), None)
        for d in (self.fg_dir, self.alpha_dir, self.bg_dir):
            if not d.is_dir():
                raise DataError("folder not found (Adobe DIM layout: fg/, alpha/, bg/)", d)
        self.fg_files = self._resolve(self.fg_dir, fg_names, "fg_names.txt")
        self.bg_files = self._resolve(self.bg_dir, bg_names, "bg_names.txt")
        self.num_bgs = int(num_bgs)
        if len(self.bg_files) < len(self.fg_files) * self.num_bgs:
            raise DataError(f"{len(self.bg_files)} backgrounds listed, {len(self.fg_files)} foregrounds × "
                            f"{self.num_bgs} need {len(self.fg_files) * self.num_bgs}", self.bg_dir)

    def _resolve(self, folder: Path, names: str | Path | None, default: str) -> list[Path]:
        names_path = Path(names) if names else self.root / default
        if names is None and not names_path.is_file():
            return list_images(folder)
        files = []
        for n in _read_names(names_path):
            p = folder / n
            if not p.is_file():
                raise DataError(f"listed in {names_path.name} but missing", p)
            files.append(p)
        return files

    @property
    def names(self) -> list[str]:
        return [f"{self.fg_files[i // self.num_bgs].stem}_{i % self.num_bgs}" for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.fg_files) * self.num_bgs

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _alpha_path(self, fg_path: Path) -> Path:
        """The matte of a foreground: same file name in alpha/, else same stem with another suffix."""
        alpha_path = self.alpha_dir / fg_path.name
        if not alpha_path.is_file():
            alpha_path = _find_by_stem(self.alpha_dir, fg_path.stem) or alpha_path
        return alpha_path

    def _trimap_path(self, fg_path: Path) -> Path | None:
        return _find_by_stem(self.trimap_dir, fg_path.stem) if self.trimap_dir is not None else None

    def source_files(self) -> list[Path]:
        alphas = [self._alpha_path(f) for f in self.fg_files]
        trimaps = [t for f in self.fg_files if (t := self._trimap_path(f)) is not None]
        return self.fg_files + alphas + trimaps + self.bg_files[: len(self)]

    def __getitem__(self, i: int) -> MattingSample:
        fg_path = self.fg_files[i // self.num_bgs]
        alpha_path = self._alpha_path(fg_path)
        fg, alpha = read_rgb(fg_path), read_alpha(alpha_path)
        items = {"fg": (fg, fg_path), "alpha": (alpha, alpha_path)}
        trimaps = {}
        if (tp := self._trimap_path(fg_path)) is not None:
            trimaps["trimap"] = read_trimap(tp)
            items["trimap"] = (trimaps["trimap"], tp)
        check_same_size(items)
        h, w = alpha.shape
        bg = fit_background(read_rgb(self.bg_files[i]), h, w)
        image = composite(fg, bg, alpha, round_uint8=True)
        return MattingSample(name=self.names[i], image=image, alpha=alpha, trimaps=trimaps, fg=fg, bg=bg)


class RGBACutoutReader:
    """A folder of RGBA cut-outs: the colour channels are the foreground, the alpha channel its matte."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.files = list_images(self.root)

    @property
    def names(self) -> list[str]:
        return [p.stem for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def source_files(self) -> list[Path]:
        return list(self.files)

    def __getitem__(self, i: int) -> MattingSample:
        path = self.files[i]
        fg, alpha = read_rgba(path)
        if alpha is None:
            raise DataError("cut-out has no alpha channel (expected an RGBA PNG)", path)
        return MattingSample(name=path.stem, image=fg * alpha[..., None], alpha=alpha, fg=fg)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colours F of a real photo from I and α (pymatting's multilevel method), float32 in [0, 1]."""
    from pymatting import (
        estimate_foreground_ml,  # heavy import (numba): only when asked for
    )

    if image.shape[:2] != alpha.shape:
        raise DataError(f"image {image.shape[:2]} and alpha {alpha.shape} differ in size")
    fg = estimate_foreground_ml(image.astype(np.float64), alpha.astype(np.float64))
    return np.clip(fg, 0.0, 1.0).astype(np.float32)


def estimate_alpha_closed_form(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Closed-form matting (Levin et al., pymatting's ``estimate_alpha_cf``) of a float RGB photo in [0, 1]
    with a uint8 0/128/255 trimap: float32 alpha in [0, 1], exactly 0 and 1 in the trimap's known regions."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"closed-form matting needs an RGB image, got shape {image.shape}")
    check_trimap(trimap)
    if image.shape[:2] != trimap.shape:
        raise DataError(f"image {image.shape[:2]} and trimap {trimap.shape} differ in size")
    if not (trimap == 128).any():
        return (trimap / np.float32(255)).astype(np.float32)
    if not ((trimap == 0).any() and (trimap == 255).any()):
        raise DataError("closed-form matting needs both background (0) and foreground (255) pixels in the trimap")
    from pymatting import estimate_alpha_cf  # heavy import (numba): only when needed

    with contextlib.redirect_stdout(io.StringIO()):   # its preconditioner's retries are printed, not raised
        alpha = estimate_alpha_cf(image.astype(np.float64), trimap.astype(np.float64) / 255.0)
    alpha = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    alpha[trimap == 0], alpha[trimap == 255] = 0.0, 1.0
    return alpha
