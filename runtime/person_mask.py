"""The person mask of a photo when the user has none: a person segmenter, as a phone camera runs one.

    segmenter = PersonSegmenter()               # the shipped model (runtime/data/, Apache-2.0; NOTICE.md)
    mask = segmenter.mask(photo)                # uint8 (H, W) 0/255 at the photo's resolution
    mask = segmenter.mask(photo, long_side=MASK_SIDE)   # the same, 1024 px on its long side at most
    result = matter.predict(photo, mask=mask, band=segmenter_band(photo.shape[:2]))

The model is MediaPipe Selfie Segmentation (256×256, people only), run by LiteRT (``ai-edge-litert``, imported
when a segmenter is opened). The photo (uint8 RGB, upright) is stretched to 256×256 as MediaPipe does; the
person probability is upsampled bilinearly to the photo and thresholded at 0.5. Its outline is therefore good
to about one pixel of the 256-pixel grid, and the trimap's unknown band is two of those pixels
(:func:`segmenter_band`: 32 px on a 4032-px photo, 16 px — the minimum — up to 2048 px).

A photo in which the segmenter finds (nearly) no person raises :class:`NoPersonFound` rather than rendering a
photo that is all sharp or all blurred.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from common.errors import DataError
from common.values import as_path, is_whole_number
from runtime.errors import ArtifactError, BackendUnavailable
from runtime.preprocess import Band, as_uint8_rgb, band_for_mask, fit_long_side
from runtime.quiet_import import native_stderr_captured
from runtime.resample import area_reduce

MODEL = Path(__file__).with_name("data") / "selfie_segmentation.tflite"
SIDE = 256                 # the model's input and output: SIDE × SIDE over the whole photo
THRESHOLD = 0.5            # person probability above which a pixel is the person
MIN_PERSON_SHARE = 0.01    # below this share of the photo, no person was found
MAX_THREADS = 256          # LiteRT threads at most (a runaway count crashed it as the process ended)
MASK_SIDE = 1024           # the mask the app hands the matting path: 4 of its pixels per segmenter pixel
MIN_SHORT_SIDE = 128       # a reduced mask keeps at least this short side

log = logging.getLogger(__name__)


class NoPersonFound(DataError):
    """The segmenter found no person (or almost none) in the photo."""


def _mask_shape(photo_shape: tuple[int, int], long_side: int | None) -> tuple[int, int]:
    """The (h, w) of the mask: the photo's, or scaled to ``long_side`` when that is smaller and keeps the short
    side at least MIN_SHORT_SIDE (so its aspect stays within the 1 % the runtime allows)."""
    scaled = None if long_side is None else fit_long_side(photo_shape, long_side)
    if scaled is None or min(photo_shape) * long_side / max(photo_shape) < MIN_SHORT_SIDE:
        return tuple(photo_shape)
    return scaled


def segmenter_band(photo_shape: tuple[int, int]) -> Band:
    """The trimap's unknown band, in photo pixels, for the segmenter's mask of a photo of ``photo_shape``:
    two pixels of its 256-pixel grid inside the mask's edge and six outside, at least 14 and 16
    (:func:`runtime.preprocess.band_for_mask`)."""
    return band_for_mask(photo_shape, (SIDE, SIDE))


class PersonSegmenter:
    """The person segmenter on the CPU. ``threads``: LiteRT's thread count (default: its own)."""

    def __init__(self, model: str | Path = MODEL, threads: int | None = None):
        if threads is not None and (not is_whole_number(threads) or not 1 <= threads <= MAX_THREADS):
            raise ValueError(f"threads must be a whole number from 1 to {MAX_THREADS}, got {threads!r}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise BackendUnavailable("the person segmenter needs LiteRT: pip install ai-edge-litert "
                                     "(or give a person mask with --mask FILE)") from None
        model = as_path(model, "model")
        if not model.is_file():
            raise DataError("person segmenter model not found (reinstall the project)", model)
        with native_stderr_captured(log) as native:
            try:
                self._interpreter = Interpreter(model_path=str(model), num_threads=threads)
                self._interpreter.allocate_tensors()
            except (RuntimeError, ValueError) as e:
                error = e
            else:
                error = None
        if error is not None:
            detail = " ".join(native + [str(error)]).strip()
            raise ArtifactError(f"{model}: LiteRT cannot load the person segmenter: {detail}") from None
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape"]) != (1, SIDE, SIDE, 3):
            raise ArtifactError(f"{model}: expected a 1x{SIDE}x{SIDE}x3 input, got {list(self._input['shape'])}")

    def probability(self, photo: np.ndarray) -> np.ndarray:
        """float32 (256, 256): the probability that each cell of the stretched photo is a person. ``photo``: uint8
        (H, W, 3) RGB, or any array :class:`runtime.matter.Matter` takes (gray, RGBA, 16-bit, float in [0, 1]),
        checked and rounded to 8 bits as the renderer does (:func:`runtime.preprocess.as_uint8_rgb`)."""
        photo = as_uint8_rgb(photo)
        x = area_reduce(photo, (SIDE, SIDE), 1 / 255)     # a 12 MP photo: 3.5 ms, where OpenCV's area resize took 35
        self._interpreter.set_tensor(self._input["index"], x[None])
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output["index"])[0, :, :, 0], np.float32)

    def mask(self, photo: np.ndarray, path: str | Path | None = None, *, require_person: bool = True,
             long_side: int | None = None) -> np.ndarray:
        """uint8 0/255 person mask of ``photo`` (uint8 (H, W, 3) RGB, upright) at its resolution (H, W), or with
        ``long_side``, at most that many pixels on its long side with the photo's aspect (what
        :class:`runtime.matter.Matter` takes: a 12-megapixel mask costs time and 12 MB for nothing).
        :class:`NoPersonFound` (naming ``path``) when less than 1 % of the photo is a person, unless
        ``require_person`` is False (timing on a synthetic photo)."""
        if long_side is not None and (not is_whole_number(long_side) or long_side < 1):
            raise ValueError(f"long_side must be a whole number of pixels >= 1, got {long_side!r}")
        if not isinstance(require_person, bool):          # "no" was taken as True
            raise TypeError(f"require_person must be True or False, got {require_person!r}")
        path = None if path is None else as_path(path, "path")
        prob = self.probability(photo)
        share = float((prob > THRESHOLD).mean())
        if require_person and share < MIN_PERSON_SHARE:
            raise NoPersonFound(f"no person found: the person segmenter marks {share:.1%} of the photo as a "
                                f"person (people only; give a mask of the subject with --mask FILE)", path)
        return mask_of(prob, photo.shape[:2], long_side)


def mask_of(prob: np.ndarray, photo_shape: tuple[int, int], long_side: int | None = None) -> np.ndarray:
    """uint8 0/255 mask of the segmenter's probability ``prob`` (256 × 256 over the stretched photo) at the
    photo's resolution, or at most ``long_side`` pixels on its long side (:meth:`PersonSegmenter.mask`)."""
    h, w = _mask_shape(photo_shape, long_side)
    prob8 = np.rint(prob * 255.0).astype(np.uint8)      # uint8: a quarter of the memory at 12 megapixels
    full = cv2.resize(prob8, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(full > int(THRESHOLD * 255), np.uint8(255), np.uint8(0))
