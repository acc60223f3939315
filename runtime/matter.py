"""One interface to the matting network on every runtime: a photo (+ trimap or coarse mask) → alpha.

    matter = Matter.from_artifact("weights/mobile.pt")            # or an exported .onnx with its manifest
    result = matter.predict("photo.jpg", mask="person.png")   # band: from the mask's resolution
    result.alpha        # float32 (H, W) at the photo's full resolution
    result.timings      # seconds per stage: load, trimap, preprocess, model, upsample

The stages (:mod:`runtime.preprocess`, the backend, :mod:`runtime.upsample`):

1. the photo, upright, its 8-bit pixels kept as they are (no full-resolution float copy); the trimap at the
   working resolution of step 4 (from the mask, made there with its band scaled; or all unknown), or given
   (the photo's, which stays the authority of step 7, and its working resolution's by nearest neighbour);
2. both resized to the model (aspect kept; a photo larger than the working resolution of step 4 from that
   resolution, so the photo is read once) and reflect-padded (:class:`runtime.preprocess.Letterbox`) to one
   fixed input size: an exported artifact's (its manifest's), and for a checkpoint, which runs at any size,
   ``input_size`` (default 512×512, the phone export's). A checkpoint and its export at that size therefore
   see the same pixels and give the same matte;
3. the backend runs the encoded inputs; the padding is cropped off;
4. alpha is upsampled by the fast guided filter (or bilinear) to the working resolution: the photo's, or
   :data:`WORKING_SIDE` px on its long side for a larger photo, 0 / 1 in the trimap's known regions (as the
   band refiner was trained); the adapted trimap's probabilities bilinearly to the photo;
5. the band's tiles run again at a higher resolution (:mod:`runtime.refine`; at most 8 tiles at twice the
   model's resolution, ``refinement=None`` turns it off), the same network at the same input size. They are
   planned first: where they cover the whole band with their full weight (a 12-megapixel portrait's four), the
   coarse alpha of steps 2–4 would be replaced wherever the trimap does not fix it, and is not computed (with
   ``clamp_known`` and without ``with_trimap_prob``); else it is, and the tiles go to its most uncertain pixels;
6. with a mask, the band refiner (:mod:`runtime.band_refiner`) re-decides the band from the photo, that alpha
   and a guided filter of the mask (``band_refiner=None`` turns it off); with a trimap and no mask, the band is
   solved by the matting Laplacian pulled toward that alpha (:mod:`runtime.matting_laplacian`; ``laplacian=None``
   turns it off);
7. a larger photo gets the working resolution's alpha by one more guided filter (its coefficients fitted at
   :data:`FIT_SIDE` px, applied to the full-resolution photo: :data:`WORKING_UPSAMPLE`), 0 / 1 where it is
   decided: the trimap's known regions and where the working alpha is settled around the pixel
   (:func:`decided`). A 12-megapixel photo is thus read at full resolution by one filter, not one per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common.values import as_path, is_real_number, is_whole_number
from runtime.backends import Backend, open_backend
from runtime.band_refiner import BandRefiner
from runtime.errors import ArtifactError
from runtime.matting_laplacian import WEIGHT as LAPLACIAN_WEIGHT
from runtime.matting_laplacian import check_weight, solve_band
from runtime.preprocess import (
    Band,
    ImageInput,
    Letterbox,
    as_band,
    fit_long_side,
    load_pixels,
    make_trimap,
    read_mask,
    trimap_at,
)
from runtime.refine import DEFAULT_REFINEMENT, Refinement, plan_tiles, refine
from runtime.resample import area_reduce
from runtime.timing import StageTimer
from runtime.upsample import GUIDED_EPS, GUIDED_RADIUS, METHODS, OPEN, as_float, upsample_alpha

DEFAULT_INPUT_SIZE = (512, 512)   # the phone export's size: where a checkpoint runs, so it matches its export
WORKING_SIDE = 1536               # the long side, at most, of the stages after the network (docs/PHONE_PATH.md)
WORKING_UPSAMPLE = {"radius": 8, "eps": 3e-5}   # the guided filter from there to the photo, fitted at FIT_SIDE
FIT_SIDE = 768                    # where its coefficients are fitted: a quarter of the working resolution's pixels
SETTLED = {"window": 9, "margin": 0.01}   # working alpha within margin of 0 / 1 across a window stays 0 / 1


@dataclass
class MattingResult:
    alpha: np.ndarray                     # float32 (H, W) in [0, 1], the photo's full resolution
    trimap_prob: np.ndarray | None        # float32 (3, H, W): P(background, unknown, foreground), or None
    timings: dict[str, float] = field(default_factory=dict)   # stage → seconds


class Matter:
    """The matting network behind one backend, with the runtime's pre- and post-processing.

    ``input_size``: the (H, W) an any-size backend (a PyTorch checkpoint) is letterboxed to, multiples of its
    stride (default :data:`DEFAULT_INPUT_SIZE`); a fixed-size artifact uses its own and refuses another. ``upsample``: "guided" or
    "bilinear"; ``guide``: "rgb" or "gray" for the guided filter. ``clamp_known``: alpha is 0 / 1 exactly
    where the trimap (given or made from the mask) is background / foreground; the network decides the
    unknown band (and, with no trimap, everything). ``band_refiner``: "shipped" (the default: the refiner in
    ``runtime/data`` where it is installed), a :class:`BandRefiner`, a path to one, or None. ``laplacian``: the
    network's weight in the matting Laplacian's solve of a given trimap's band (:mod:`runtime.matting_laplacian`),
    or None for the network's alpha as it is.
    """

    def __init__(self, backend: Backend, *, input_size: tuple[int, int] | None = None, upsample: str = "guided",
                 guide: str = "rgb", radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, clamp_known: bool = True,
                 refinement: Refinement | None = DEFAULT_REFINEMENT,
                 band_refiner: BandRefiner | str | Path | None = "shipped",
                 laplacian: float | None = LAPLACIAN_WEIGHT):
        if upsample not in METHODS:
            raise ValueError(f"unknown upsampling method {upsample!r}; use one of {', '.join(METHODS)}")
        if guide not in ("rgb", "gray"):
            raise ValueError(f"unknown guide {guide!r}; use 'rgb' or 'gray'")
        _check_filter(radius, eps)
        if not isinstance(clamp_known, bool):
            raise ValueError(f"clamp_known must be True or False, got {clamp_known!r}")
        if refinement is not None and not isinstance(refinement, Refinement):
            raise ValueError(f"refinement must be a runtime.refine.Refinement or None, got {refinement!r}")
        self.backend = backend
        self.input_size = _input_size(backend, input_size)
        self.clamp_known = clamp_known
        self.refinement = refinement
        self.band_refiner = _band_refiner(band_refiner)
        self.laplacian = None if laplacian is None else check_weight(laplacian)
        self.upsample = {"method": upsample, "guide": guide, "radius": radius, "eps": eps}

    @classmethod
    def from_artifact(cls, path: str | Path, *, backend: str | None = None, expect: dict[str, Any] | None = None,
                      backend_options: dict[str, Any] | None = None, **options: Any) -> "Matter":
        """Open a checkpoint (``.pt``) or an exported artifact (``.onnx`` + manifest).

        ``backend``: force a backend instead of choosing by suffix. ``expect``: facts the artifact must
        have, e.g. ``{"input_size": [512, 512], "pu_steps": 3, "precision": "fp32"}``; a mismatch raises
        ManifestError naming each one (a checkpoint, which runs at any size, adopts an expected
        input_size as its fixed size). ``backend_options``: passed to the backend (``threads`` for
        onnxruntime, ``device`` for torch). Other keywords go to :class:`Matter`.
        """
        if expect is not None and not isinstance(expect, dict):
            raise TypeError(f"expect must be a dict of the artifact's facts, got {type(expect).__name__}")
        return cls(open_backend(as_path(path, "path"), backend, expect, **(backend_options or {})), **options)

    def _run_tile(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        """Alpha of one (H, W) = ``input_size`` tile of photo (float RGB) and trimap (uint8)."""
        box = Letterbox.fit(image.shape[:2], self.input_size)
        return box.crop(self._run(box.model_inputs(image, trimap))[0][0, 0])

    def _run(self, inputs: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """The backend's outputs for ``inputs``; ArtifactError when its alpha is not finite (a damaged artifact:
        NaN would pass every later stage as 0 or 1 and render a wrong photo)."""
        outputs = self.backend.run(*inputs)
        if not np.isfinite(outputs[0]).all():
            raise ArtifactError(f"the model ({self.name}) gave an alpha with NaN or inf values: a damaged artifact")
        return outputs

    def _to_photo(self, alpha_w: np.ndarray, photo_w: np.ndarray, photo: np.ndarray,
                  known: np.ndarray | None) -> np.ndarray:
        """The working resolution's alpha at the photo's, by the guided filter with the photo as guide, 0 / 1
        where the trimap ``known`` (or None) or the working alpha decides (:func:`decided`)."""
        alpha_fit, photo_fit = _fitting_resolution(alpha_w, photo_w)
        return upsample_alpha(alpha_fit, photo, photo_fit, **{**self.upsample, **WORKING_UPSAMPLE},
                              decided=decided(alpha_w, photo.shape[:2], known))

    @classmethod
    def from_model(cls, model, input_size: tuple[int, int] | None = None, **options: Any) -> "Matter":
        """An in-memory PyTorch model (``adamatting.model.AdaMatting``) behind the same path: what training's
        validation and the figures score, so their numbers are the app's."""
        from runtime.backends.torch_backend import (
            TorchBackend,  # torch: only for a PyTorch model
        )

        return cls(TorchBackend.from_model(model), input_size=input_size, **options)

    @property
    def name(self) -> str:
        return f"{self.backend.name}/{self.backend.precision}"

    def letterbox(self, shape: tuple[int, int]) -> Letterbox:
        return Letterbox.fit(shape, self.input_size)

    def predict(self, image: ImageInput, trimap: ImageInput | None = None, mask: ImageInput | None = None,
                band: int | Band | None = None, *, with_trimap_prob: bool = True) -> MattingResult:
        """Alpha of ``image`` (a path or an array, any size) at its full resolution.

        ``trimap`` (0/128/255) wins over ``mask`` (a coarse person mask at any resolution of the photo's aspect;
        its trimap has an unknown band of ``band`` pixels of the full-resolution photo around its edge, a number
        for both sides or a :class:`runtime.preprocess.Band`, by default two pixels of the mask's own resolution
        inside the edge and six outside, at least 14 and 16) for the known regions; the mask
        also feeds the band refiner (with a trimap too, inside the trimap's band); with neither, the model
        decides every pixel (all-unknown trimap). ``with_trimap_prob=False`` skips upsampling the adapted
        trimap (3 × H × W floats: 144 MB at 12 megapixels).
        """
        if not isinstance(with_trimap_prob, bool):     # "no" would be taken as True
            raise TypeError(f"with_trimap_prob must be True or False, got {with_trimap_prob!r}")
        if band is not None:
            as_band(band)                          # checked here: with no mask it would be ignored
            if mask is None or trimap is not None:
                raise ValueError("band is the unknown band around a mask's edge: give it with a mask (a trimap "
                                 "marks its band itself)")
        timer = StageTimer()
        with timer("load"):
            photo, _ = load_pixels(image)          # 8-bit pixels stay 8-bit: no full-resolution float copy
        working = fit_long_side(photo.shape[:2], WORKING_SIDE) or photo.shape[:2]
        with timer("trimap"):
            mask_own = None if mask is None else read_mask(mask, photo.shape[:2])
            # a mask's trimap is made at the working resolution; a given one is the photo's, and stays the
            # authority at full resolution
            given = None if trimap is None else make_trimap(photo.shape[:2], trimap)
            trimap_w = (make_trimap(photo.shape[:2], mask=mask_own, band=band, at=working) if given is None else
                        trimap_at(given, working))
            authority = trimap_w if given is None else given
        with timer("preprocess"):
            photo_w = _at_working_resolution(photo)
            box = self.letterbox(photo.shape[:2])   # a larger photo's letterbox from its working resolution
            refining = self.refinement is not None and bool(cv2.countNonZero(cv2.compare(trimap_w, 128, cv2.CMP_EQ)))
            # the tiles may replace all of the coarse alpha only where it is clamped and its trimap not asked for
            skippable = refining and self.clamp_known and not with_trimap_prob
            plan = plan_tiles(trimap_w, self.input_size, self.refinement) if skippable else None
            coarse = plan is None
            if coarse:
                photo_small = as_float(box.resize_image(photo if photo_w.shape == photo.shape else photo_w))
                inputs = box.model_inputs(photo_small, box.resize_trimap(authority))
        alpha_w = prob = None
        if coarse:
            with timer("model"):
                alpha, prob = self._run(inputs)
            with timer("upsample"):
                alpha_w = upsample_alpha(box.crop(alpha[0, 0]), photo_w, photo_small, **self.upsample,
                                         decided=trimap_w if self.clamp_known else None)
        if refining:
            with timer("refine"):
                alpha_w = refine(self._run_tile, photo_w, trimap_w, alpha_w, self.input_size, self.refinement, plan)
        if self.band_refiner is not None and mask_own is not None:
            with timer("band"):
                alpha_w = self.band_refiner(photo_w, trimap_w, alpha_w, mask_own)
        if self.laplacian is not None and trimap is not None and mask_own is None:
            with timer("laplacian"):     # a trimap someone drew: its band solved from the photo's colours
                alpha_w = np.where(trimap_w == 128, solve_band(photo_w, trimap_w, alpha_w, self.laplacian), alpha_w)
        with timer("upsample"):
            # the trimap is authoritative where it is sure: alpha_w is 0 / 1 there since its first filter (the
            # tiles and the band refiner change only the band), and the photo's since its last one
            known = authority if self.clamp_known else None
            alpha_full = alpha_w if photo_w.shape == photo.shape else self._to_photo(alpha_w, photo_w, photo, known)
            prob_full = None
            if with_trimap_prob:
                prob_small = np.ascontiguousarray(box.crop(prob[0]).transpose(1, 2, 0))
                h, w = box.full
                prob_full = cv2.resize(prob_small, (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
        return MattingResult(alpha_full, prob_full, timer.timings)


MAX_RADIUS = 64   # the guided filter's window radius, at most (low-resolution pixels: larger only blurs)
MIN_EPS = 1e-7    # its regularisation, at least: float32 variances resolve no finer (1e-8 gave NaN alpha)
MAX_INPUT_SIDE = 4096   # an any-size backend's input side, at most (8192² ran for minutes; 10**6² asked 2 TB)


def _check_filter(radius: int, eps: float) -> None:
    """ValueError unless the guided filter's ``radius`` is a whole number from 1 to :data:`MAX_RADIUS` and its
    ``eps`` a finite number of at least :data:`MIN_EPS` (0, or below what float32 variances resolve, divides by a
    flat window's zero variance: NaN alpha)."""
    if not is_whole_number(radius) or not 1 <= radius <= MAX_RADIUS:
        raise ValueError(f"radius must be a whole number of pixels from 1 to {MAX_RADIUS}, got {radius!r}")
    if not is_real_number(eps) or not (np.isfinite(eps) and eps >= MIN_EPS):
        raise ValueError(f"eps must be a finite number of at least {MIN_EPS:g}, got {eps!r}")


def _input_size(backend: Backend, asked: tuple[int, int] | None) -> tuple[int, int]:
    """The fixed model input every photo is letterboxed to (see :class:`Matter`)."""
    own = tuple(backend.input_size) if backend.input_size is not None else None
    if asked is not None and not (isinstance(asked, (tuple, list)) and len(asked) == 2
                                  and all(map(is_whole_number, asked))):
        raise ValueError(f"input_size must be (height, width), two whole numbers, got {asked!r}")
    size = tuple(int(s) for s in (asked or own or DEFAULT_INPUT_SIZE))
    if own is not None and size != own:
        raise ValueError(f"input_size {list(size)} differs from the artifact's {list(own)}")
    if len(size) != 2 or min(size) < backend.stride or any(s % backend.stride for s in size):
        raise ValueError(f"input_size {list(size)} must be two multiples of the model's stride {backend.stride}")
    if max(size) > MAX_INPUT_SIDE:
        raise ValueError(f"input_size {list(size)}: at most {MAX_INPUT_SIDE} px a side (the network's memory and time "
                         "grow with its pixels; the phone export's is 512)")
    return size


def _at_working_resolution(photo: np.ndarray) -> np.ndarray:
    """The photo (area, float32 in [0, 1]) at :data:`WORKING_SIDE` px on the long side; a photo no larger keeps
    its size. A photo of at least twice that side is first area-reduced by the whole factor k (OpenCV's k × k
    block mean, several times faster than an area resize by a fraction), then by what is left: at 12 MP 20 ms
    against 40, the alpha within 2.5e-4 mean |Δα| of the one-step resize on the 12-megapixel set (its SAD 75.62
    against 75.68). What is left is :func:`runtime.resample.area_reduce`, straight to float (no rounding to 8
    bits)."""
    size = fit_long_side(photo.shape[:2], WORKING_SIDE)
    if not size:
        return as_float(photo)
    k = min(photo.shape[0] // size[0], photo.shape[1] // size[1])
    if k >= 2:
        photo = cv2.resize(photo, (photo.shape[1] // k, photo.shape[0] // k), interpolation=cv2.INTER_AREA)
    return area_reduce(photo, size, 1 / 255 if photo.dtype == np.uint8 else 1.0)


def _fitting_resolution(alpha: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and photo (area) at :data:`FIT_SIDE` px on the long side, where the last guided filter's
    coefficients are fitted: its windows span as many photo pixels as at the working resolution with twice the
    radius, for a quarter of the memory and time."""
    size = fit_long_side(alpha.shape, FIT_SIDE)
    if not size:
        return alpha, photo
    return tuple(cv2.resize(x, size[::-1], interpolation=cv2.INTER_AREA) for x in (alpha, photo))


def decided(alpha_w: np.ndarray, shape: tuple[int, int], known: np.ndarray | None = None) -> np.ndarray:
    """uint8, where the alpha of a photo of ``shape`` is decided before the last guided filter — 0 / 255
    where the trimap ``known`` (None: no trimap) is background / foreground, and where the working resolution's
    ``alpha_w`` stays below :data:`SETTLED`'s margin (above 1 − margin) across a window around the pixel;
    :data:`runtime.upsample.OPEN` (128) where the filter computes it. ``known`` is the photo's, or ``alpha_w``'s:
    then it decides where it holds across a working pixel's 3 × 3 neighbourhood, so that the photo's pixels it
    decides lie in the known regions of the photo's own trimap, not on a working pixel's step beyond them. At
    ``alpha_w``'s resolution, which the filter reads by nearest neighbour at the photo's (a 12 MP plane less to
    write), unless ``known`` is the photo's own trimap: then at ``shape``.

    The settling: the last filter sharpens strands finer than a working pixel out of the photo's colours, and
    would also find "strands" in a background that has the subject's colours (a net's surroundings); it keeps
    the first only near alpha the working resolution has (docs/PHONE_PATH.md)."""
    # the window's largest alpha below the margin ⇔ every alpha in it below: the erosion of a uint8 plane
    window = np.ones((SETTLED["window"],) * 2, np.uint8)
    at_0, at_1 = (cv2.erode(cv2.compare(alpha_w, level, op), window)
                  for level, op in ((SETTLED["margin"], cv2.CMP_LT), (1 - SETTLED["margin"], cv2.CMP_GT)))
    label = cv2.add(cv2.subtract(np.full_like(at_0, OPEN), at_0), at_1)    # OPEN, 0 where at_0, 255 where at_1
    if known is None or known.shape == alpha_w.shape != tuple(shape):
        if known is not None:    # where the working pixel and its neighbours are known
            _clamp_to_known(label, known, np.ones((3, 3), np.uint8))
        return label             # read by nearest neighbour at the photo's resolution, never made there
    label = cv2.resize(label, shape[::-1], interpolation=cv2.INTER_NEAREST)
    _clamp_to_known(label, known)
    return label


def _clamp_to_known(label: np.ndarray, known: np.ndarray, window: np.ndarray | None = None) -> None:
    """known's 0 / 255 win: ``label`` clamped, in place, to [255 where known is 255, 0 where it is 0] (across
    ``window`` around the pixel, where given)."""
    fg, bg = cv2.compare(known, OPEN, cv2.CMP_GT), cv2.compare(known, 0, cv2.CMP_EQ)
    if window is not None:
        fg, bg = cv2.erode(fg, window), cv2.erode(bg, window)
    cv2.max(label, fg, dst=label)
    cv2.min(label, cv2.bitwise_not(bg), dst=label)


def _band_refiner(choice: BandRefiner | str | Path | None) -> BandRefiner | None:
    """The band refiner :class:`Matter` runs: "shipped" opens the installed one (none where it is absent)."""
    if choice is None or isinstance(choice, BandRefiner):
        return choice
    if choice == "shipped":
        return BandRefiner.shipped()
    if not isinstance(choice, (str, Path)):
        raise TypeError(f"band_refiner must be 'shipped', a BandRefiner, a path to one or None, got "
                        f"{type(choice).__name__}")
    return BandRefiner.open(as_path(choice, "band_refiner"))
