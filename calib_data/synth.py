"""On-the-fly composites: a foreground (procedural or real) over a background, with a trimap.

Used by the cached calibration/validation sets (calib_data.sets) and by training (adamatting.train),
so both see exactly the same generator.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from calib_data import backgrounds, procedural
from calib_data.compositing import composite
from calib_data.readers import (
    AlphaMattingReader,
    RGBACutoutReader,
    estimate_alpha_closed_form,
    estimate_foreground,
)
from calib_data.trimaps import random_trimap, trimap_from_mask, validation_trimap
from common.errors import DataError

TRIMAP_MODES = ("random", "validation", "mask")
# Part of the pseudo-labels' cache key: change it when estimate_alpha_closed_form changes what it returns.
PSEUDO_LABEL_VERSION = b"closed-form 1"


@dataclass
class Composite:
    image: np.ndarray   # (H, W, 3) float32, the composite
    alpha: np.ndarray   # (H, W) float32
    trimap: np.ndarray  # (H, W) uint8, 0/128/255
    fg: np.ndarray      # (H, W, 3) float32
    bg: np.ndarray      # (H, W, 3) float32
    source: str         # "procedural:hair", "real:GT01", ...


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Photo:
    """A real photo behind a cut-out: the image itself, the background colours that reproduce it with the
    cut-out's fg and alpha (I = αF + (1 − α)B), and the photo's own hand-drawn trimaps."""
    image: np.ndarray                   # (H, W, 3) float32
    bg: np.ndarray                      # (H, W, 3) float32
    trimaps: tuple[np.ndarray, ...]     # uint8 0/128/255, each (H, W)


@dataclass
class PhotoCrop:
    name: str
    image: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    alpha: np.ndarray
    trimap: np.ndarray | None           # a crop of one of the photo's trimaps, or None (draw a random one)


class ForegroundPool:
    """A pool of (name, fg, alpha) cut-outs to crop composites from.

    Real cut-outs come from the alphamatting layout (with gt; foreground colours estimated by pymatting,
    slow the first time while numba compiles, then cached as .npy keyed by the photo's and alpha's
    content) or from RGBA PNGs; a procedural bank pre-renders procedural subjects once (training).
    Real cut-outs keep their photo (``photos``): ``sample_photo`` crops the photo itself, unchanged
    background and all, with the same geometry as ``sample``.
    """

    def __init__(self, items: list[tuple[str, np.ndarray, np.ndarray]], sources: list[Path],
                 photos: dict[str, Photo] | None = None):
        if not items:
            raise DataError("foreground pool is empty")
        self.items = items          # (name, fg, alpha)
        self.sources = sources
        self.photos = photos or {}
        self._by_name = {name: (fg, alpha) for name, fg, alpha in items}
        if len(self._by_name) != len(items):
            dup = sorted(n for n, k in Counter(n for n, _, _ in items).items() if k > 1)
            raise DataError(f"foreground pool has duplicate cut-out names: {', '.join(dup)}")
        orphans = sorted(set(self.photos) - set(self._by_name))
        if orphans:
            raise DataError(f"photos without a cut-out of the same name: {', '.join(orphans)}")

    @classmethod
    def from_alphamatting(cls, root: Path, names: list[str] | None, cache_dir: Path) -> "ForegroundPool":
        reader = AlphaMattingReader(root, names)
        if reader.gt_dir is None:
            raise DataError("real foregrounds need ground-truth alpha (a gt/ folder)", root)
        items, photos = [], {}
        for i, name in enumerate(reader.names):
            sample = reader[i]
            fg = _foreground(sample.image, sample.alpha, cache_dir)
            items.append((name, fg, sample.alpha))
            photos[name] = _photo(sample, fg, sample.alpha)
        return cls(items, reader.source_files(), photos)

    @classmethod
    def from_pseudo_labels(cls, root: Path, cache_dir: Path, trimap: str = "trimap1") -> "ForegroundPool":
        """Real photos without ground truth (the alphamatting.com test set layout), each with an alpha
        estimated by closed-form matting from its ``trimap``: pseudo-labels, more real subjects (a net, a
        plastic bag, fur, hair) than the 10 photos with ground truth. Their errors are closed-form's, so
        they are a training aid, never an evaluation set. Alpha and colours are cached like the others."""
        reader = AlphaMattingReader(root)
        items, photos = [], {}
        for sample in reader:
            if trimap not in sample.trimaps:
                raise DataError(f"{sample.name} has no {trimap} (has: {', '.join(sample.trimaps) or 'none'})", root)
            tri = sample.trimaps[trimap]
            key = hashlib.sha256(PSEUDO_LABEL_VERSION + sample.image.tobytes() + tri.tobytes()).hexdigest()[:20]
            alpha = _cached(cache_dir / f"cf-{key}.npy", tri.shape,
                            lambda: estimate_alpha_closed_form(sample.image, tri))
            fg = _foreground(sample.image, alpha, cache_dir)
            items.append((f"pseudo:{sample.name}", fg, alpha))
            photos[f"pseudo:{sample.name}"] = _photo(sample, fg, alpha)
        return cls(items, reader.source_files(), photos)

    @classmethod
    def from_rgba_folder(cls, root: Path) -> "ForegroundPool":
        reader = RGBACutoutReader(root)
        items = [(s.name, s.fg, s.alpha) for s in reader]
        return cls(items, reader.source_files())

    @classmethod
    def from_procedural(cls, count: int, size: tuple[int, int], seed: int, progress: bool = False) -> "ForegroundPool":
        rng = np.random.default_rng(seed)
        items = []
        for i in tqdm(range(count), desc="procedural bank", disable=not progress, unit="fg"):
            kind = procedural.KINDS[i % len(procedural.KINDS)]
            fg, alpha = procedural.make_foreground(kind, size, rng)
            items.append((f"{kind}{i}", fg, alpha))
        return cls(items, [])

    def __add__(self, other: "ForegroundPool") -> "ForegroundPool":
        return ForegroundPool(self.items + other.items, self.sources + other.sources, {**self.photos, **other.photos})

    def sample(self, size: tuple[int, int], rng: np.random.Generator, augment: bool,
               scale_range: tuple[float, float] | None = None) -> tuple[str, np.ndarray, np.ndarray]:
        """A crop of ``size`` from one foreground. With ``augment``: random scale, crop near the edge, flip.

        The scale is 1–2× the one at which the foreground just covers ``size`` (``fit``), or, with
        ``scale_range``, uniform in that range of the native resolution (never below ``fit``)."""
        name, fg, alpha = self.items[int(rng.integers(len(self.items)))]
        fg, alpha = _crop(size, rng, augment, scale_range, alpha, [fg])
        return name, fg, alpha

    def sample_photo(self, size: tuple[int, int], rng: np.random.Generator, scale_range: tuple[float, float] | None,
                     trimap_fraction: float = 0.5) -> PhotoCrop:
        """A crop of ``size`` from one real photo as it was taken (random scale, crop near the edge, flip,
        as ``sample`` with ``augment``), with its fg, bg and alpha; with probability ``trimap_fraction`` also
        the crop of one of its hand-drawn trimaps (nearest-neighbour scaled)."""
        if not self.photos:
            raise DataError("this foreground pool has no photos (only real cut-outs keep theirs)")
        names = sorted(self.photos)
        name = names[int(rng.integers(len(names)))]
        photo = self.photos[name]
        fg, alpha = self._by_name[name]
        trimap = None
        if photo.trimaps and rng.random() < trimap_fraction:
            trimap = photo.trimaps[int(rng.integers(len(photo.trimaps)))]
        image, fg, bg, alpha, *rest = _crop(size, rng, True, scale_range, alpha, [photo.image, fg, photo.bg],
                                            [trimap] if trimap is not None else [])
        return PhotoCrop(name, image, fg, bg, alpha, rest[0] if rest else None)


def _crop(size: tuple[int, int], rng: np.random.Generator, augment: bool, scale_range: tuple[float, float] | None,
          alpha: np.ndarray, planes: list[np.ndarray], labels: list[np.ndarray] = ()) -> list[np.ndarray]:
    """Scale, crop (centred on the transition band) and flip ``alpha``, the float ``planes`` (interpolated) and
    the ``labels`` (nearest neighbour) alike; returns planes…, alpha, labels… as contiguous arrays."""
    h, w = size
    fit = max(h / alpha.shape[0], w / alpha.shape[1])
    if augment and scale_range is not None:
        scale = max(fit, float(rng.uniform(*scale_range)))
    else:
        scale = fit * (float(rng.uniform(1.0, 2.0)) if augment else 1.0)
    nh, nw = max(h, int(round(alpha.shape[0] * scale))), max(w, int(round(alpha.shape[1] * scale)))
    if (nh, nw) != alpha.shape:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        planes = [cv2.resize(p, (nw, nh), interpolation=interp) for p in planes]
        # NEAREST_EXACT samples at pixel centres like the linear/area resizes; plain NEAREST is shifted ~½ px
        labels = [cv2.resize(t, (nw, nh), interpolation=cv2.INTER_NEAREST_EXACT) for t in labels]
        alpha = np.clip(cv2.resize(alpha, (nw, nh), interpolation=interp), 0.0, 1.0)
    # Centre the crop on a pixel of the transition band: random one when augmenting, its centroid otherwise.
    ys, xs = np.nonzero((alpha > 0.0) & (alpha < 1.0))
    if ys.size == 0:
        cy, cx = nh // 2, nw // 2
    elif augment:
        j = int(rng.integers(ys.size))
        cy, cx = int(ys[j]), int(xs[j])
    else:
        cy, cx = int(ys.mean()), int(xs.mean())
    y0 = int(np.clip(cy - h // 2, 0, nh - h))
    x0 = int(np.clip(cx - w // 2, 0, nw - w))
    flip = augment and rng.random() < 0.5
    out = []
    for arr, dtype in [(p, np.float32) for p in planes] + [(alpha, np.float32)] + [(t, np.uint8) for t in labels]:
        arr = arr[y0:y0 + h, x0:x0 + w]
        out.append(np.ascontiguousarray(arr[:, ::-1] if flip else arr, dtype))
    return out


def _foreground(image: np.ndarray, alpha: np.ndarray, cache_dir: Path) -> np.ndarray:
    """The estimated foreground colours of a photo with this alpha, cached by the content of both."""
    key = hashlib.sha256(image.tobytes() + alpha.tobytes()).hexdigest()[:20]
    return _cached(cache_dir / f"fg-{key}.npy", image.shape, lambda: estimate_foreground(image, alpha))


def _photo(sample, fg: np.ndarray, alpha: np.ndarray) -> Photo:
    """The photo of a real cut-out, with the background that makes αF + (1 − α)B give it back: B = (I − αF) /
    (1 − α), clipped to [0, 1], where the foreground lets the background through. Where α ≥ 0.99 the
    background is hidden and unknown; B = F there, so the composition loss adds nothing on opaque pixels of
    a photo crop (the alpha L1 still does)."""
    a = alpha[..., None]
    bg = np.where(a < 0.99, (sample.image - a * fg) / np.maximum(1.0 - a, 0.01), fg)
    trimaps = tuple(sample.trimaps[k] for k in sorted(sample.trimaps))
    return Photo(sample.image.astype(np.float32), np.clip(bg, 0.0, 1.0).astype(np.float32), trimaps)


def _cached(path: Path, shape: tuple[int, ...], compute) -> np.ndarray:
    """The array cached at ``path`` if it loads with ``shape``, else ``compute()`` saved there atomically."""
    if path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == shape:
                return arr
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed below
    arr = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp.npy")
    np.save(tmp, arr)
    tmp.replace(path)
    return arr


def coarse_mask(alpha: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Imitate a phone's coarse person mask: threshold α, then random erosion/dilation and blur."""
    mask = (alpha > 0.5).astype(np.uint8)
    k = int(rng.integers(1, 12)) * 2 + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.dilate(mask, kernel) if rng.random() < 0.5 else cv2.erode(mask, kernel)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), float(rng.uniform(1.0, 4.0)))
    return mask > 0.5


def color_jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue-ish channel gains on an RGB float image."""
    gains = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    out = img * gains * np.float32(rng.uniform(0.8, 1.2))
    mean = out.mean()
    out = (out - mean) * np.float32(rng.uniform(0.8, 1.2)) + mean
    gray = out.mean(axis=2, keepdims=True)
    out = gray + (out - gray) * np.float32(rng.uniform(0.7, 1.3))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class Synthesizer:
    """Draws composites from a weighted mix of foreground sources over backgrounds.

    fg_weights: {"procedural": w, "real": w}; the "real" source needs ``real`` foregrounds.
    """

    def __init__(self, fg_weights: dict[str, float], real: ForegroundPool | None = None,
                 bg_sources: tuple[str, ...] = ("natural", "procedural"), bg_folder: Path | None = None,
                 kinds: tuple[str, ...] = procedural.KINDS):
        weights = {k: float(v) for k, v in fg_weights.items() if float(v) > 0}
        unknown = set(weights) - {"procedural", "real"}
        if unknown:
            raise DataError(f"unknown foreground sources {sorted(unknown)} (use 'procedural' and/or 'real')")
        if "real" in weights and real is None:
            weights.pop("real")
        if not weights:
            raise DataError("no usable foreground source (real foregrounds missing and procedural weight 0)")
        bad_kinds = set(kinds) - set(procedural.KINDS)
        if bad_kinds:
            raise DataError(f"unknown procedural kinds {sorted(bad_kinds)}; known: {', '.join(procedural.KINDS)}")
        self.sources = list(weights)
        total = sum(weights.values())
        self.probs = np.array([weights[s] / total for s in self.sources])
        self.real, self.bg_sources, self.bg_folder, self.kinds = real, tuple(bg_sources), bg_folder, tuple(kinds)

    def foreground(self, size, rng, augment: bool) -> tuple[str, np.ndarray, np.ndarray]:
        source = self.sources[int(rng.choice(len(self.sources), p=self.probs))]
        if source == "real":
            name, fg, alpha = self.real.sample(size, rng, augment)
            return f"real:{name}", fg, alpha
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        fg, alpha = procedural.make_foreground(kind, size, rng)
        if augment and rng.random() < 0.5:
            fg, alpha = np.ascontiguousarray(fg[:, ::-1]), np.ascontiguousarray(alpha[:, ::-1])
        return f"procedural:{kind}", fg, alpha

    def sample(self, size: tuple[int, int], rng: np.random.Generator, trimap_mode: str = "random",
               augment: bool = False, mask_band: int = 16, round_uint8: bool = True,
               jitter: bool | None = None) -> Composite:
        """One composite. ``augment``: random scale, crop and flip of the foreground; ``jitter`` (default:
        same as augment): colour jitter of foreground and background (training only)."""
        if trimap_mode not in TRIMAP_MODES:
            raise DataError(f"unknown trimap mode {trimap_mode!r}; use one of {', '.join(TRIMAP_MODES)}")
        source, fg, alpha = self.foreground(size, rng, augment)
        bg = backgrounds.random_background(size, rng, sources=self.bg_sources, folder=self.bg_folder)
        if augment if jitter is None else jitter:
            fg, bg = color_jitter(fg, rng), color_jitter(bg, rng)
        image = composite(fg, bg, alpha, round_uint8=round_uint8)
        if trimap_mode == "random":
            trimap = random_trimap(alpha, rng)
        elif trimap_mode == "validation":
            trimap = validation_trimap(alpha)
        else:
            trimap = trimap_from_mask(coarse_mask(alpha, rng), band=mask_band)
        return Composite(image=image, alpha=alpha, trimap=trimap, fg=fg, bg=bg, source=source)
