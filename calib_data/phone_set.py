"""Sets at a phone's resolution, in the simple evaluation layout (``image/``, ``alpha/``, ``mask/``).

No real ground truth exists at 12 megapixels, so two kinds are built:

- **procedural** (:func:`build_phone_set`, config ``calib_data/configs/phone.toml``): procedural subjects with
  exact alpha rendered at 4032×3024 (and 3024×4032) over the natural backgrounds, with the segmenter mask of
  a named recipe (:mod:`calib_data.segmenter_masks`);
- **upscaled real photos** (:func:`build_upscaled_set`): the alphamatting.com photos and their ground truth
  upscaled ``factor``× (bicubic, bilinear). Upscaled ground truth is soft: a check on real photos, not a
  measure of hair at 12 MP.

Both are cached like the composited sets: a folder keyed by a hash of the config and the generator version
(and the source files), written to a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import tomllib
from tqdm import tqdm

from calib_data import backgrounds
from calib_data.compositing import composite, fit_background
from calib_data.io import write_image
from calib_data.procedural import KINDS, make_foreground
from calib_data.readers import AlphaMattingReader
from calib_data.segmenter_masks import RECIPES, simulate_mask
from calib_data.sets import check_set_name, check_size, config_file
from calib_data.synth import file_digest
from common.errors import DataError
from common.image_files import check_pixels, header_size, to_uint8
from common.outputs import atomic_folder, inside

GENERATOR_VERSION = 1
CONFIGS = Path(__file__).with_name("configs")
JPEG_QUALITY = 95
MAX_COUNT = 1000   # images of a phone set (a 12-megapixel image takes seconds)


@dataclass(frozen=True)
class PhoneSetConfig:
    name: str = "phone"
    count: int = 6
    size: tuple[int, int] = (3024, 4032)
    seed: int = 4032
    kinds: tuple[str, ...] = KINDS
    recipe: str = "phone"

    @classmethod
    def load(cls, name_or_path: str | Path = "phone") -> "PhoneSetConfig":
        path = config_file(name_or_path, CONFIGS)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"not a phone set config: {e}", path) from None
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise DataError(f"not a phone set config: unknown keys {', '.join(unknown)} (known: "
                            f"{', '.join(f.name for f in dataclasses.fields(cls))})", path)
        lists = {k: tuple(raw[k]) for k in ("size", "kinds") if isinstance(raw.get(k), list)}
        return cls(**{**raw, **lists}).validated(path)

    def validated(self, where: str | Path = "phone set") -> "PhoneSetConfig":
        """This config, every key checked before anything is built; a DataError naming ``where`` otherwise."""
        check_set_name(self.name, where)
        numbers = (self.count, self.seed, *self.size) if isinstance(self.size, tuple) else ()
        if len(numbers) != 4 or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
            raise DataError(f"count, seed and size [height, width] must be whole numbers (got count {self.count!r}, "
                            f"seed {self.seed!r}, size {self.size!r})", where)
        kinds = self.kinds if isinstance(self.kinds, tuple) else ()
        if not kinds or any(k not in KINDS for k in kinds):
            raise DataError(f"kinds must be a list among {', '.join(KINDS)}, got {_listed(self.kinds)!r}", where)
        if str(self.recipe) not in RECIPES:
            raise DataError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}", where)
        if self.count < 1 or self.seed < 0:
            raise DataError(f"{'count must be at least 1' if self.count < 1 else 'seed must be at least 0'}, got "
                            f"{self.count if self.count < 1 else self.seed}", where)
        check_size(self.size, where, 64)
        if self.count > MAX_COUNT:
            raise DataError(f"count must be at most {MAX_COUNT} (each image takes seconds to make at a phone's "
                            f"resolution), got {self.count}", where)
        return self

    def key(self) -> str:
        blob = json.dumps({"config": dataclasses.asdict(self), "generator": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_phone_set(cfg: PhoneSetConfig, cache_root: str | Path, progress: bool = True) -> Path:
    """The procedural phone-resolution set's folder (built, or reused when its key exists)."""
    final = inside(cache_root, f"{cfg.name}-{cfg.key()}")   # a name such as "../x" would leave the cache
    if final.is_dir():
        return final
    rng = np.random.default_rng(cfg.seed)
    bgs = backgrounds.natural_backgrounds()
    with _building(final) as tmp:
        for i in tqdm(range(cfg.count), desc=f"building {cfg.name}", unit="image", disable=not progress):
            h, w = cfg.size if i % 2 == 0 else cfg.size[::-1]
            kind = cfg.kinds[i % len(cfg.kinds)]
            fg, alpha = make_foreground(kind, (h, w), rng)
            bg = fit_background(bgs[int(rng.integers(len(bgs)))], h, w, rng)
            name = f"{i:02d}_{kind}_{w}x{h}"
            _write(tmp, name, composite(fg, bg, alpha), alpha, simulate_mask(alpha, RECIPES[cfg.recipe], name, cfg.seed))
    return final


def build_upscaled_set(root: str | Path, factor: int, cache_root: str | Path, names: list[str] | None = None,
                       progress: bool = True) -> Path:
    """The alphamatting.com photos of ``root`` (``names``: a subset) upscaled ``factor``×, with ground truth."""
    reader = AlphaMattingReader(root, names)
    if reader.gt_dir is None:                   # a test split: photos without ground truth
        raise DataError("has no gt/ folder of ground truth to upscale with its photos", Path(root))
    check_upscaled_sizes(reader.files.values(), factor)
    digest = hashlib.sha256(json.dumps({"factor": factor, "generator": GENERATOR_VERSION, "files": [
        file_digest(p) for p in reader.source_files()]}).encode()).hexdigest()[:16]
    final = Path(cache_root) / f"upscaled{factor}x-{digest}"
    if final.is_dir():
        return final
    with _building(final) as tmp:
        for sample in tqdm(reader, total=len(reader), desc=f"upscaling {factor}x", unit="image", disable=not progress):
            h, w = sample.alpha.shape
            size = (w * factor, h * factor)
            image = np.clip(cv2.resize(sample.image, size, interpolation=cv2.INTER_CUBIC), 0, 1)
            _write(tmp, sample.name, image, cv2.resize(sample.alpha, size, interpolation=cv2.INTER_LINEAR), None)
    return final


def check_upscaled_sizes(paths, factor: int) -> None:
    """A DataError naming the first photo of ``paths`` that, upscaled ``factor``×, would be over
    :data:`common.image_files.MAX_PIXELS` (read from the headers, before anything is built)."""
    for path in paths:
        width, height = header_size(Path(path).read_bytes(), path)
        check_pixels(width * factor, height * factor, path, what=f"{width}x{height} upscaled {factor}x")


def _write(folder: Path, name: str, image: np.ndarray, alpha: np.ndarray, mask: np.ndarray | None) -> None:
    write_image(folder / "image" / f"{name}.jpg", to_uint8(image), jpeg_quality=JPEG_QUALITY)
    write_image(folder / "alpha" / f"{name}.png", to_uint8(alpha))
    if mask is not None:
        write_image(folder / "mask" / f"{name}.png", to_uint8(mask))


@contextmanager
def _building(final: Path) -> Iterator[Path]:
    """:func:`common.outputs.atomic_folder` with the set's sub-folders (``mask/`` kept only when written)."""
    with atomic_folder(final) as tmp:
        for sub in ("image", "alpha", "mask"):
            (tmp / sub).mkdir()
        yield tmp
        if not any((tmp / "mask").iterdir()):
            (tmp / "mask").rmdir()


def _listed(value):
    """A config value as TOML wrote it (its lists are held as tuples)."""
    return list(value) if isinstance(value, tuple) else value
