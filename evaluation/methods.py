"""What ``adamat eval`` compares on the same photos and the same trimap: the model through the app's path, and
the baselines a phone pipeline would otherwise use.

Every method maps (photo, trimap, mask) to alpha at the photo's resolution. ``trimap`` is the one every
trimap-based method of a run shares: given, or made from the mask with the band its resolution implies;
``mask`` is the coarse mask at its own resolution (None in the trimap protocol).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from calib_data.readers import estimate_alpha_closed_form
from common.errors import DataError
from common.values import is_whole_number
from runtime.matter import Matter
from runtime.refine import DEFAULT_REFINEMENT, Refinement
from runtime.mask_prior import guided_mask, mask_at

CLOSED_FORM_CAP = 1_000_000      # pixels: closed-form matting runs on the photo scaled down to this, then up


@dataclass
class RawMask:
    """The segmenter's mask brought to the photo and thresholded: what bokeh without matting uses."""

    name: str = "raw mask"
    needs_mask: bool = True

    def predict(self, image: np.ndarray, trimap: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return (mask_at(mask, image.shape[:2]) > 0.5).astype(np.float32)


@dataclass
class GuidedFilterMask:
    """The mask refined by a fast guided filter with the photo as guide (:func:`runtime.mask_prior.guided_mask`):
    coefficients at a long side of 512 px, applied at full resolution."""

    name: str = "guided filter"
    needs_mask: bool = True

    def predict(self, image: np.ndarray, trimap: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return guided_mask(image, mask)


@dataclass
class ClosedForm:
    """Closed-form matting (Levin et al.; pymatting) on the shared trimap, at most ``cap`` pixels: a larger
    photo is solved scaled down and its alpha brought back bilinearly, known regions kept."""

    cap: int = CLOSED_FORM_CAP
    name: str = "closed-form"
    needs_mask: bool = False

    def __post_init__(self):
        if not is_whole_number(self.cap) or self.cap < 1:
            raise ValueError(f"cap must be a whole number of pixels >= 1, got {self.cap!r}")

    def predict(self, image: np.ndarray, trimap: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """DataError for a photo that is not float RGB in [0, 1] with finite values (NaN ran the solver to its
        iteration limit) or a trimap that is not 2-D of the photo's size."""
        _check_closed_form_inputs(image, trimap)
        h, w = trimap.shape
        s = min(1.0, (self.cap / (h * w)) ** 0.5)
        if s == 1.0:
            return estimate_alpha_closed_form(image, trimap)
        small = (max(1, round(w * s)), max(1, round(h * s)))
        alpha = estimate_alpha_closed_form(np.clip(cv2.resize(image, small, interpolation=cv2.INTER_AREA), 0, 1),
                                           cv2.resize(trimap, small, interpolation=cv2.INTER_NEAREST_EXACT))
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha[trimap == 0], alpha[trimap == 255] = 0.0, 1.0
        return alpha


def _check_closed_form_inputs(image: np.ndarray, trimap: np.ndarray) -> None:
    if not (isinstance(image, np.ndarray) and isinstance(trimap, np.ndarray)):
        raise TypeError("closed-form matting takes a photo and a trimap as numpy arrays")
    if image.ndim != 3 or image.shape[2] != 3 or trimap.shape != image.shape[:2] or 0 in image.shape:
        raise DataError(f"closed-form matting needs a photo (H, W, 3) and a trimap (H, W) of one size, got "
                        f"{image.shape} and {trimap.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise DataError(f"closed-form matting needs a float photo in [0, 1], got {image.dtype}")
    low, high = float(image.min()), float(image.max())
    if not (np.isfinite(low) and np.isfinite(high) and 0.0 <= low and high <= 1.0):
        raise DataError(f"closed-form matting needs a float photo in [0, 1], got values from {low:g} to {high:g}")


@dataclass
class Model:
    """An artifact (or checkpoint) through :class:`runtime.matter.Matter`: the app's path."""

    matter: Matter
    name: str = ""
    needs_mask: bool = False

    @classmethod
    def open(cls, artifact: str | Path, refinement: Refinement | None = DEFAULT_REFINEMENT,
             band_refiner: str | Path | None = "shipped", label: str | None = None,
             laplacian: float | None = None) -> "Model":
        """``refinement``: the network's tiles (runtime.refine); ``band_refiner``: "shipped", a path or None;
        ``label``: what names the artifact in the method's name (default its file name; see
        :func:`artifact_labels` for several); ``laplacian``: the weight of the matting Laplacian's solve of a
        given trimap's band (runtime.matting_laplacian; the app's default, for the trimap protocol) or None."""
        matter = Matter.from_artifact(artifact, refinement=refinement, band_refiner=band_refiner, laplacian=laplacian)
        parts = ([f"refine {refinement.tiles} tiles"] if refinement else []) + (
            [matter.band_refiner.name] if matter.band_refiner is not None else []) + (
            [f"matting Laplacian {laplacian:g}"] if laplacian is not None else [])
        return cls(matter, f"{label or Path(artifact).name} ({matter.name}) " + (" + ".join(parts) or "unrefined"))

    def predict(self, image: np.ndarray, trimap: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """With a mask (the mask protocol, whose trimap is the one the mask makes) the app's path: the mask alone,
        its trimap made where Matter makes it (at the working resolution above it); else the trimap given."""
        given = None if mask is not None else trimap
        return self.matter.predict(image, trimap=given, mask=mask, with_trimap_prob=False).alpha


def artifact_labels(artifacts: list[str | Path]) -> list[str]:
    """A name for each of ``artifacts`` (different files) that tells it from the others: its file name, or where
    another has the same, the shortest end of its absolute path that no other ends with (``W1/m.pt`` beside
    ``W2/m.pt``). Methods are told apart by name: two of one name would be scored as one."""
    parts = [Path(os.path.abspath(a)).parts for a in artifacts]
    labels = []
    for i, own in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i]
        k = 1
        while k < len(own) and any(p[-k:] == own[-k:] for p in others):
            k += 1
        labels.append(str(Path(*own[-k:])))
    return labels


BASELINES = {"raw-mask": RawMask, "guided-filter": GuidedFilterMask, "closed-form": ClosedForm}
