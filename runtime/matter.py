"""One interface to the matting network on every runtime: a photo (+ trimap or coarse mask) → alpha.

    matter = Matter.from_artifact("weights/mobile.pt")            # or an exported .onnx with its manifest
    result = matter.predict("photo.jpg", mask="person.png", band=24)
    result.alpha        # float32 (H, W) at the photo's full resolution
    result.timings      # seconds per stage: load, trimap, preprocess, model, upsample

The stages (:mod:`runtime.preprocess`, the backend, :mod:`runtime.upsample`):

1. the photo, upright and as float RGB; the full-resolution trimap (given, from the mask, or all unknown);
2. both resized to the model (aspect kept) and reflect-padded (:class:`runtime.preprocess.Letterbox`):
   a fixed-size artifact is letterboxed to its manifest's size; an any-size checkpoint runs with its long
   side at ``long_side`` (default 512, the phone export's size; never upscaled), padded to the stride;
3. the backend runs the encoded inputs; the padding is cropped off;
4. alpha is upsampled to the photo by the fast guided filter (or bilinear), the adapted trimap's
   probabilities bilinearly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.backends import Backend, open_backend
from runtime.preprocess import ImageInput, Letterbox, load_photo, make_trimap
from runtime.timing import StageTimer
from runtime.upsample import GUIDED_EPS, GUIDED_RADIUS, METHODS, upsample_alpha

DEFAULT_LONG_SIDE = 512


@dataclass
class MattingResult:
    alpha: np.ndarray                     # float32 (H, W) in [0, 1], the photo's full resolution
    trimap_prob: np.ndarray | None        # float32 (3, H, W): P(background, unknown, foreground), or None
    timings: dict[str, float] = field(default_factory=dict)   # stage → seconds


class Matter:
    """The matting network behind one backend, with the runtime's pre- and post-processing.

    ``long_side``: working size of any-size backends (a PyTorch checkpoint): the photo is scaled down to
    it, like the phone export's 512 px; None runs at the photo's native size, which a 12-megapixel photo
    makes impractical (the propagation unit runs at full resolution). Ignored by fixed-size artifacts. ``upsample``: "guided" or
    "bilinear"; ``guide``: "rgb" or "gray" for the guided filter. ``clamp_known``: alpha is 0 / 1 exactly
    where the trimap (given or made from the mask) is background / foreground; the network decides the
    unknown band (and, with no trimap, everything).
    """

    def __init__(self, backend: Backend, *, long_side: int | None = DEFAULT_LONG_SIDE, upsample: str = "guided",
                 guide: str = "rgb", radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, clamp_known: bool = True):
        if upsample not in METHODS:
            raise ValueError(f"unknown upsampling method {upsample!r}; use one of {', '.join(METHODS)}")
        if guide not in ("rgb", "gray"):
            raise ValueError(f"unknown guide {guide!r}; use 'rgb' or 'gray'")
        if long_side is not None and long_side < backend.stride:
            raise ValueError(f"long_side must be at least the encoder stride {backend.stride}, got {long_side}")
        self.backend = backend
        self.long_side = long_side
        self.clamp_known = clamp_known
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
        return cls(open_backend(path, backend, expect, **(backend_options or {})), **options)

    @property
    def name(self) -> str:
        return f"{self.backend.name}/{self.backend.precision}"

    def letterbox(self, shape: tuple[int, int]) -> Letterbox:
        return Letterbox.fit(shape, self.backend.input_size, self.long_side, self.backend.stride)

    def predict(self, image: ImageInput, trimap: ImageInput | None = None, mask: ImageInput | None = None,
                band: int = 16, *, with_trimap_prob: bool = True) -> MattingResult:
        """Alpha of ``image`` (a path or an array, any size) at its full resolution.

        ``trimap`` (0/128/255) wins over ``mask`` (a coarse person mask; its trimap has an unknown band of
        ``band`` pixels of the full-resolution photo on each side of its edge); with neither, the model
        decides every pixel (all-unknown trimap). ``with_trimap_prob=False`` skips upsampling the adapted
        trimap (3 × H × W floats: 144 MB at 12 megapixels).
        """
        timer = StageTimer()
        with timer("load"):
            photo, _ = load_photo(image)
        with timer("trimap"):
            trimap_full = make_trimap(photo.shape[:2], trimap, mask, band)
        with timer("preprocess"):
            box = self.letterbox(photo.shape[:2])
            photo_small = box.resize_image(photo)
            inputs = box.model_inputs(photo_small, box.resize_trimap(trimap_full))
        with timer("model"):
            alpha, prob = self.backend.run(*inputs)
        with timer("upsample"):
            alpha_full = upsample_alpha(box.crop(alpha[0, 0]), photo, photo_small, **self.upsample)
            if self.clamp_known:  # the given (or mask-derived) trimap is authoritative where it is sure
                alpha_full[trimap_full == 0] = 0.0
                alpha_full[trimap_full == 255] = 1.0
            prob_full = None
            if with_trimap_prob:
                prob_small = np.ascontiguousarray(box.crop(prob[0]).transpose(1, 2, 0))
                h, w = box.full
                prob_full = cv2.resize(prob_small, (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
        return MattingResult(alpha_full, prob_full, timer.timings)
