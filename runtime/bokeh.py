"""Portrait bokeh: the subject sharp, the background lens-blurred behind it.

    out = α·F + (1 − α)·lens_blur(background)

- F: the subject's own colours (:mod:`runtime.foreground`): the photo where α = 1, blur-fusion estimates
  where the subject is partly transparent, so hair carries no halo of the old, sharp background;
- the blurred background (:mod:`runtime.lens_blur`): disc kernel in linear light with boosted highlights,
  the subject excluded by normalised convolution, its partly transparent pixels replaced by their
  estimated background colours.

The output is uint8 RGB with the photo's shape. Where α = 1 it is the photo's pixels exactly (copied, not
recomputed). Other photo arrays (gray, RGBA, uint16, float in [0, 1]) are accepted as
:class:`runtime.matter.Matter` accepts them and rounded to 8 bits first; the "unchanged" guarantee
refers to those 8-bit values.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from common.errors import DataError
from common.values import is_real_number
from runtime import kernels
from runtime.foreground import PIXELS_PER_PASS, foreground_at, partly_transparent_index
from runtime.lens_blur import (
    DEFAULT_STRENGTH,
    HIGHLIGHT_GAIN,
    HIGHLIGHT_THRESHOLD,
    blur_radius,
    reduced_lens_blur,
)
from runtime.parallel import each, strips
from runtime.preprocess import as_uint8_rgb, in_native_order
from runtime.timing import StageTimer

SUBJECT_ROWS = 128       # photo rows per pass of the composite


ALPHA_SLACK = 0.25       # a float matte's overshoot of [0, 1] clipped (a cubic resize's ringing); beyond it, refused


def check_alpha(alpha: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 (H, W) in [0, 1] of the photo's size (uint8 and uint16 mattes are divided by their largest value, a
    bool one is 0 / 1): the array itself when it is float32 in [0, 1] already (the renderer only reads it), else
    a copy, clipped where a float matte overshoots by up to :data:`ALPHA_SLACK`. DataError for another dtype, NaN
    or inf, or float values further out (a 0..255 matte in floats would otherwise clip to a subject everywhere)."""
    if alpha.shape != shape:
        raise DataError(f"alpha is {alpha.shape} but the photo is {shape}")
    alpha = in_native_order(alpha)
    if alpha.dtype in (np.uint8, np.uint16):
        return alpha.astype(np.float32) / np.float32(np.iinfo(alpha.dtype).max)
    if alpha.dtype == np.bool_:
        return alpha.astype(np.float32)
    if not np.issubdtype(alpha.dtype, np.floating):
        raise DataError(f"alpha must be float in [0, 1], uint8, uint16 or bool, got {alpha.dtype}")
    alpha = alpha.astype(np.float32, copy=False)
    low, high = float(alpha.min()), float(alpha.max())      # NaN and inf show in these: no full-size temporaries
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DataError("alpha contains NaN or inf")
    if low < -ALPHA_SLACK or high > 1.0 + ALPHA_SLACK:
        raise DataError(f"alpha must be in [0, 1], got values from {low:g} to {high:g} (a 0..255 matte? divide it "
                        "by 255)")
    return alpha if 0.0 <= low and high <= 1.0 else np.clip(alpha, 0.0, 1.0)   # a copy only when it must change


def composite(photo: np.ndarray, alpha: np.ndarray, background: np.ndarray,
              fg_mask: np.ndarray, fg: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """α·F + (1−α)·background in uint8, F = the photo except ``fg`` at ``fg_mask``; the photo where α = 1.

    ``background`` (uint8 RGB) is the photo's size or smaller (the lens blur's reduced image,
    :func:`runtime.lens_blur.reduced_lens_blur`), read bilinearly. ``out`` (uint8 RGB of the photo's size,
    C-contiguous, writeable) says where the result goes:

    - None (a new array) or another array (``out=background`` composites in place, a background of the photo's
      size): the background upsampled straight into it by OpenCV, the photo's pixels copied where α = 1;
    - ``out=photo``: over the photo, its subject left where it is (no second photo-sized image: at 12 MP 16 ms
      against 20–24 for a new one, whose pages are first touched). One compiled loop
      (:func:`runtime.kernels.composite_rows`) reads the background bilinearly and writes it where α < 1, within
      a level of OpenCV's fixed-point upsampling.

    Either way the compositing equation runs only at the partly transparent pixels ``fg_mask`` (boolean, or their
    sorted flat indices; :func:`runtime.kernels.mix_at`)."""
    h, w = photo.shape[:2]
    if out is not None and not (out.dtype == np.uint8 and out.shape == (h, w, 3) and out.flags.c_contiguous
                                and out.flags.writeable):
        raise ValueError(f"out must be writeable uint8 RGB of the photo's {(h, w)}, C-contiguous, got {out.dtype} "
                         f"{out.shape}" + ("" if out.flags.writeable else ", read-only"))
    over_photo = out is not None and np.shares_memory(out, photo)
    if over_photo and out is not photo:
        raise ValueError("out may be the photo itself, not another view of it")
    alpha, fg = np.ascontiguousarray(alpha, np.float32), np.ascontiguousarray(fg, np.float32)
    index = np.flatnonzero(fg_mask) if fg_mask.dtype == np.bool_ else np.ascontiguousarray(fg_mask, np.int64)
    if over_photo:
        arguments = (alpha, np.ascontiguousarray(background), kernels.neighbours(h, background.shape[0]),
                     kernels.neighbours(w, background.shape[1]))
        each(lambda rows: kernels.composite_rows(*arguments, rows.start, rows.stop, out), strips(h, SUBJECT_ROWS))
    else:
        if background.shape[:2] != (h, w):
            out = cv2.resize(background, (w, h), dst=out, interpolation=cv2.INTER_LINEAR)
        elif out is None:
            out = background.copy()
        elif out is not background:
            np.copyto(out, background)

        def subject(rows: slice) -> None:                   # exactly the photo where α = 1, not recomputed
            cv2.copyTo(photo[rows], cv2.compare(alpha[rows], 1.0, cv2.CMP_GE), out[rows])

        each(subject, strips(h, SUBJECT_ROWS))
    each(lambda part: kernels.mix_at(alpha, index, fg, part.start, part.stop, out), strips(index.size, PIXELS_PER_PASS))
    return out


def check_strength(strength: float) -> float:
    """The blur strength, a finite fraction of the image diagonal in [0, 1]; ValueError naming it otherwise."""
    if not is_real_number(strength) or not (
            math.isfinite(strength) and 0 <= strength <= 1):
        raise ValueError(f"strength must be a number in [0, 1] (a fraction of the image diagonal; default "
                         f"{DEFAULT_STRENGTH}), got {strength!r}")
    return float(strength)


MAX_HIGHLIGHT_GAIN = 1000.0   # the boost's gain, at most (1e30 made the background white, 1e300 black: overflow)


def _check_highlights(threshold: float, gain: float) -> None:
    """ValueError unless the highlight boost's threshold is a number in [0, 1] and its gain one from 0 to
    :data:`MAX_HIGHLIGHT_GAIN` (a NaN gain made the whole background black)."""
    for name, value, most in (("highlight_threshold", threshold, 1.0), ("highlight_gain", gain, MAX_HIGHLIGHT_GAIN)):
        if not is_real_number(value) or not (
                math.isfinite(value) and 0 <= value <= most):
            raise ValueError(f"{name} must be a number from 0 to {most:g}, got {value!r}")


def render_bokeh(photo: np.ndarray, alpha: np.ndarray, strength: float = DEFAULT_STRENGTH, *,
                 highlight_threshold: float = HIGHLIGHT_THRESHOLD, highlight_gain: float = HIGHLIGHT_GAIN,
                 timer: StageTimer | None = None, reuse_photo: bool = False) -> tuple[np.ndarray, dict[str, float]]:
    """The bokeh image (uint8 (H, W, 3)) of ``photo`` with subject ``alpha``, and seconds per stage
    (``foreground``, ``blur``, ``composite``).

    ``strength``: disc radius as a fraction of the image diagonal (0.015: 75 px at 4000×3000; 0 returns
    the photo). ``highlight_gain=0`` turns the bokeh-ball boost off. ``reuse_photo=True``: the photo's memory may
    hold the result (where it is a writeable C-contiguous uint8 RGB array and the blur is rendered at all, the
    image returned is ``photo`` itself, its pixels replaced): no second photo-sized image, for a caller done with
    the photo; its background within a level of the other's (:func:`composite`).
    """
    check_strength(strength)
    _check_highlights(highlight_threshold, highlight_gain)
    if not isinstance(reuse_photo, bool):
        raise TypeError(f"reuse_photo must be True or False, got {reuse_photo!r}")
    timer = timer or StageTimer()
    given, photo = photo, as_uint8_rgb(photo)
    if not isinstance(alpha, np.ndarray):            # np.asarray(None) is a 0-d array: "alpha is ()"
        raise TypeError(f"alpha must be a numpy array (H, W), got {type(alpha).__name__}")
    alpha = check_alpha(alpha, photo.shape[:2])
    if blur_radius(photo.shape[:2], strength) < 0.5:      # no blur: the photo itself, not its subject re-composited
        return photo.copy(), timer.timings
    with timer("foreground"):
        band = partly_transparent_index(alpha)           # the partly transparent pixels, found once
        fg, bg = foreground_at(photo, alpha, band)
    with timer("blur"):
        background = reduced_lens_blur(photo, alpha, strength, background=(band, bg), threshold=highlight_threshold,
                                       gain=highlight_gain)
    with timer("composite"):
        over = reuse_photo and photo is given and photo.flags.c_contiguous and photo.flags.writeable
        out = composite(photo, alpha, background, band, fg, out=photo if over else None)
    return out, timer.timings
