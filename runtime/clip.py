"""Portrait bokeh of a video clip: the photo path frame by frame, with the state a clip needs across frames.

    matter = Matter.from_artifact("out/export/adamatting_mobile-int8_512x512_openvino_int8.xml",
                                  refinement=CLIP_REFINEMENT)
    report = bokeh_clip("clip.mp4", "out.mp4", matter)       # the person segmenter on every frame
    report.fps, report.timings                               # frames per second, seconds per stage (summed)

Run independently, frame after frame, the segmenter's outline and the matte of the hair change a little every
frame even where nothing moved: the bokeh flickers there. :class:`ClipMatte` carries, from one frame to the next,

- the person mask, thresholded frame by frame as the photo path thresholds it (the segmenter's at
  :data:`runtime.person_mask.MASK_SIDE`, or the given one), then blended with the previous frame's where the frame
  is still (:data:`MASK_MEMORY`) and passed on as it is: soft where the outline crawled, so the trimap and the band
  refiner see where it has been;
- the alpha, blended likewise with the previous frame's alpha (:data:`ALPHA_MEMORY`);

"still" being measured per pixel on the frames' luma (:func:`stillness`): where something moves, the frame's own
answer is taken. A scene cut (the frame's thumbnail far from the previous one: :data:`SCENE_CUT`) starts afresh.
This is a runtime filter around the photo network (it exports nothing new); the network itself keeps no state
between frames. Clips run without the photo path's tile refinement (:data:`CLIP_REFINEMENT`: four more network
calls per frame). A frame in which the segmenter finds no person is written unchanged (sharp) and counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from common.errors import DataError
from common.outputs import atomic_path, no_folders_left_on_failure
from common.values import as_path
from runtime.bokeh import check_strength, render_bokeh
from runtime.clip_files import ClipReader, ClipWriter, Frame, check_clip_output
from runtime.lens_blur import DEFAULT_STRENGTH
from runtime.matter import Matter
from runtime.parallel import each, strips
from runtime.person_mask import MASK_SIDE, MIN_PERSON_SHARE, PersonSegmenter, mask_of, segmenter_band
from runtime.pipeline import check_destination
from runtime.preprocess import as_uint8_rgb, read_mask
from runtime.timing import StageTimer

MASK_MEMORY = 0.7          # share of the previous frame's mask a still pixel keeps
ALPHA_MEMORY = 0.5         # share of the previous frame's alpha a still pixel keeps
STILL_TOLERANCE = 6 / 255  # a luma change up to this is still (noise, compression); none kept from twice it
SCENE_CUT = 0.12           # mean |Δ luma| of 64 × 36 thumbnails (0..1) above which the state starts afresh
THUMBNAIL = (64, 36)
CLIP_REFINEMENT = None     # no tile refinement on clips (runtime.refine)
TEMPORAL_ROWS = 128        # frame rows per pass of the alpha's blend with the previous frame's


def stillness(now: np.ndarray, before: np.ndarray, tolerance: float | None = None) -> np.ndarray:
    """float32 in [0, 1] per pixel of two uint8 luma planes: 1 where they differ by at most ``tolerance``
    (of 1; default :data:`STILL_TOLERANCE`), falling to 0 at twice it."""
    tolerance = STILL_TOLERANCE if tolerance is None else tolerance
    change = cv2.absdiff(now, before).astype(np.float32) * np.float32(1 / 255)
    return np.clip(2.0 - change / np.float32(tolerance), 0.0, 1.0, dtype=np.float32)


def _blend(now: np.ndarray, before: np.ndarray, memory: float, still: np.ndarray) -> np.ndarray:
    """now + memory·still·(before − now): the previous answer kept where the frame is still."""
    return now + np.float32(memory) * still * (before - now)


def _steadied(alpha: np.ndarray, previous: np.ndarray, luma: np.ndarray, before: np.ndarray) -> np.ndarray:
    """The frame's alpha blended with the previous frame's where still (:data:`ALPHA_MEMORY`), clipped to [0, 1]:
    strip by strip on :mod:`runtime.parallel`'s threads, each strip's temporaries in the cache (every step is per
    pixel: the same whatever the strips; a 4K frame 30 -> 8 ms, a 1080p one 4.2 -> 2.3)."""
    out = np.empty(alpha.shape, np.float32)

    def steady(rows: slice) -> None:
        out[rows] = np.clip(_blend(alpha[rows], previous[rows], ALPHA_MEMORY, stillness(luma[rows], before[rows])),
                            0, 1)

    each(steady, strips(alpha.shape[0], TEMPORAL_ROWS))
    return out


@dataclass
class _State:
    luma: np.ndarray | None = None       # the previous frame's luma, uint8
    thumb: np.ndarray | None = None      # its THUMBNAIL, float32
    mask: np.ndarray | None = None       # the steadied mask, float32
    alpha: np.ndarray | None = None      # the previous frame's alpha


@dataclass
class ClipMatte:
    """Alpha of the successive frames of one clip (uint8 RGB, upright, all of one size), with the state of
    the module docstring. ``segmenter``: finds the person where no mask is given; ``stabilise=False`` runs
    every frame on its own (the frame-by-frame baseline)."""

    matter: Matter
    segmenter: PersonSegmenter | None = None
    stabilise: bool = True
    state: _State = field(default_factory=_State)
    cuts: int = 0

    def __post_init__(self) -> None:
        """TypeError naming an argument of the wrong kind (each failed at the first frame, inside the loop)."""
        if not isinstance(self.matter, Matter):
            raise TypeError(f"matter must be an open runtime.matter.Matter (Matter.from_artifact(path)), got "
                            f"{type(self.matter).__name__}")
        if self.segmenter is not None and not callable(getattr(self.segmenter, "probability", None)):
            raise TypeError(f"segmenter must be a runtime.person_mask.PersonSegmenter (its probability(rgb)) or "
                            f"None, got {type(self.segmenter).__name__}")
        if not isinstance(self.stabilise, bool):     # "no" was taken as True
            raise TypeError(f"stabilise must be True or False, got {self.stabilise!r}")

    def __call__(self, rgb: np.ndarray, mask: np.ndarray | None = None,
                 timer: StageTimer | None = None) -> np.ndarray | None:
        """The frame's alpha (float32, its size), or None where the segmenter finds no person. ``mask``: the
        frame's coarse mask (any resolution of its aspect, 0..1); None: the segmenter's. A frame that is not
        uint8 RGB is converted as a photo is (:func:`runtime.preprocess.as_uint8_rgb`); one of another size
        than the last starts afresh, as a scene cut does."""
        if timer is not None and not isinstance(timer, StageTimer):
            raise TypeError(f"timer must be a runtime.timing.StageTimer or None, got {type(timer).__name__}")
        if mask is None and self.segmenter is None:
            raise ValueError("give the frame's mask, or a PersonSegmenter to find the person (ClipMatte(matter, "
                             "PersonSegmenter()))")
        timer = timer or StageTimer()
        rgb = as_uint8_rgb(rgb)
        luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        self._cut_if_new_scene(luma)
        before, self.state.luma = self.state.luma, luma
        with timer("segment"):
            person = self._mask(rgb, luma, before, mask)
        if person is None:
            self.state.alpha = None          # nothing to carry into the next frame
            return None
        band = segmenter_band(rgb.shape[:2]) if mask is None else None
        result = self.matter.predict(rgb, mask=person, band=band, with_trimap_prob=False)
        timer.add(result.timings)
        alpha = result.alpha
        with timer("temporal"):
            if self.stabilise and self.state.alpha is not None:
                alpha = _steadied(alpha, self.state.alpha, luma, before)
            self.state.alpha = alpha
        return alpha

    def _cut_if_new_scene(self, luma: np.ndarray) -> None:
        thumb = cv2.resize(luma, THUMBNAIL, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        resized = self.state.luma is not None and self.state.luma.shape != luma.shape
        if self.state.thumb is not None and (resized or float(np.abs(thumb - self.state.thumb).mean()) > SCENE_CUT):
            self.state = _State()
            self.cuts += 1
        self.state.thumb = thumb

    def _mask(self, rgb: np.ndarray, luma: np.ndarray, before: np.ndarray | None,
              given: np.ndarray | None) -> np.ndarray | None:
        """The frame's mask, float32 in [0, 1]: the given one (its resolution) or the segmenter's (MASK_SIDE),
        thresholded, then steadied against the previous frame's (its luma ``before``); None where the segmenter's
        steadied mask holds no person (under MIN_PERSON_SHARE of it above 0.5)."""
        if given is not None:
            person = (read_mask(given, rgb.shape[:2]) > 0.5).astype(np.float32)
        else:
            prob = self.segmenter.probability(rgb)
            person = mask_of(prob, rgb.shape[:2], MASK_SIDE).astype(np.float32) * np.float32(1 / 255)
        if self.stabilise and self.state.mask is not None and self.state.mask.shape == person.shape:
            small, before = (cv2.resize(x, person.shape[::-1], interpolation=cv2.INTER_AREA) for x in (luma, before))
            person = _blend(person, self.state.mask, MASK_MEMORY, stillness(small, before))
        self.state.mask = person
        if given is None and float(np.count_nonzero(person > 0.5)) < MIN_PERSON_SHARE * person.size:
            return None
        return person


@dataclass
class ClipReport:
    frames: int = 0
    without_person: int = 0              # frames written unchanged: the segmenter found no person
    scene_cuts: int = 0
    hdr: str | None = None               # the clip's HDR transfer ("HLG", "PQ"), converted to SDR; None: SDR
    seconds: float = 0.0                 # wall-clock, decode to encode
    timings: dict[str, float] = field(default_factory=dict)   # summed over the frames

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _render_frame(frame: Frame, matte: ClipMatte, writer: ClipWriter, strength: float, report: ClipReport,
                  timer: StageTimer) -> None:
    alpha = matte(frame.rgb, timer=timer)
    if alpha is None:
        report.without_person += 1
        image = frame.rgb
    else:
        image, _ = render_bokeh(frame.rgb, alpha, strength, timer=timer)   # a frame's new image: no page faults to save
    with timer("encode"):
        writer.write(image, frame)
    report.frames += 1


@no_folders_left_on_failure()
def bokeh_clip(clip_path: str | Path, out_path: str | Path, matter: Matter, *,
               segmenter: PersonSegmenter | None = None, strength: float = DEFAULT_STRENGTH,
               overwrite: bool = True, stabilise: bool = True,
               on_frame: Callable[[int, int | None], None] | None = None) -> ClipReport:
    """Render ``clip_path`` with its background lens-blurred into ``out_path`` (:mod:`runtime.clip_files`:
    upright, the input's rate, timestamps and audio), frame by frame in bounded memory, written atomically.
    ``on_frame(done, total)`` after each frame (``total``: the container's frame count, or None)."""
    for name, value in (("clip_path", clip_path), ("out_path", out_path)):
        as_path(value, name)                     # None, "", a NUL byte: named, not failed inside pathlib or PyAV
    if not isinstance(overwrite, bool):          # "no" was taken as True: the output replaced
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    out_path = check_clip_output(out_path)      # before Path(): "out.mp4/" names a folder
    check_destination(out_path, clip_path, overwrite, what="clip")
    check_strength(strength)
    if on_frame is not None and not callable(on_frame):
        raise TypeError(f"on_frame must be callable, got {type(on_frame).__name__}")
    matte = ClipMatte(matter, segmenter, stabilise)     # checks the three before the segmenter opens
    if matte.segmenter is None:
        matte.segmenter = PersonSegmenter()
    report, timer = ClipReport(), StageTimer()
    start = time.perf_counter()
    with ClipReader(clip_path) as clip, atomic_path(out_path, replace=overwrite) as tmp:
        report.hdr = clip.info.hdr
        with ClipWriter(tmp, clip, final=out_path) as writer:
            items = clip.items()
            while True:
                with timer("decode"):
                    item = next(items, None)
                if item is None:
                    break
                if not isinstance(item, Frame):
                    writer.mux_audio(item)
                    continue
                _render_frame(item, matte, writer, strength, report, timer)
                if on_frame:
                    on_frame(report.frames, clip.info.frames)
        if report.frames == 0:
            raise DataError("has no video frame to render", clip_path)
    report.seconds = time.perf_counter() - start
    report.scene_cuts, report.timings = matte.cuts, timer.timings
    return report
