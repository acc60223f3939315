"""The model's input encoding, in one place (see adamatting.model.INPUT_ENCODING)."""

from __future__ import annotations

import numpy as np

INPUT_ENCODING = {
    "image": "RGB, NCHW float32, 2*I-1 for I in [0,1] (scale 2/255, bias -1 on 8-bit pixels)",
    "trimap": "NCHW float32, one channel: 0 = background, 0.5 = unknown, 1 = foreground; all 0.5 = no trimap",
}
TRIMAP_VALUES = {"background": 0.0, "unknown": 0.5, "foreground": 1.0}


_TRIMAP_CODES = np.full(256, TRIMAP_VALUES["unknown"], np.float32)    # every 8-bit value's code: 0 and 255 known
_TRIMAP_CODES[0], _TRIMAP_CODES[255] = TRIMAP_VALUES["background"], TRIMAP_VALUES["foreground"]


def encode_inputs(image01: np.ndarray, trimap_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HWC [0,1] image + 0/128/255 trimap → (3,H,W) 2I−1 and (1,H,W) {0, .5, 1}: the model's encoding (one pass
    each: the image scaled into its planes, an 8-bit trimap through a look-up table)."""
    image01 = np.asarray(image01)
    img = np.empty((3, *image01.shape[:2]), np.float32)
    np.multiply(image01.transpose(2, 0, 1), np.float32(2.0), out=img, casting="unsafe")
    img -= np.float32(1.0)
    trimap = np.asarray(trimap_u8)
    if trimap.dtype == np.uint8:
        return img, _TRIMAP_CODES[trimap][None]
    codes = np.select([trimap == 0, trimap == 255], [TRIMAP_VALUES["background"], TRIMAP_VALUES["foreground"]],
                      default=TRIMAP_VALUES["unknown"])
    return img, codes.astype(np.float32)[None]
