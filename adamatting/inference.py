"""PyTorch inference at native resolution: encode, reflect-pad to the stride, run, crop back."""

from __future__ import annotations

import numpy as np
import torch

from adamatting.model import AdaMatting
from adamatting.padding import crop_padding, pad_to_stride
from common.encoding import encode_inputs


@torch.no_grad()
def predict_alpha(model: AdaMatting, image01: np.ndarray, trimap_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alpha (H, W) float32 and the adapted trimap's probabilities (3, H, W) for one image of any size."""
    if image01.ndim != 3 or image01.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image01.shape}")
    if trimap_u8.shape != image01.shape[:2]:
        raise ValueError(f"trimap {trimap_u8.shape} does not match image {image01.shape[:2]}")
    if not np.isfinite(image01).all():
        raise ValueError("image contains NaN or inf")
    img, tri = encode_inputs(image01, trimap_u8)
    device = next(model.parameters()).device
    x = torch.from_numpy(np.concatenate([img, tri])[None]).to(device)
    x, pads = pad_to_stride(x, model.cfg.stride)
    out = model(x[:, :3], x[:, 3:])
    alpha = crop_padding(out["alpha"], pads)[0, 0].float().cpu().numpy()
    prob = crop_padding(out["trimap_prob"], pads)[0].float().cpu().numpy()
    return alpha, prob
