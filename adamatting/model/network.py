"""The network: :class:`AdaMatting` composes the encoder, the trimap and alpha decoders, the propagation unit
and (guided_scale > 1) the guided upsampler, and fuses the adapted trimap with the unit's alpha as
alpha = P(fg) + P(unknown) · alpha_pu (inputs, outputs and why: the ``adamatting.model`` docstring).
Also :func:`build_model` and :func:`check_input`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from adamatting.config import ENCODER_STRIDE, ModelConfig
from adamatting.model.decoder import Decoder
from adamatting.model.encoders import build_encoder
from adamatting.model.guided_upsampler import GuidedUpsampler, InputScales, TrimapOutputs
from adamatting.model.propagation import PropagationUnit


class AdaMatting(nn.Module):
    """With ``cfg.guided_scale`` s > 1 the network runs on the input downscaled by s (:func:`downscale`) and
    the guided upsampler returns alpha at the input resolution; the adapted trimap is upsampled bilinearly
    (:class:`TrimapOutputs`).
    The auxiliary outputs ``alpha_pu`` and ``alpha_decoder`` stay at the network's resolution."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # The encoder's input is at the network's (base) resolution times the decoders' output stride: a
        # "fused" config's stride-4 stem sees the full-resolution input and its decoders end at the base one.
        self.inputs = InputScales(cfg.guided_scale, cfg.encoder_scale)
        self.encoder = build_encoder(cfg)
        ch = self.encoder.channels
        self.trimap_decoder = Decoder(cfg, ch, skip_strides=(16, 8), out_ch=3)
        self.alpha_decoder = Decoder(cfg, ch, skip_strides=(8, 4, 2), out_ch=1)
        self.propagation = PropagationUnit(cfg.pu_hidden, cfg.pu_steps, cfg.pu_is_separable)
        self.refiner = (GuidedUpsampler(cfg.pu_hidden + 3, cfg.refiner_hidden, cfg.guided_scale)
                        if cfg.guided_scale > 1 else None)
        self.trimap_outputs = TrimapOutputs(cfg.guided_scale)

    def forward(self, image: torch.Tensor, trimap: torch.Tensor) -> dict[str, torch.Tensor]:
        enc_in, image_base, trimap_base = self.inputs(image, trimap)
        feats = self.encoder(enc_in)
        trimap_logits = self.trimap_decoder(feats)
        prob = torch.softmax(trimap_logits, dim=1)
        alpha_logit0 = self.alpha_decoder(feats)
        alpha_logit, hidden = self.propagation(image_base, prob, alpha_logit0, trimap_base)
        alpha_pu = torch.sigmoid(alpha_logit)
        alpha = prob[:, 2:3] + prob[:, 1:2] * alpha_pu
        if self.refiner is not None:
            alpha = self.refiner(image, image_base, alpha, torch.cat([hidden, prob], dim=1))
        trimap_logits, prob = self.trimap_outputs(trimap_logits, prob)
        return {"alpha": alpha, "trimap_logits": trimap_logits, "trimap_prob": prob, "alpha_pu": alpha_pu,
                "alpha_decoder": torch.sigmoid(alpha_logit0)}


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
