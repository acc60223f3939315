"""File in, file out: a photo (+ coarse mask or trimap) → its portrait-bokeh rendering, written atomically.

    timings = bokeh_file("photo.jpg", "out.jpg", mask_path="person.png", strength=0.015)

Stages timed (seconds): ``open`` (the artifact), ``load``, ``trimap``, ``preprocess``, ``model``,
``upsample``, ``foreground``, ``blur``, ``composite``, ``write``. The output format follows the suffix
(JPEG quality 95, or PNG); it is checked before any work, and the file appears under its name only once
complete (:func:`calib_data.io.write_image`: temporary file + rename): on any failure nothing is
written there and no temporary file is left.
"""

from __future__ import annotations

from pathlib import Path

from adamatting.config import DEFAULT_WEIGHTS
from calib_data.io import write_image
from common.errors import DataError
from common.outputs import check_writable
from runtime.bokeh import as_uint8_rgb, check_strength, render_bokeh
from runtime.lens_blur import DEFAULT_STRENGTH
from runtime.matter import Matter
from runtime.preprocess import check_band, read_image
from runtime.timing import StageTimer

DEFAULT_ARTIFACT = DEFAULT_WEIGHTS
OUTPUT_SUFFIXES = (".jpg", ".jpeg", ".png")


def bokeh_file(photo_path: str | Path, out_path: str | Path, mask_path: str | Path | None = None,
               trimap_path: str | Path | None = None, artifact: str | Path | Matter = DEFAULT_ARTIFACT,
               strength: float = DEFAULT_STRENGTH, band: int | None = None) -> dict[str, float]:
    """Render ``photo_path`` with its background lens-blurred into ``out_path``; returns seconds per stage.

    ``artifact``: a checkpoint or exported model path, or an open :class:`Matter` (reused across photos).
    ``trimap_path`` wins over ``mask_path``; with neither the model finds the subject itself.
    ``band``: width in photo pixels of the unknown band around the mask's edge (None: from the mask's
    resolution, :func:`runtime.preprocess.band_for_mask`).
    """
    out_path = Path(out_path)
    if out_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise DataError(f"output must be {', '.join(OUTPUT_SUFFIXES)}, got {out_path.suffix or 'no suffix'!r}",
                        out_path)
    check_writable(out_path)   # these checks before any work: a bad option fails at once
    if out_path.exists() and Path(photo_path).exists() and out_path.samefile(photo_path):
        raise DataError("is the input photo: give another output path", out_path)
    check_strength(strength)
    if band is not None:
        check_band(band)
    timer = StageTimer()
    with timer("open"):
        matter = artifact if isinstance(artifact, Matter) else Matter.from_artifact(artifact)
    with timer("load"):
        photo = as_uint8_rgb(read_image(photo_path), Path(photo_path))   # one decode, for both stages
    result = matter.predict(photo, trimap=trimap_path, mask=mask_path, band=band, with_trimap_prob=False)
    timer.add(result.timings)                  # its "load" is the conversion of the decoded photo to float
    image, _ = render_bokeh(photo, result.alpha, strength, timer=timer)
    with timer("write"):
        write_image(out_path, image)
    return timer.timings
