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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomllib
from tqdm import tqdm

from calib_data import backgrounds
from calib_data.procedural import (
    MIN_SIZE,  # procedural subjects need at least this many px a side
)
from calib_data.splits import PROJECT_ROOT, REAL_TRAIN, REAL_VALIDATION, shared_data_dir
from calib_data.synth import TRIMAP_MODES, ForegroundPool, Synthesizer, file_digest
from common.errors import DataError
from common.image_files import to_uint8
from common.outputs import atomic_folder, inside

GENERATOR_VERSION = 3          # bump when the generated pixels change for the same config (3: mask trimaps by distance)
CONFIG_DIR = Path(__file__).parent / "configs"
DEFAULT_CACHE = PROJECT_ROOT / "cache"
SPLITS = {"train": list(REAL_TRAIN), "validation": list(REAL_VALIDATION), "all": None}


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
        path = Path(path)
        if not path.is_file():
            # a bare name picks an embedded config: "calib", "val"
            embedded = CONFIG_DIR / f"{path.name}.toml"
            if path.suffix == "" and embedded.is_file():
                path = embedded
            else:
                raise DataError("is a folder, not a config file" if path.is_dir() else "config file not found", path)
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
        size = self.size if isinstance(self.size, (list, tuple)) else [self.size]
        if len(size) != 2 or not all(_is_int(s) for s in size) or min(size) < MIN_SIZE:
            raise DataError(f"size must be [height, width] of at least {MIN_SIZE} px, "
                            f"got {self.size!r}", path)
        self.size = tuple(size)
        self.bg_sources, self.kinds = tuple(self.bg_sources), tuple(self.kinds)
        for key in ("count", "seed", "mask_band"):
            if not _is_int(getattr(self, key)):
                raise DataError(f"{key} must be a whole number, got {getattr(self, key)!r}", path)
        if self.count < 1:
            raise DataError(f"count must be at least 1, got {self.count}", path)
        if self.trimap not in TRIMAP_MODES:
            raise DataError(f"trimap must be one of {', '.join(TRIMAP_MODES)}, got {self.trimap!r}", path)
        if self.real_split not in SPLITS:
            raise DataError(f"real_split must be one of {', '.join(SPLITS)}, got {self.real_split!r}", path)
        return self

    def resolve(self, path: str) -> Path | None:
        if not path:
            return None
        return Path(path.replace("${SHARED_DATA}", str(shared_data_dir()))).expanduser()


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
