"""File in, file out: a photo (+ coarse mask or trimap) → its portrait-bokeh rendering, written atomically.

    timings = bokeh_file("IMG_0001.HEIC", "out.jpg")                      # the person segmenter finds the mask
    timings = bokeh_file("photo.jpg", "out.jpg", mask_path="person.png", strength=0.015)

``mask_path``: a mask file, :data:`AUTO` (the person segmenter, :mod:`runtime.person_mask`) or None (no mask:
the network decides every pixel). Stages timed (seconds): ``open`` (the artifact, the runtime's compiled loops
and the segmenter when ``mask_path`` is AUTO and none is given: a one-off cost, none when an open :class:`Matter`
and segmenter are passed, as a folder's photos share them), ``load``, ``segment``, ``trimap``, ``preprocess``,
``model``, ``upsample``, ``refine``, ``foreground``, ``blur``, ``composite``, ``write``. The output format
follows the suffix (JPEG quality 95, or PNG), upright with the photo's ICC profile and EXIF (orientation 1:
:mod:`runtime.photo_files`); it is checked before any work, an existing file is refused unless
``overwrite`` (checked at the start and again at the moment of writing: a file that appeared there during
the render is kept, and the render refused), and the file appears under its name only once complete
(temporary file + rename): on any failure nothing is written there and no temporary file is left.
"""

from __future__ import annotations

from pathlib import Path

from adamatting.config import DEFAULT_WEIGHTS
from common.errors import DataError
from common.outputs import atomic_path, check_file_path, check_writable, described_suffix, no_folders_left_on_failure
from common.values import as_path
from runtime import kernels
from runtime.bokeh import check_strength, render_bokeh
from runtime.lens_blur import DEFAULT_STRENGTH
from runtime.matter import Matter
from runtime.person_mask import MASK_SIDE, PersonSegmenter, segmenter_band
from runtime.photo_files import OUTPUT_SUFFIXES, encode_photo, read_metadata
from runtime.preprocess import as_uint8_rgb, check_band, make_trimap, read_image, read_mask
from runtime.timing import StageTimer

DEFAULT_ARTIFACT = DEFAULT_WEIGHTS
AUTO = "auto"   # mask_path: find the person with the segmenter


def check_output(out_path: str | Path, photo_path: str | Path | None = None, overwrite: bool = True) -> Path:
    """The output path once it can be written: a JPEG/PNG suffix and :func:`check_destination`; DataError naming
    it otherwise."""
    out_path = check_file_path(out_path)   # before the suffix: "out.jpg/" has one, and names a folder
    if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataError(f"output must be {', '.join(OUTPUT_SUFFIXES)}, got {described_suffix(out_path)}",
                        out_path)
    return check_destination(out_path, photo_path, overwrite)


def check_destination(out_path: Path, source: str | Path | None = None, overwrite: bool = True,
                      what: str = "photo") -> Path:
    """``out_path`` once it can be written: a writable folder, not the input ``source`` (a ``what``) itself
    and, unless ``overwrite``, no file there yet; DataError naming it otherwise. Checked before any work."""
    check_writable(out_path)
    if source is not None and out_path.exists() and Path(source).exists() and out_path.samefile(source):
        raise DataError(f"is the input {what}: give another output path", out_path)
    if not overwrite and (out_path.exists() or out_path.is_symlink()):    # a dangling link is there too
        raise DataError("exists already: give --overwrite to replace it", out_path)
    return out_path


@no_folders_left_on_failure()
def bokeh_file(photo_path: str | Path, out_path: str | Path, mask_path: str | Path | None = None,
               trimap_path: str | Path | None = None, artifact: str | Path | Matter = DEFAULT_ARTIFACT,
               strength: float = DEFAULT_STRENGTH, band: int | None = None, *,
               segmenter: PersonSegmenter | None = None, overwrite: bool = True) -> dict[str, float]:
    """Render ``photo_path`` with its background lens-blurred into ``out_path``; returns seconds per stage.

    ``artifact``: a checkpoint or exported model path, or an open :class:`Matter` (reused across photos).
    ``trimap_path`` wins over ``mask_path``; ``mask_path`` :data:`AUTO` runs ``segmenter`` (opened here when
    None) and raises :class:`runtime.person_mask.NoPersonFound` when the photo has no person; with neither
    the model finds the subject itself. ``band``: width in photo pixels of the unknown band on each side of the
    mask's edge (None: from the mask's resolution, wider outside than inside,
    :func:`runtime.preprocess.band_for_mask`; the segmenter's is 256 px:
    :func:`runtime.person_mask.segmenter_band`). ``overwrite=False`` refuses an existing output.
    """
    _check_types(photo_path, out_path, artifact, overwrite, segmenter)
    out_path = check_output(out_path, photo_path, overwrite)   # these checks before any work: a bad option fails at once
    for source, what in ((mask_path, "--mask file"), (trimap_path, "--trimap file")):
        if isinstance(source, (str, Path)) and str(source) != AUTO:
            check_destination(out_path, source, overwrite, what)     # the output would replace it
    check_strength(strength)
    if band is not None:
        check_band(band)
    auto = trimap_path is None and isinstance(mask_path, str) and mask_path == AUTO
    timer = StageTimer()
    with timer("open"):
        matter = artifact if isinstance(artifact, Matter) else Matter.from_artifact(artifact)
        if auto and segmenter is None:
            segmenter = PersonSegmenter()
        kernels.prepare()                      # the renderer's loops (just in time where not built)
    mask = None if auto else mask_path
    with timer("load"):
        photo = as_uint8_rgb(read_image(photo_path), Path(photo_path))   # one decode, for every stage
        metadata = read_metadata(photo_path)
        if mask is not None and trimap_path is None:                     # decoded once too: Matter takes the array
            mask = read_mask(mask, photo.shape[:2])
            if float(mask.max()) <= 0.5:
                raise DataError("the mask marks no person: every pixel of it is background",
                                mask_path if isinstance(mask_path, (str, Path)) else None)
        if trimap_path is not None:                                      # so is a trimap
            trimap = make_trimap(photo.shape[:2], trimap_path)
            if not trimap.any():
                raise DataError("the trimap marks no subject: every pixel of it is background (0)",
                                trimap_path if isinstance(trimap_path, (str, Path)) else None)
    if auto:
        with timer("segment"):
            mask = segmenter.mask(photo, photo_path, long_side=MASK_SIDE)
        band = segmenter_band(photo.shape[:2]) if band is None else band
    result = matter.predict(photo, trimap=None if trimap_path is None else trimap, mask=mask, band=band,
                            with_trimap_prob=False)
    timer.add(result.timings)                  # its "load" is the conversion of the decoded photo to float
    image, _ = render_bokeh(photo, result.alpha, strength, timer=timer, reuse_photo=True)   # rendered over it
    with timer("write"):
        data = encode_photo(image, out_path.suffix, metadata)
        with atomic_path(out_path, replace=overwrite) as tmp:   # without overwrite, a move that cannot replace
            tmp.write_bytes(data)
    return timer.timings


def _check_types(photo_path, out_path, artifact, overwrite, segmenter) -> None:
    """TypeError naming an argument of :func:`bokeh_file` of the wrong kind (pathlib's or Python's own errors
    named none; ``overwrite="no"`` was true and replaced the output)."""
    for name, value in (("photo_path", photo_path), ("out_path", out_path)):   # empty, or a NUL byte, named too
        as_path(value, name, " (an array: Matter.predict, then runtime.bokeh.render_bokeh)" if hasattr(value, "shape")
                else "")
    if not isinstance(artifact, (str, Path, Matter)):
        raise TypeError(f"artifact must be a model's path or an open Matter, got {type(artifact).__name__}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    if segmenter is not None and not callable(getattr(segmenter, "mask", None)):   # failed once the model had loaded
        raise TypeError(f"segmenter must be a runtime.person_mask.PersonSegmenter (its mask(photo, path, ...)) or "
                        f"None, got {type(segmenter).__name__}")
