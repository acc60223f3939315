"""``adamat bokeh DIR -o OUTDIR``: every photo of a folder, one model load, a progress bar, a summary.

A photo is a file of the folder (not its sub-folders, not a hidden file) with a photo suffix
(:data:`runtime.photo_files.PHOTO_SUFFIXES`, HEIC included); its rendering is ``OUTDIR/<stem>.jpg`` (or
``.png``), ``<stem>_<suffix>.jpg`` when two photos share a stem. A photo that fails (corrupt, no person, an
existing output without ``--overwrite``) gets one line and no output; the others go on. Returns the photos
that failed, as (path, message).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from common.errors import DataError
from common.outputs import check_folder
from runtime.photo_files import PHOTO_SUFFIXES


def photos_in(folder: Path) -> list[Path]:
    """The photos of ``folder``, sorted by name; DataError when there are none."""
    photos = sorted(p for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise DataError(f"no photos in this folder (looked for {', '.join(PHOTO_SUFFIXES)})", folder)
    return photos


def output_names(photos: list[Path], suffix: str) -> dict[Path, str]:
    """Each photo's output file name: its stem and ``suffix``, and the photo's own suffix where stems clash."""
    stems = Counter(p.stem for p in photos)
    return {p: (p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix[1:].lower()}") + suffix for p in photos}


def bokeh_folder(folder: Path, out_dir: Path, render: Callable[[Path, Path], dict[str, float]],
                 suffix: str = ".jpg") -> tuple[list[Path], list[tuple[Path, str]], dict[str, float]]:
    """Render every photo of ``folder`` into ``out_dir`` with ``render(photo, out)``; returns (written,
    failed as (photo, message), seconds per stage summed over the photos)."""
    photos = photos_in(folder)
    check_folder(out_dir)
    if out_dir.resolve() == folder.resolve():
        raise DataError("is the folder of the photos: give another output folder", out_dir)
    written, failed, timings = [], [], {}
    bar = tqdm(photos, desc="bokeh", unit="photo", file=sys.stderr)
    for photo, name in zip(bar, output_names(photos, suffix).values()):
        try:
            stages = render(photo, out_dir / name)
        except KeyboardInterrupt:
            raise
        except Exception as e:   # one photo's problem, whatever it is, must not stop the others
            message = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
            message = message if str(photo) in message or photo.name in message else f"{photo}: {message}"
            failed.append((photo, message))
            bar.write(f"error: {message}", file=sys.stderr)
            continue
        written.append(out_dir / name)
        for stage, seconds in stages.items():
            timings[stage] = timings.get(stage, 0.0) + seconds
    bar.close()
    return written, failed, timings
