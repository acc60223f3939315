"""AdaMatting: one encoder, a trimap decoder and an alpha decoder, and a ConvLSTM propagation unit.

Inputs (both NCHW float32, fixed by ``INPUT_ENCODING``):
- ``image``: RGB normalised as 2·I − 1 for I in [0, 1] (one scale and one bias for all channels, so a
  CoreML ``ImageType`` does it with scale = 2/255, bias = −1);
- ``trimap``: one channel, 0 = background, 0.5 = unknown, 1 = foreground. A trimap that is 0.5
  everywhere means "no trimap": the network then decides every pixel itself.

Outputs: ``trimap_logits`` (N, 3, H, W) over (bg, unknown, fg) — the adapted trimap — its probabilities
``trimap_prob``, and ``alpha``
(N, 1, H, W) in [0, 1]. The final alpha fuses the adapted trimap with the propagation unit's alpha:

    alpha = P(fg) + P(unknown) · alpha_pu

so where the adapted trimap is confidently fg (P(fg) → 1) alpha is 1, confidently bg alpha is 0, and
alpha_pu only matters where the network itself is unsure. The fusion is differentiable, so the alpha
loss also trains the trimap decoder.

Skips (strides): shallow = 2 and 4, middle = 8, deep = 16; the trimap decoder takes deep + middle, the
alpha decoder middle + shallow, each through a Global Convolution block; both upsample by sub-pixel
convolution (conv to 4·C, PixelShuffle(2)).

Propagation unit: a ConvLSTM cell (convolutions and elementwise ops only) run for ``pu_steps`` fixed
steps on [image, softmax(adapted trimap), alpha_t, input trimap]: 8 channels, so with 8 hidden channels
the gate convolution sees 16 (onnxruntime's int8 depthwise kernel ran 15 channels 3× slower than 16).
Its hidden and cell states start at zero, made from a feature tensor (``embed(x) * 0``), never from ``x.shape``: traced graphs stay free of shape arithmetic,
and exported files hold no folded zero constants (see PropagationUnit.forward). Each step adds a correction to the alpha logit, so with the zero-initialised head the unit
starts as the identity. Budget: at full resolution a plain 3×3 ConvLSTM would cost more than the whole
mobile budget, so the mobile config uses depthwise-separable gate convolutions (dw 3×3 + pw) and 8
hidden channels: ~0.16 GMAC per step at 512×512.

Guided upsampling (``guided_scale`` s > 1, the mobile config; not in the paper): the encoder, both decoders
and the propagation unit run on the input downscaled by s, and a learned guided filter (``GuidedUpsampler``)
takes the fused alpha back to the input resolution as α = A·I + b with the full-resolution image, A and b
predicted at the base resolution. It puts the photo's own pixel-level detail (hair strands, mesh wires) into
alpha, which the network at full resolution, trained on a CPU, did not learn to draw (it drew the net and
the solid edge better, hair worse: weights/README.md). The mobile config runs the network at 3/4 resolution
(s = 4/3, bilinear resampling; 1.32 GMACs at 512×512); s = 2 and 4 average-pool (0.58 GMACs at s = 2;
the network at s = 1, without the upsampler: 2.19). The ``paper`` config keeps guided_scale = 1, as published.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from adamatting.config import ENCODER_STRIDE, ModelConfig
from adamatting.encoding import INPUT_ENCODING, TRIMAP_VALUES  # noqa: F401  (re-exported)
from adamatting.model.encoders import (ENCODERS, FEATURE_STRIDES, Bottleneck, Encoder,  # noqa: F401
                                       InvertedResidual, MobileEncoder, ResNetEncoder, build_encoder)
from adamatting.model.decoder import Decoder, GlobalConv, SubPixelUp  # noqa: F401
from adamatting.model.guided_upsampler import GuidedUpsampler, downscale  # noqa: F401
from adamatting.model.layers import _make_divisible, conv_bn_act, conv_block  # noqa: F401
from adamatting.model.propagation import ConvLSTMCell, PropagationUnit  # noqa: F401


class AdaMatting(nn.Module):
    """With ``cfg.guided_scale`` s > 1 the network runs on the input downscaled by s (:func:`downscale`) and
    the guided upsampler returns alpha at the input resolution; the trimap logits are upsampled bilinearly.
    The auxiliary outputs ``alpha_pu`` and ``alpha_decoder`` stay at the network's resolution."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg)
        ch = self.encoder.channels
        self.trimap_decoder = Decoder(cfg, ch, skip_strides=(16, 8), out_ch=3)
        self.alpha_decoder = Decoder(cfg, ch, skip_strides=(8, 4, 2), out_ch=1)
        self.propagation = PropagationUnit(cfg.pu_hidden, cfg.pu_steps, cfg.separable)
        self.refiner = (GuidedUpsampler(cfg.pu_hidden + 3, cfg.refiner_hidden, cfg.guided_scale)
                        if cfg.guided_scale > 1 else None)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.cfg.guided_scale
        image_base, trimap_base = downscale(image, s), downscale(trimap, s)
        feats = self.encoder(torch.cat([image_base, trimap_base], dim=1))
        trimap_logits = self.trimap_decoder(feats)
        prob = torch.softmax(trimap_logits, dim=1)
        alpha_logit0 = self.alpha_decoder(feats)
        alpha_logit, hidden = self.propagation(image_base, prob, alpha_logit0, trimap_base)
        alpha_pu = torch.sigmoid(alpha_logit)
        alpha = prob[:, 2:3] + prob[:, 1:2] * alpha_pu
        if self.refiner is not None:
            alpha = self.refiner(image, image_base, alpha, torch.cat([hidden, prob], dim=1))
            up = lambda t: F.interpolate(t, scale_factor=s, mode="bilinear", align_corners=False)  # noqa: E731
            # Probabilities upsampled, not a softmax at full resolution: a bilinear mix of distributions is one,
            # and a channel softmax over H×W pixels was a fifth of the exported graph's time (onnxruntime).
            trimap_logits, prob = up(trimap_logits), up(prob)
        return {"alpha": alpha, "trimap_logits": trimap_logits, "trimap_prob": prob, "alpha_pu": alpha_pu,
                "alpha_decoder": torch.sigmoid(alpha_logit0)}


class ExportWrapper(nn.Module):
    """Two named outputs for export: alpha (N,1,H,W) and the adapted trimap's probabilities (N,3,H,W)."""

    def __init__(self, model: AdaMatting):
        super().__init__()
        self.model = model

    def forward(self, image, trimap):
        out = self.model(image, trimap)
        return out["alpha"], out["trimap_prob"]


def build_model(cfg: ModelConfig) -> AdaMatting:
    return AdaMatting(cfg)


def check_input(image: torch.Tensor, trimap: torch.Tensor, stride: int = ENCODER_STRIDE) -> None:
    """Raise ValueError with a clear message for inputs the network cannot take."""
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (N, 3, H, W) RGB, got shape {tuple(image.shape)}")
    if trimap.ndim != 4 or trimap.shape[1] != 1:
        raise ValueError(f"trimap must be (N, 1, H, W), got shape {tuple(trimap.shape)}")
    if image.shape[0] != trimap.shape[0] or image.shape[2:] != trimap.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} and trimap {tuple(trimap.shape)} differ in batch or size")
    h, w = image.shape[2:]
    if h % stride or w % stride:
        raise ValueError(f"input {h}x{w} is not a multiple of the encoder stride {stride}; "
                         f"use adamatting.padding.pad_to_stride")
