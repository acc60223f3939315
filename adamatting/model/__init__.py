"""AdaMatting: one encoder, a trimap decoder and an alpha decoder, and a ConvLSTM propagation unit.

Inputs (both NCHW float32, fixed by ``INPUT_ENCODING``):
- ``image``: RGB normalised as 2·I − 1 for I in [0, 1] (one scale and one bias for all channels, so a
  CoreML ``ImageType`` does it with scale = 2/255, bias = −1);
- ``trimap``: one channel, 0 = background, 0.5 = unknown, 1 = foreground. A trimap that is 0.5
  everywhere means "no trimap": the network then decides every pixel itself.

Outputs: ``trimap_logits`` (N, 3, H, W) over (bg, unknown, fg) — the adapted trimap — its probabilities
``trimap_prob``, and ``alpha`` (N, 1, H, W) in [0, 1]. The final alpha fuses the adapted trimap with the
propagation unit's alpha:

    alpha = P(fg) + P(unknown) · alpha_pu

so where the adapted trimap is confidently fg (P(fg) → 1) alpha is 1, confidently bg alpha is 0, and
alpha_pu only matters where the network itself is unsure. The fusion is differentiable, so the alpha
loss also trains the trimap decoder.

The parts, one file each (every name is re-exported here: import them from ``adamatting.model``):

- ``layers``: the conv + BN + ReLU6 blocks the encoders and decoders share;
- ``encoders``: the :class:`Encoder` contract (features at strides 2, 4, 8, 16, 32 and their channel
  counts), ``MobileEncoder`` (MobileNetV2-style, the phone default), ``ResNetEncoder`` (as published),
  ``FusedEncoder`` (stride-4 patch stem, fused-MBConv stages: ``mobile-int8``) and ``build_encoder``, which
  picks one by ``cfg.encoder``;
- ``decoder``: the trimap decoder (skips deep + middle) and the alpha decoder (middle + shallow), each skip
  through a Global Convolution block, upsampling by sub-pixel convolution;
- ``propagation``: the ConvLSTM propagation unit, ``pu_steps`` fixed steps that refine the alpha logit;
- ``guided_upsampler``: with ``guided_scale`` s > 1 the network runs on the input downscaled by s
  (``InputScales``), a learned guided filter takes its alpha back to the input resolution with the
  full-resolution photo and ``TrimapOutputs`` the adapted trimap;
- ``network``: ``AdaMatting``, which composes the parts, ``build_model`` and ``check_input``;
- ``wrapper``: ``ExportWrapper``, the two-output inference graph the runtime and every exporter run.
"""

from adamatting.config import ENCODER_STRIDE, ModelConfig
from adamatting.model.decoder import Decoder, GlobalConv, SubPixelUp
from adamatting.model.encoders import (
                                       ENCODERS,
                                       FEATURE_STRIDES,
                                       Bottleneck,
                                       Encoder,
                                       FusedEncoder,
                                       FusedMBConv,
                                       InvertedResidual,
                                       MobileEncoder,
                                       ResNetEncoder,
                                       build_encoder,
)
from adamatting.model.guided_upsampler import GuidedUpsampler, InputScales, TrimapOutputs, downscale
from adamatting.model.layers import _make_divisible, conv_block, conv_bn_act  # noqa: F401  (re-exported)
from adamatting.model.network import AdaMatting, build_model, check_input
from adamatting.model.propagation import ConvLSTMCell, PropagationUnit
from adamatting.model.wrapper import ExportWrapper
from common.encoding import INPUT_ENCODING, TRIMAP_VALUES

__all__ = [
    "AdaMatting", "ExportWrapper", "build_model", "check_input",
    "Encoder", "ENCODERS", "FEATURE_STRIDES", "build_encoder", "MobileEncoder", "InvertedResidual",
    "ResNetEncoder", "Bottleneck", "FusedEncoder", "FusedMBConv",
    "Decoder", "GlobalConv", "SubPixelUp",
    "ConvLSTMCell", "PropagationUnit",
    "GuidedUpsampler", "InputScales", "TrimapOutputs", "downscale",
    "conv_bn_act", "conv_block",
    "ENCODER_STRIDE", "INPUT_ENCODING", "TRIMAP_VALUES", "ModelConfig",
]
