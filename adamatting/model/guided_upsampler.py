"""Guided upsampling: the network's alpha taken back to the input resolution with the full-resolution photo.

With ``guided_scale`` s > 1 (the mobile config; not in the paper): the encoder, both decoders
and the propagation unit run on the input downscaled by s (:func:`downscale`), and a learned guided filter
(``GuidedUpsampler``) takes the fused alpha back to the input resolution as α = A·I + b with the
full-resolution image, A and b predicted at the base resolution. It puts the photo's own pixel-level detail
(hair strands, mesh wires) into alpha, which the network at full resolution, trained on a CPU, did not learn
to draw (it drew the net and the solid edge better, hair worse: weights/README.md). The mobile config runs
the network at 3/4 resolution (s = 4/3, bilinear resampling; 1.32 GMACs at 512×512); s = 2 and 4
average-pool (0.58 GMACs at s = 2; the network at s = 1, without the upsampler: 2.19). The ``paper`` config
keeps guided_scale = 1, as published.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class GuidedUpsampler(nn.Module):
    """A learned guided filter (Wu et al., CVPR 2018; the refiner of Robust Video Matting) from the network's
    resolution to the input's.

    Closed-form matting's prior, made local and learned: in a small window alpha is an affine function of
    the colour, α ≈ A·I + b. At the base (network) resolution the box-filtered statistics of the image and
    the base alpha — cov(I, α), var(I) per channel — and the network's own features give A (three
    coefficients, 1×1 convolutions); b = mean(α) − A·mean(I) makes the window's mean exact. A and b are
    smooth, so they are upsampled bilinearly, and the full-resolution alpha is A·I + b with the
    full-resolution image: strands and mesh wires thinner than a base pixel come from the photo itself.
    The last convolution starts at zero, so an untrained upsampler returns the box-filtered base alpha.

    Exported as AveragePool, Resize (bilinear), 1×1 Conv, Mul, ReduceSum and Clip — every backend runs these.
    """

    def __init__(self, feat_ch: int, hidden: int, scale: float):
        super().__init__()
        self.scale = scale
        self.conv = nn.Sequential(
            nn.Conv2d(6 + feat_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 3, 1))
        nn.init.zeros_(self.conv[-1].weight)
        nn.init.zeros_(self.conv[-1].bias)

    @staticmethod
    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    def forward(self, image: torch.Tensor, image_base: torch.Tensor, alpha_base: torch.Tensor,
                feats: torch.Tensor) -> torch.Tensor:
        mean_i, mean_a = self.box(image_base), self.box(alpha_base)
        cov = self.box(image_base * alpha_base) - mean_i * mean_a
        var = self.box(image_base * image_base) - mean_i * mean_i
        a = self.conv(torch.cat([cov, var, feats], dim=1))
        b = mean_a - (a * mean_i).sum(dim=1, keepdim=True)
        # One resampling of [A, b] (4 channels), not two: exactly the same values, and onnxruntime's blocked
        # float layout would otherwise pad A's 3 channels to 16 at the full resolution (a 512x512 input: a
        # resize and a layout change of 16 MB, ~10 % of the graph's time).
        ab = F.interpolate(torch.cat([a, b], dim=1), scale_factor=self.scale, mode="bilinear", align_corners=False)
        return torch.clamp((ab[:, :3] * image).sum(dim=1, keepdim=True) + ab[:, 3:], 0.0, 1.0)


def downscale(x: torch.Tensor, s: float) -> torch.Tensor:
    """The input at the network's resolution: average-pooled by an integer s (each base pixel the mean of its
    s×s block); resized bilinearly for s = 4/3 — an ONNX Resize every backend runs, where pooling by 4/3
    (adaptive pooling) does not export; on the held-back photos both score about the same (weights/README.md). Output
    sides are exact: the input is a multiple of cfg.stride."""
    if s == 1:
        return x
    if float(s).is_integer():
        return F.avg_pool2d(x, int(s))
    return F.interpolate(x, scale_factor=1 / s, mode="bilinear", align_corners=False)


class InputScales(nn.Module):
    """The inputs at the resolutions the network reads them: the encoder's input (image and trimap
    concatenated, downscaled by ``encoder_scale``) and the image and trimap at the base resolution
    (downscaled by ``guided_scale``; :func:`downscale`). No parameters: a module so that the precision policy
    can keep the full-resolution inputs in float (export/precision.toml)."""

    def __init__(self, guided_scale: float, encoder_scale: float):
        super().__init__()
        self.guided_scale, self.encoder_scale = guided_scale, encoder_scale

    def forward(self, image: torch.Tensor, trimap: torch.Tensor):
        s, e = self.guided_scale, self.encoder_scale
        image_base, trimap_base = downscale(image, s), downscale(trimap, s)
        enc_in = (torch.cat([image_base, trimap_base], dim=1) if e == s
                  else torch.cat([downscale(image, e), downscale(trimap, e)], dim=1))
        return enc_in, image_base, trimap_base


class TrimapOutputs(nn.Module):
    """The adapted trimap at the input resolution: its logits and probabilities, computed at the base
    resolution, upsampled bilinearly by ``guided_scale`` (nothing to do at 1). The probabilities are upsampled,
    not a softmax taken at full resolution: a bilinear mix of distributions is one, and a channel softmax
    over H×W pixels was a fifth of the exported graph's time (onnxruntime). No parameters: a module so that
    the precision policy can keep this full-resolution output in float (export/precision.toml)."""

    def __init__(self, guided_scale: float):
        super().__init__()
        self.guided_scale = guided_scale

    def forward(self, logits: torch.Tensor, prob: torch.Tensor):
        if self.guided_scale == 1:
            return logits, prob
        up = lambda t: F.interpolate(t, scale_factor=self.guided_scale, mode="bilinear", align_corners=False)  # noqa: E731
        return up(logits), up(prob)
