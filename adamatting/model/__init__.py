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
from adamatting.model.layers import _make_divisible, conv_bn_act, conv_block  # noqa: F401


# --------------------------------------------------------------------------------------------- decoder parts
class GlobalConv(nn.Module):
    """Global Convolution block (Peng et al. 2017): (k×1 → 1×k) + (1×k → k×1).

    Separable form: a 1×1 projection, then each branch is a pair of depthwise k×1 / 1×k convolutions.
    """

    def __init__(self, cin: int, cout: int, k: int, separable: bool):
        super().__init__()
        p = k // 2
        if separable:
            self.proj = nn.Conv2d(cin, cout, 1, bias=False)
            c, g = cout, cout
        else:
            self.proj = nn.Identity()
            c, g = cin, 1
        self.a = nn.Sequential(nn.Conv2d(c, cout, (k, 1), padding=(p, 0), groups=g, bias=False),
                               nn.Conv2d(cout, cout, (1, k), padding=(0, p), groups=g if separable else 1, bias=False))
        self.b = nn.Sequential(nn.Conv2d(c, cout, (1, k), padding=(0, p), groups=g, bias=False),
                               nn.Conv2d(cout, cout, (k, 1), padding=(p, 0), groups=g if separable else 1, bias=False))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.proj(x)
        return self.bn(self.a(x) + self.b(x))


class SubPixelUp(nn.Module):
    """×2 upsampling by sub-pixel convolution: conv to 4·C_out, PixelShuffle(2), BN, ReLU6."""

    def __init__(self, cin: int, cout: int, separable: bool):
        super().__init__()
        if separable:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                                      nn.Conv2d(cin, 4 * cout, 1, bias=False))
        else:
            self.conv = nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(2)
        self.post = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    def forward(self, x):
        return self.post(self.shuffle(self.conv(x)))


class Decoder(nn.Module):
    """Five ×2 sub-pixel stages from stride 32 to 1; a skip (through GCN) is added where given."""

    STRIDES = (16, 8, 4, 2, 1)

    def __init__(self, cfg: ModelConfig, enc_channels: list[int], skip_strides: tuple[int, ...], out_ch: int):
        super().__init__()
        ch = list(cfg.decoder_channels)
        enc_by_stride = dict(zip((2, 4, 8, 16, 32), enc_channels))
        self.skip_strides = skip_strides
        self.ups, self.refine, self.gcn = nn.ModuleList(), nn.ModuleList(), nn.ModuleDict()
        cin = enc_by_stride[32]
        for stride, c in zip(self.STRIDES, ch):
            self.ups.append(SubPixelUp(cin, c, cfg.separable))
            if stride in skip_strides:
                self.gcn[str(stride)] = GlobalConv(enc_by_stride[stride], c, cfg.gcn_kernel, cfg.separable)
            self.refine.append(conv_block(c, c, cfg.separable))
            cin = c
        self.head = nn.Conv2d(cin, out_ch, 3, padding=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        by_stride = dict(zip((2, 4, 8, 16, 32), feats))
        x = by_stride[32]
        for stride, up, refine in zip(self.STRIDES, self.ups, self.refine):
            x = up(x)
            if stride in self.skip_strides:
                x = x + self.gcn[str(stride)](by_stride[stride])
            x = refine(x)
        return self.head(x)


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell from convolutions and elementwise ops: gates = conv([x, h]) → i, f, o, g."""

    def __init__(self, cin: int, hidden: int, separable: bool):
        super().__init__()
        c = cin + hidden
        if separable:
            self.gates = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, 4 * hidden, 1))
        else:
            self.gates = nn.Conv2d(c, 4 * hidden, 3, padding=1)
        self.hidden = hidden

    def forward(self, x, h, c):
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class PropagationUnit(nn.Module):
    """Refines the alpha logit for a fixed number of ConvLSTM steps on [image, P(trimap), alpha, trimap].

    Returns the refined alpha logit and the last hidden state (the guided upsampler's features)."""

    # [image (3), P(trimap) (3), alpha (1), the input trimap (1)]. The input trimap was added after the first
    # checkpoints: adamatting.checkpoint.upgrade_state gives theirs zero weights (the same function).
    IN_CHANNELS = 3 + 3 + 1 + 1
    TRIMAP_CHANNEL = 7

    def __init__(self, hidden: int, steps: int, separable: bool):
        super().__init__()
        if steps < 0:
            raise ValueError(f"pu_steps must be >= 0, got {steps}")
        cin = self.IN_CHANNELS
        self.embed = nn.Conv2d(cin, hidden, 1)      # state template: embed(x0) * 0
        self.cell = ConvLSTMCell(cin, hidden, separable)
        self.out = nn.Conv2d(hidden, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.steps = steps

    def forward(self, image, trimap_prob, alpha_logit, trimap):
        x = torch.cat([image, trimap_prob, torch.sigmoid(alpha_logit), trimap], dim=1)
        # Zero states shaped like a feature tensor, computed from it rather than from x.shape (no shape→int
        # ops for coremltools' tracer) and rather than torch.zeros_like: with fixed export shapes,
        # simplifiers fold zeros_like into constant initialisers, 2 × 8 × 512 × 512 floats = 16 MB of zeros
        # stored in the model file. A product with 0 is never folded.
        h = self.embed(x) * 0.0
        c = h
        for _ in range(self.steps):  # unrolled by tracing: a fixed-step graph
            h, c = self.cell(x, h, c)
            alpha_logit = alpha_logit + self.out(h)
            x = torch.cat([image, trimap_prob, torch.sigmoid(alpha_logit), trimap], dim=1)
        return alpha_logit, h


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
