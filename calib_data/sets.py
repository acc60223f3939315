"""Seeded composited sets (calibration, validation) built from a TOML config and cached on disk.

A set lives in ``<cache_root>/<name>-<key>/`` where ``key`` hashes the resolved config, the content of
every source file and the generator version; it is rebuilt only when one of them changes. A build
writes into a temporary folder and renames it into place at the end, so an interrupted or failed
build never leaves a partial set under the final name.

Files of a set: ``images.npy`` (N, H, W, 3) uint8, ``alphas.npy`` (N, H, W) uint8, ``trimaps.npy``
(N, H, W) uint8 (0/128/255), ``fgs.npy`` (N, H, W, 3) uint8, ``meta.json`` (config, key, sources).
Alpha is stored in 8 bits, as the Composition-1k protocol reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomllib
from tqdm import tqdm

from calib_data import backgrounds
from calib_data.procedural import (
    KINDS,
    MIN_SIZE,  # procedural subjects need at least this many px a side
)
from calib_data.splits import PROJECT_ROOT, REAL_TRAIN, REAL_VALIDATION, shared_data_dir
from calib_data.synth import TRIMAP_MODES, ForegroundPool, Synthesizer, file_digest
from common.errors import DataError
from common.image_files import MAX_PIXELS, to_uint8
from common.outputs import atomic_folder, inside

GENERATOR_VERSION = 3          # bump when the generated pixels change for the same config (3: mask trimaps by distance)
CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CACHE = PROJECT_ROOT / "cache"
SPLITS = {"train": list(REAL_TRAIN), "validation": list(REAL_VALIDATION), "all": None}
MAX_NAME = 64                  # characters of a set's name
_PLAIN_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME - 1}}}")
MAX_COUNT = 100_000            # images of a set
MAX_ASPECT = 8                 # long side / short side: a background is scaled to cover the image (64 × 100000 px
                               # asked for 100 GB of background)
MAX_SET_PIXELS = 4_000_000_000  # pixels of all a set's images together: 32 GB of arrays (8 bytes a pixel)
MAX_SEED = 2**63 - 1           # the largest whole number TOML holds
MAX_MASK_BAND = 1024           # px of unknown band each side of a coarse mask's edge
MAX_WEIGHT = 1e6               # of a foreground source (weights are relative)


@dataclass
class SetConfig:
    name: str
    count: int
    size: tuple[int, int]
    seed: int
    trimap: str = "random"
    mask_band: int = 16
    procedural: float = 1.0
    real: float = 0.0
    real_root: str = ""
    real_split: str = "train"
    rgba_root: str = ""
    bg_sources: tuple[str, ...] = ("natural", "procedural")
    bg_folder: str = ""
    kinds: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_toml(cls, path: str | Path) -> "SetConfig":
        path = config_file(path, CONFIG_DIR)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"not valid TOML: {e}", path) from None
        fg, bg = raw.pop("foregrounds", {}), raw.pop("backgrounds", {})
        for table, value in (("foregrounds", fg), ("backgrounds", bg)):
            if not isinstance(value, dict):
                raise DataError(f"[{table}] must be a table, got {value!r}", path)
        unknown_bg = set(bg) - {"sources", "folder"}
        if unknown_bg:
            raise DataError(f"unknown [backgrounds] keys: {', '.join(sorted(unknown_bg))} (use sources, folder)", path)
        known = {f.name for f in dataclasses.fields(cls)}
        flat = {**raw, **fg, **{"bg_sources": bg.get("sources", cls.bg_sources), "bg_folder": bg.get("folder", "")}}
        unknown = set(flat) - known
        if unknown:
            raise DataError(f"unknown config keys: {', '.join(sorted(unknown))}", path)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in flat
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise DataError(f"missing required key{'s' * (len(missing) > 1)}: {', '.join(missing)}", path)
        return cls(**flat).validated(path)

    def validated(self, path: Path | None = None) -> "SetConfig":
        """This config, every key checked (type, range, size of the set) before anything is built; a DataError
        naming ``path``, the key, its value and what is allowed otherwise. Values are kept as given: the cache
        key hashes them."""
        check_set_name(self.name, path)
        self.size = _checked_size(self.size, path)
        for key in ("seed", "mask_band"):
            _check_whole(key, getattr(self, key), path, 0, MAX_SEED if key == "seed" else MAX_MASK_BAND)
        _check_count(self.count, self.size, path)
        _check_weights(self, path)
        _check_strings(self, path)
        self.bg_sources = _checked_backgrounds(self.bg_sources, self.bg_folder, path)
        self.kinds = _checked_names("kinds", self.kinds, KINDS, path)
        return self

    def resolve(self, path: str) -> Path | None:
        if not path:
            return None
        return Path(path.replace("${SHARED_DATA}", str(shared_data_dir()))).expanduser()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def config_file(path: str | Path, embedded_dir: Path) -> Path:
    """The TOML file ``path`` names: a file, or a bare name (no suffix) of a config in ``embedded_dir``;
    a DataError naming ``path`` for a folder or a missing file."""
    path = Path(path)
    if path.is_file():
        return path
    embedded = embedded_dir / f"{path.name}.toml"
    if path.suffix == "" and embedded.is_file():
        return embedded
    raise DataError("is a folder, not a config file" if path.is_dir() else "config file not found", path)


def check_set_name(name, where: str | Path | None = None) -> None:
    """A set's ``name`` begins its folder's name in the cache: a plain, visible, one-line name, or a DataError
    naming ``where`` (a name that would leave the cache folder is refused as such)."""
    allowed = (f"a set name is 1 to {MAX_NAME} letters, digits, '-', '_' or '.', "
               "starting with a letter or a digit")
    if not isinstance(name, str):
        raise DataError(f"name must be a string: {allowed}; got {name!r}", where)
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        raise DataError(f"name {name!r} would not be a file directly in this folder (the cache): {allowed}",
                        where)
    if not _PLAIN_NAME.fullmatch(name):
        raise DataError(f"name {name!r} is not a plain set name: {allowed}", where)


def check_size(size, where: str | Path | None, least: int) -> None:
    """``size``: a tuple [height, width] of whole numbers, each at least ``least`` px, the long side at most
    :data:`MAX_ASPECT` times the short one, the image within :data:`common.image_files.MAX_PIXELS`; a DataError
    naming ``where`` otherwise."""
    want = (f"size must be [height, width] of at least {least} px, the long side at most {MAX_ASPECT} times the "
            f"short one, and at most {MAX_PIXELS:,} pixels in all (height x width), got")
    if not (isinstance(size, tuple) and len(size) == 2 and all(_is_int(s) for s in size)
            and min(size) >= least and max(size) <= MAX_ASPECT * min(size) and size[0] * size[1] <= MAX_PIXELS):
        raise DataError(f"{want} {list(size) if isinstance(size, tuple) else size!r}", where)


def _checked_size(size, path: Path | None) -> tuple:
    size = tuple(size) if isinstance(size, (list, tuple)) else size
    check_size(size, path, MIN_SIZE)
    return size


def _check_whole(key: str, value, path: Path | None, least: int, most: int) -> None:
    if not _is_int(value):
        raise DataError(f"{key} must be a whole number, got {value!r} (allowed: {least} to {most})", path)
    if not least <= value <= most:
        raise DataError(f"{key} must be from {least} to {most}, got {value}", path)


def _check_count(count, size: tuple[int, int], path: Path | None) -> None:
    """``count``: from 1 to as many images of ``size`` as :data:`MAX_SET_PIXELS` holds (and :data:`MAX_COUNT`)."""
    most = max(1, min(MAX_COUNT, MAX_SET_PIXELS // (size[0] * size[1])))
    if not _is_int(count):
        raise DataError(f"count must be a whole number, got {count!r} (allowed: 1 to {most})", path)
    if not 1 <= count <= most:
        raise DataError(f"count must be at least 1, got {count}" if count < 1 else
                        f"count must be at most {most} at size {list(size)} (a set holds at most "
                        f"{MAX_COUNT:,} images and {MAX_SET_PIXELS:,} pixels in all), got {count}", path)


def _check_weights(cfg: "SetConfig", path: Path | None) -> None:
    """[foregrounds] procedural and real: finite weights from 0 to :data:`MAX_WEIGHT`, not both 0."""
    for key in ("procedural", "real"):
        value = getattr(cfg, key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and 0 <= value <= MAX_WEIGHT):
            raise DataError(f"[foregrounds] {key} must be a weight from 0 to {MAX_WEIGHT:,.0f}, got {value!r}", path)
    if cfg.procedural + cfg.real <= 0:
        raise DataError("[foregrounds] procedural and real are both 0: give either a weight above 0", path)


def _check_strings(cfg: "SetConfig", path: Path | None) -> None:
    """The keys that take one string: a mode among its choices, or a folder path (empty: none)."""
    for key, choices in (("trimap", TRIMAP_MODES), ("real_split", tuple(SPLITS))):
        value = getattr(cfg, key)
        if not isinstance(value, str) or value not in choices:
            raise DataError(f"{key} must be one of {', '.join(choices)}, got {value!r}", path)
    for key, label in (("real_root", "[foregrounds] real_root"), ("rgba_root", "[foregrounds] rgba_root"),
                       ("bg_folder", "[backgrounds] folder")):
        value = getattr(cfg, key)
        if not isinstance(value, str) or "\0" in value:
            raise DataError(f"{label} must be a folder path (a string), got {value!r}", path)


def _checked_backgrounds(sources, folder: str, path: Path | None) -> tuple[str, ...]:
    """[backgrounds] sources: names among :data:`calib_data.backgrounds.SOURCES`, at least one unless a folder
    is given (it adds the source 'folder'), and 'folder' only with a folder."""
    sources = _checked_names("[backgrounds] sources", sources, backgrounds.SOURCES, path)
    if not sources and not folder:
        raise DataError(f"[backgrounds] sources must name at least one of {', '.join(backgrounds.SOURCES)}, "
                        "got []", path)
    if "folder" in sources and not folder:
        raise DataError("[backgrounds] sources lists 'folder' but [backgrounds] folder is not set", path)
    return sources


def _checked_names(key: str, value, choices: tuple[str, ...], path: Path | None) -> tuple[str, ...]:
    """``value``: a list of strings among ``choices``, as a tuple."""
    if not (isinstance(value, (list, tuple)) and all(isinstance(v, str) and v in choices for v in value)):
        raise DataError(f"{key} must be a list of names among {', '.join(choices)}, got {value!r}", path)
    return tuple(value)


class CompositedSet:
    """A built set, memory-mapped. ``len(s)``, ``s.images`` etc., ``s[i]`` → dict of arrays."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise DataError("not a composited set (no meta.json)", self.path)
        try:
            self.meta = json.loads(meta_path.read_text())
        except ValueError as e:
            raise DataError(f"damaged set: meta.json is not valid JSON ({e})", self.path) from None
        try:
            self.images = np.load(self.path / "images.npy", mmap_mode="r")
            self.alphas = np.load(self.path / "alphas.npy", mmap_mode="r")
            self.trimaps = np.load(self.path / "trimaps.npy", mmap_mode="r")
            self.fgs = np.load(self.path / "fgs.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise DataError(f"damaged set: {e}", self.path) from None

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:3])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return {"image": self.images[i].astype(np.float32) / 255.0, "alpha": self.alphas[i].astype(np.float32) / 255.0,
                "trimap": np.asarray(self.trimaps[i]), "fg": self.fgs[i].astype(np.float32) / 255.0}


def _synthesizer(cfg: SetConfig, cache_root: Path) -> tuple[Synthesizer, list[Path], list[str]]:
    notes, sources = [], []
    real = None
    real_root, rgba_root = cfg.resolve(cfg.real_root), cfg.resolve(cfg.rgba_root)
    if cfg.real > 0 and real_root is not None:
        if real_root.is_dir():
            real = ForegroundPool.from_alphamatting(real_root, SPLITS[cfg.real_split], cache_root / "foregrounds")
            sources += real.sources
        elif cfg.procedural <= 0 and rgba_root is None:     # no foreground left: named here, not by the synthesizer
            raise DataError("[foregrounds] real_root not found, and procedural is 0: no foreground to composite "
                            f"(set {cfg.name!r})", real_root)
        else:
            notes.append(f"real foregrounds skipped: {real_root} not found")
    if cfg.real > 0 and rgba_root is not None:
        cutouts = ForegroundPool.from_rgba_folder(rgba_root)
        real = cutouts if real is None else real + cutouts
        sources += cutouts.sources
    bg_folder = cfg.resolve(cfg.bg_folder)
    if bg_folder is not None:
        sources += backgrounds.folder_backgrounds(bg_folder)
    synth = Synthesizer({"procedural": cfg.procedural, "real": cfg.real}, real=real,
                        bg_sources=cfg.bg_sources, bg_folder=bg_folder,
                        **({"kinds": cfg.kinds} if cfg.kinds else {}))
    return synth, sources, notes


def cache_key(cfg: SetConfig, sources: list[Path]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"config": dataclasses.asdict(cfg), "generator": GENERATOR_VERSION}, sort_keys=True).encode())
    for p in sorted(sources):
        h.update(p.name.encode())
        h.update(file_digest(p).encode())
    return h.hexdigest()[:16]


def build_set(cfg: SetConfig, cache_root: str | Path = DEFAULT_CACHE, progress: bool = True) -> CompositedSet:
    """Build (or reuse) the set described by ``cfg`` under ``cache_root``; returns it loaded."""
    cache_root = Path(cache_root)
    backgrounds.refresh_folders()  # the build draws from the folder as it is now, as the key hashes it
    synth, sources, notes = _synthesizer(cfg, cache_root)
    key = cache_key(cfg, sources)
    final = inside(cache_root, f"{cfg.name}-{key}")   # a name such as "../x" would leave the cache
    if (final / "meta.json").is_file():
        return CompositedSet(final)
    with atomic_folder(final, done="meta.json") as tmp:
        n, (h, w) = int(cfg.count), cfg.size
        arrays = {"images": np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, h, w, 3)),
                  "alphas": np.lib.format.open_memmap(tmp / "alphas.npy", "w+", np.uint8, (n, h, w)),
                  "trimaps": np.lib.format.open_memmap(tmp / "trimaps.npy", "w+", np.uint8, (n, h, w)),
                  "fgs": np.lib.format.open_memmap(tmp / "fgs.npy", "w+", np.uint8, (n, h, w, 3))}
        rng = np.random.default_rng(cfg.seed)
        origins = []
        for i in tqdm(range(n), desc=f"building {cfg.name}", disable=not progress, unit="img"):
            # varied crops of each real foreground (scale, position, flip), true colours
            c = synth.sample((h, w), rng, trimap_mode=cfg.trimap, mask_band=cfg.mask_band, augment=True, jitter=False)
            arrays["images"][i], arrays["alphas"][i] = to_uint8(c.image), to_uint8(c.alpha)
            arrays["trimaps"][i], arrays["fgs"][i] = c.trimap, to_uint8(c.fg)
            origins.append(c.source)
        for a in arrays.values():
            a.flush()
        del arrays
        meta = {"name": cfg.name, "key": key, "generator_version": GENERATOR_VERSION,
                "config": dataclasses.asdict(cfg), "sources": [str(p) for p in sorted(sources)],
                "origins": origins, "notes": notes}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return CompositedSet(final)


def set_statistics(s: CompositedSet) -> dict[str, float | int | str]:
    """Numbers for the demo table: sizes, alpha coverage, unknown band and fractional-alpha fractions."""
    alphas = np.asarray(s.alphas, dtype=np.float32) / 255.0
    trimaps = np.asarray(s.trimaps)
    origins = s.meta.get("origins", [])
    by_source = {"procedural": 0, "real": 0}
    for o in origins:
        by_source[o.split(":")[0]] = by_source.get(o.split(":")[0], 0) + 1
    return {
        "name": s.meta["name"], "count": len(s), "size": f"{s.size[1]}x{s.size[0]}",
        "mean_alpha": float(alphas.mean()),
        "fractional_px": float(((alphas > 0) & (alphas < 1)).mean()),
        "unknown_px": float((trimaps == 128).mean()),
        # share of the fractional pixels that the trimap marks unknown (1.0 for eroded trimaps)
        "fractional_covered": float((((alphas > 0) & (alphas < 1)) & (trimaps == 128)).sum()
                                    / max(1, ((alphas > 0) & (alphas < 1)).sum())),
        **{f"n_{k}": v for k, v in by_source.items()},
    }
