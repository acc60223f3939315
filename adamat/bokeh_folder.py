"""``adamat bokeh DIR -o OUTDIR``: every photo of a folder, one model load, a progress bar, a summary.

A photo is a file of the folder (not its sub-folders, not a hidden file) with a photo suffix
(:data:`runtime.photo_files.PHOTO_SUFFIXES`, HEIC included). Every output name is chosen before the first
render (:func:`output_names`) and no two are equal, ignoring case, so one photo's output never replaces
another's. A photo that fails (corrupt, no person, an existing output without ``--overwrite``) gets one line
and no output; the others go on. Returns the photos that failed, as (path, message).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from common.errors import DataError, error_text, one_line
from common.outputs import check_folder
from runtime.photo_files import PHOTO_SUFFIXES


def photos_in(folder: Path) -> list[Path]:
    """The photos of ``folder``, sorted by name; DataError when there are none. A link to nothing with a photo's
    suffix is one of them: it fails as a photo that cannot be read, with its line, rather than vanishing."""
    photos = sorted(p for p in folder.iterdir() if (p.is_file() or p.is_symlink() and not p.exists())
                    and not p.name.startswith(".") and p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise DataError(f"no photos in this folder (looked for {', '.join(PHOTO_SUFFIXES)})", folder)
    return photos


NAMING = ("each photo's output is <stem>.jpg (or .png); photos that share a stem (a.jpg, a.png, a.JPG) get "
          "<stem>_<its suffix>.jpg, and a name still taken (ignoring case) gets _2, _3, ... in the order of the "
          "photos' names")


def output_names(photos: list[Path], suffix: str) -> dict[Path, str]:
    """Each photo's output file name, all distinct ignoring case (a case-insensitive file system holds them
    all too) and decided before any is written: ``<stem><suffix>`` for a stem no other photo has (these first,
    so a photo named ``a_jpg.jpg`` keeps its own name), ``<stem>_<its suffix, lower case><suffix>`` where stems
    clash, and ``_2``, ``_3``, ... after a name already taken, the photos in name order (:data:`NAMING`)."""
    stems = Counter(p.stem.casefold() for p in photos)
    unique = [p for p in photos if stems[p.stem.casefold()] == 1]
    names = {p: p.stem + suffix for p in unique}
    taken = {name.casefold() for name in names.values()}
    for p in sorted(set(photos) - set(unique)):
        base = f"{p.stem}_{p.suffix[1:].lower()}"
        name, n = base + suffix, 2
        while name.casefold() in taken:
            name, n = f"{base}_{n}{suffix}", n + 1
        names[p] = name
        taken.add(name.casefold())
    return {p: names[p] for p in photos}


def bokeh_folder(folder: Path, out_dir: Path, render: Callable[[Path, Path], dict[str, float]],
                 suffix: str = ".jpg") -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]], dict[str, float]]:
    """Render every photo of ``folder`` into ``out_dir`` with ``render(photo, out)``; returns (written as
    (photo, output), failed as (photo, message), seconds per stage summed over the photos)."""
    photos = photos_in(folder)
    if out_dir.suffix.lower() in PHOTO_SUFFIXES and not out_dir.is_dir():   # not made as a folder named out.jpg
        raise DataError("names a photo, but a folder of photos renders into a folder: give -o a folder", out_dir)
    check_folder(out_dir)
    if out_dir.resolve() == folder.resolve():
        raise DataError("is the folder of the photos: give another output folder", out_dir)
    names = output_names(photos, suffix)
    if len({name.casefold() for name in names.values()}) != len(photos):   # never: one render would replace another
        raise AssertionError(f"output names are not distinct: {sorted(names.values())}")
    _refuse_outputs_that_are_photos(photos, {p: out_dir / name for p, name in names.items()})
    written, failed, timings = [], [], {}
    with tqdm(photos, desc="bokeh", unit="photo", file=sys.stderr) as bar:   # closed before "interrupted"
        for photo in bar:
            name = names[photo]
            try:
                stages = render(photo, out_dir / name)
            except KeyboardInterrupt:
                raise
            except Exception as e:   # one photo's problem, whatever it is, must not stop the others
                message = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
                named = one_line(str(photo)) in message or one_line(photo.name) in message
                message = message if named else f"{one_line(str(photo))}: {message}"
                failed.append((photo, message))
                bar.write(error_text(message), file=sys.stderr)
                continue
            written.append((photo, out_dir / name))
            for stage, seconds in stages.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
    return written, failed, timings


def _refuse_outputs_that_are_photos(photos: list[Path], outputs: dict[Path, Path]) -> None:
    """DataError, before any render, where an output would be written over one of the photos (a photo that is a
    link into the output folder, or a hard link there): with --overwrite, another photo's render replaced it
    before it was read."""
    files = {}
    for photo in filter(Path.exists, photos):      # a link to nothing is no file an output could replace
        info = photo.stat()
        files[info.st_dev, info.st_ino] = photo
    for photo, out in outputs.items():
        try:
            info = out.stat()
        except OSError:         # not there yet (or a dangling link, which the render replaces)
            continue
        source = files.get((info.st_dev, info.st_ino))
        if source is not None:
            raise DataError(f"is the photo {source} of this run (through a link): {photo.name}'s output would be "
                            "written over it; give another output folder", out)
