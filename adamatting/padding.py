"""Pad arbitrary images to a multiple of the encoder stride (reflect) and crop the result back."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adamatting.config import ENCODER_STRIDE


def pad_to_stride(x: torch.Tensor, stride: int = ENCODER_STRIDE, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad the last two dims of an NCHW tensor up to multiples of ``stride``; returns (padded, pads).

    Reflect padding needs each side larger than the pad; smaller inputs raise a clear ValueError.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)  # left, right, top, bottom
    if ph == 0 and pw == 0:
        return x, pads
    if mode == "reflect" and (max(pads[0], pads[1]) >= w or max(pads[2], pads[3]) >= h):
        raise ValueError(f"input {h}x{w} is too small to reflect-pad to a multiple of {stride}")
    return F.pad(x, pads, mode=mode), pads


def crop_padding(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]
