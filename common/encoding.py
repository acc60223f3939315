"""The model's input encoding, in one place (see adamatting.model.INPUT_ENCODING)."""

from __future__ import annotations

import numpy as np

INPUT_ENCODING = {
    "image": "RGB, NCHW float32, 2*I-1 for I in [0,1] (scale 2/255, bias -1 on 8-bit pixels)",
    "trimap": "NCHW float32, one channel: 0 = background, 0.5 = unknown, 1 = foreground; all 0.5 = no trimap",
}
TRIMAP_VALUES = {"background": 0.0, "unknown": 0.5, "foreground": 1.0}


def encode_inputs(image01: np.ndarray, trimap_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HWC [0,1] image + 0/128/255 trimap → (3,H,W) 2I−1 and (1,H,W) {0, .5, 1}: the model's encoding."""
    img = np.transpose(image01, (2, 0, 1)).astype(np.float32) * 2.0 - 1.0
    tri = np.select([trimap_u8 == 0, trimap_u8 == 255], [0.0, 1.0], default=0.5).astype(np.float32)[None]
    return img, tri
