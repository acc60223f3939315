"""Accuracy of every artifact against the FP32 PyTorch model, on the same inputs, for phone bokeh.

Four sets, each scored per artifact as absolute values and as the drop from PyTorch FP32:

- ``val``: the composited validation set at the artifact's input size; the backend runs the encoded
  composite directly (no resizing), so the numbers isolate what the export changed.
- ``real``: the held-back alphamatting.com images (both trimaps) through :class:`runtime.matter.Matter`,
  i.e. letterboxed to the artifact's size, run, guided-upsampled to the photo and clamped to the trimap's
  known regions — what the app gets, less the matting Laplacian's solve of the band (runtime code that would
  only hide an export's change). Only when ../shared/data is present.
- ``mask``: the same images with a coarse person mask simulated from the ground truth (:data:`MASK_RECIPE`)
  instead of a hand-drawn trimap: the phone case, through the same path, so with the band refiner — the
  artifact's own target's conversion where ``adamat export band-refiner`` put one in ``band_refiner/`` beside
  it (:func:`band_refiner_for`), else the shipped ONNX graph. Only with ../shared/data.
- ``clip``: short procedural clips with exact alpha (:data:`GATE_CLIPS`) through the clip path
  (:class:`runtime.clip.ClipMatte`, the state across frames on), a phone mask drawn afresh for every frame: the
  per-frame whole-image ``SAD`` and the clip's ``dtSSD`` (:mod:`evaluation.temporal`), so an export that makes
  the matte flicker more than PyTorch's fails its temporal gate. No data needed.

Per sample: the Composition-1k metrics (unknown region of the trimap; known regions set to 0 / 1 and the
alpha read as 8-bit, as :func:`evaluation.protocol.protocol_alpha` does), ``EdgeMAE`` — mean |α − α*|
in a band of :data:`EDGE_BAND_PX` pixels around the subject's outline (where a bokeh halo shows) — and
``BokehPSNR`` — the rendered bokeh image (:func:`runtime.bokeh.render_bokeh`) against the FP32 model's
render of the same photo, in dB (identical renders are reported as :data:`PSNR_CAP`).

Artifacts that cannot run here keep the accuracy their export measured when it was a faithful
simulation (CoreML: the PyTorch model with the same compression, ``validation.simulated``), marked
``simulated``; others are ``not run`` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from calib_data.readers import AlphaMattingReader
from calib_data.segmenter_masks import RECIPES, simulate_mask
from calib_data.splits import REAL_VALIDATION, alphamatting_dev_dir
from common.encoding import encode_inputs
from common.metrics import compute_all, sad
from common.targets import target_of
from evaluation.clip_eval import ClipSet, phone_masks
from evaluation.protocol import TRIMAPS, protocol_alpha, quantize_gt
from evaluation.temporal import dtssd, mean_over_pairs
from runtime.artifacts import Artifact, open_runner
from runtime.bokeh import render_bokeh
from runtime.clip import CLIP_REFINEMENT, ClipMatte
from runtime.matter import Matter
from runtime.preprocess import make_trimap

EDGE_BAND_PX = 8
MASK_RECIPE = "down8"     # the mask set: alpha > 0.5 at 1/8 of the photo (calib_data.segmenter_masks)
PSNR_CAP = 100.0
METRICS = ("SAD", "MSE", "Grad", "Conn", "EdgeMAE", "BokehPSNR")
CLIP_METRICS = ("SAD", "dtSSD")
GATE_CLIPS = ClipSet(size=(144, 256), frames=8, kinds=("hair", "veil"))   # the clip set: a few seconds per artifact
BOKEH_STRENGTH = 0.02     # as the demo's bokeh grid: a strong blur makes alpha errors visible


def measured_by(set_name: str) -> tuple[str, ...]:
    """The metrics a set scores (a gate on another metric does not apply to it)."""
    return CLIP_METRICS if set_name == "clip" else METRICS


@dataclass
class Sample:
    name: str
    photo: np.ndarray          # uint8 (H, W, 3)
    alpha: np.ndarray          # float32 (H, W), ground truth read as 8-bit
    trimap: np.ndarray         # uint8 0 / 128 / 255
    mask: np.ndarray | None = None   # the coarse person mask the trimap came from (the mask set), 0..1


@dataclass
class ClipSample:
    name: str
    frames: list[np.ndarray]     # uint8 (H, W, 3)
    alphas: list[np.ndarray]     # float32 (H, W), exact
    masks: list[np.ndarray]      # one simulated phone mask per frame


def clip_samples(clip_set: ClipSet = GATE_CLIPS) -> list[ClipSample]:
    return [ClipSample(c.name, c.frames, c.alphas, phone_masks(c, clip_set.seed)) for c in clip_set.clips()]


def clip_score(alphas: list[np.ndarray], sample: ClipSample) -> dict[str, float]:
    return {"SAD": float(np.mean([sad(a, g, region="all") for a, g in zip(alphas, sample.alphas)])),
            "dtSSD": mean_over_pairs(dtssd, alphas, sample.alphas)}


class ReferenceFailed(ValueError):
    """The FP32 reference could not be evaluated: nothing can be compared with it."""


@dataclass
class SetScore:
    samples: int
    metrics: dict[str, float]                                 # BokehPSNR is already relative to FP32's render
    drop: dict[str, float] = field(default_factory=dict)     # error metric − FP32's (no BokehPSNR)


@dataclass
class AccuracyRow:
    artifact: Artifact
    status: str                                   # measured | simulated | not run | failed
    note: str = ""
    sets: dict[str, SetScore] = field(default_factory=dict)


def edge_band(alpha_gt: np.ndarray, width: int = EDGE_BAND_PX) -> np.ndarray:
    """Pixels within ``width`` of the subject's outline: the partly transparent pixels and the 0.5
    iso-line of the ground truth, dilated."""
    solid = (alpha_gt > 0.5).astype(np.uint8)
    outline = cv2.morphologyEx(solid, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    partial = (alpha_gt > 1 / 255) & (alpha_gt < 254 / 255)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate((outline | partial).astype(np.uint8), kernel) > 0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images in dB, capped at :data:`PSNR_CAP` (identical images)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255.0 ** 2 / mse))


def render(photo: np.ndarray, alpha: np.ndarray) -> np.ndarray:

    return render_bokeh(photo, alpha, BOKEH_STRENGTH)[0]


def score(alpha: np.ndarray, sample: Sample, reference_render: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Metrics of one alpha (float, the sample's size) and its bokeh render."""
    a = protocol_alpha(alpha, sample.trimap)
    m = compute_all(a, sample.alpha, sample.trimap)
    band = edge_band(sample.alpha)
    m["EdgeMAE"] = float(np.abs(a[band] - sample.alpha[band]).mean()) if band.any() else 0.0
    image = render(sample.photo, a)
    m["BokehPSNR"] = PSNR_CAP if reference_render is None else psnr(image, reference_render)
    return m, image


def val_samples(cset, limit: int | None = None) -> list[Sample]:
    n = len(cset) if limit is None else min(limit, len(cset))
    out = []
    for i in range(n):
        it = cset[i]
        photo = np.clip(np.rint(it["image"] * 255.0), 0, 255).astype(np.uint8)
        out.append(Sample(f"{cset.meta.get('name', 'val')}/{i}", photo, quantize_gt(it["alpha"]), it["trimap"]))
    return out


def real_samples(names=REAL_VALIDATION, trimaps=TRIMAPS) -> list[Sample]:
    """The held-back real images with each trimap; [] when ../shared/data is absent."""

    if not alphamatting_dev_dir().is_dir():
        return []
    out = []
    for s in AlphaMattingReader(alphamatting_dev_dir(), list(names)):
        photo = np.clip(np.rint(s.image * 255.0), 0, 255).astype(np.uint8)
        for t in trimaps:
            out.append(Sample(f"{s.name}/{t}", photo, quantize_gt(s.alpha), s.trimaps[t]))
    return out


def mask_samples(names=REAL_VALIDATION, recipe: str = MASK_RECIPE, seed: int = 0) -> list[Sample]:
    """The held-back real images, each with a coarse person mask simulated from its ground truth (the phone
    case; :mod:`calib_data.segmenter_masks`), its trimap the mask's with the band the mask's resolution implies;
    [] when ../shared/data is absent."""
    if not alphamatting_dev_dir().is_dir():
        return []
    out = []
    for s in AlphaMattingReader(alphamatting_dev_dir(), list(names)):
        photo = np.clip(np.rint(s.image * 255.0), 0, 255).astype(np.uint8)
        mask = simulate_mask(s.alpha, RECIPES[recipe], s.name, seed)
        trimap = make_trimap(s.alpha.shape, mask=mask)
        out.append(Sample(f"{s.name}/mask-{recipe}", photo, quantize_gt(s.alpha), trimap, mask))
    return out


def _val_predict(backend) -> Callable[[Sample], np.ndarray]:
    def run(s: Sample) -> np.ndarray:
        img, tri = encode_inputs(s.photo.astype(np.float32) / 255.0, s.trimap)
        return backend.run(img[None], tri[None])[0][0, 0]
    return run


def _clip_predict(backend, band_refiner: str | Path) -> Callable[[ClipSample], list[np.ndarray]]:
    matter = Matter(backend, refinement=CLIP_REFINEMENT, band_refiner=band_refiner)

    def run(s: ClipSample) -> list[np.ndarray]:
        matte = ClipMatte(matter)
        return [matte(f, m) for f, m in zip(s.frames, s.masks)]
    return run


def _real_predict(backend, band_refiner: str | Path) -> Callable[[Sample], np.ndarray]:
    # without the matting Laplacian's solve of a drawn trimap's band: the same code on every backend, pulled
    # toward the photo's colours, it would hide what an export changed in the network's alpha
    matter = Matter(backend, band_refiner=band_refiner, laplacian=None)
    return lambda s: matter.predict(s.photo, trimap=s.trimap, mask=s.mask, with_trimap_prob=False).alpha


def band_refiner_for(a: Artifact) -> str | Path:
    """The band refiner ``a`` runs with: its target's conversion in ``band_refiner/`` beside it (``adamat
    export band-refiner --out <its folder>/band_refiner``) where there is one, else the shipped graph."""
    target = target_of(a.backend, a.path.suffix)
    own = a.path.parent / "band_refiner" / target.refiner if target is not None and target.refiner else None
    return own if own is not None and own.exists() else "shipped"


def _mean(rows: list[dict], metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in metrics}


def drops(metrics: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    """metric − FP32's for the error metrics (BokehPSNR is a comparison with FP32 already: not here)."""
    return {k: metrics[k] - ref[k] for k in metrics if k != "BokehPSNR" and k in ref}


class Evaluator:
    """Scores artifacts against the FP32 reference; the reference's alphas and renders are computed once."""

    def __init__(self, reference: Artifact, input_size, sets: dict[str, list[Sample]]):
        self.input_size = list(input_size)
        self.sets = {k: v for k, v in sets.items() if v}
        self.reference = reference
        self._ref_renders: dict[str, list[np.ndarray]] = {}
        self.ref_row = self._measure(reference)
        if self.ref_row.status != "measured":
            raise ReferenceFailed(f"the FP32 reference {reference.path} could not be evaluated: {self.ref_row.note}")

    def _predictors(self, backend, a: Artifact) -> Iterator[tuple[str, Callable[[Sample], np.ndarray]]]:
        for name in self.sets:
            if name == "val":
                yield name, _val_predict(backend)
            else:
                yield name, (_clip_predict if name == "clip" else _real_predict)(backend, band_refiner_for(a))

    def _measure(self, a: Artifact) -> AccuracyRow:
        """Run ``a`` on every set; a backend that fails to open or to run is a ``failed`` row, not a crash."""
        is_ref = a is self.reference
        try:
            backend = open_runner(a, self.input_size)
            scores = {name: self._score_set(name, predict, is_ref) for name, predict in self._predictors(backend, a)}
        except Exception as e:   # whatever the runtime raises
            return AccuracyRow(a, "failed", f"{type(e).__name__}: {e}")
        for sc_name, sc in scores.items():
            sc.drop = drops(sc.metrics, (sc if is_ref else self.ref_row.sets[sc_name]).metrics)
        return AccuracyRow(a, "measured", a.note, scores)

    def _score_set(self, name: str, predict: Callable, is_ref: bool) -> SetScore:
        if name == "clip":
            return SetScore(len(self.sets[name]), _mean([clip_score(predict(s), s) for s in self.sets[name]],
                                                         CLIP_METRICS))
        rows, renders = [], []
        for i, s in enumerate(self.sets[name]):
            m, image = score(predict(s), s, None if is_ref else self._ref_renders[name][i])
            rows.append(m)
            renders.append(image)
        if is_ref:
            self._ref_renders[name] = renders
        return SetScore(len(rows), _mean(rows))

    def evaluate(self, a: Artifact) -> AccuracyRow:
        if a.runs_here:
            return self._measure(a)
        sim = a.simulated_validation
        if sim and "quantized" in sim:
            ref = sim["fp32"]
            q = sim["quantized"]
            metrics = {k: q[k] for k in ("SAD", "MSE", "Grad", "Conn") if k in q}
            return AccuracyRow(a, "simulated", f"{a.note} ({sim.get('method', 'simulation')})",
                               {"val": SetScore(int(sim.get("samples", 0)), metrics,
                                                {k: metrics[k] - ref[k] for k in metrics if k in ref})})
        return AccuracyRow(a, "not run", a.note)


def evaluate_all(reference: Artifact, artifacts: list[Artifact], input_size, cset, *, real: bool = True,
                 val_limit: int | None = None, clips: bool = True,
                 progress: Callable[[str], None] | None = None) -> list[AccuracyRow]:
    """The reference row first, then one row per artifact (see the module doc)."""
    sets = {"val": val_samples(cset, val_limit), "real": real_samples() if real else [],
            "mask": mask_samples() if real else [], "clip": clip_samples() if clips else []}
    if progress:
        progress(f"accuracy: {reference.label} (reference)")
    ev = Evaluator(reference, input_size, sets)
    rows = [ev.ref_row]
    for a in artifacts:
        if progress:
            progress(f"accuracy: {a.label}")
        rows.append(ev.evaluate(a))
    return rows
