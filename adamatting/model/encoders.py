"""The encoders: a MobileNetV2-style one (the phone default), a ResNet-50-like one (as published) and a
fused-MBConv one for int8 and phone NPUs (``FusedEncoder``).

Both take the image and the trimap concatenated (4 channels) and return five feature maps, at strides
2, 4, 8, 16 and 32 (``FEATURE_STRIDES``). The decoders use them as skips: shallow = 2 and 4, middle = 8,
deep = 16, and stride 32 as the start of each decoder.

Another backbone is one class implementing :class:`Encoder` and one entry in ``ENCODERS``.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn as nn

from adamatting.config import ModelConfig
from adamatting.model.layers import _make_divisible, conv_bn_act

FEATURE_STRIDES = (2, 4, 8, 16, 32)


class Encoder(Protocol):
    """What the network needs from an encoder (an ``nn.Module`` built as ``cls(cfg, in_ch=4)``).

    ``forward(x)`` takes (N, in_ch, H, W) and returns a list of five features, one per stride in
    ``FEATURE_STRIDES`` (2, 4, 8, 16, 32), the stride-32 one last; H and W are multiples of 32.
    ``channels`` lists their channel counts, in the same order. An encoder whose stem starts at stride 4
    returns None (0 channels) at stride 2; its configs' decoders must stop at stride 4 or coarser.
    """

    channels: list[int]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]: ...


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_act(cin, hidden, 1))
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden), conv_bn_act(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class MobileEncoder(nn.Module):
    """MobileNetV2-style encoder on 4 input channels; returns features at strides 2, 4, 8, 16, 32."""

    def __init__(self, cfg: ModelConfig, in_ch: int = 4):
        super().__init__()
        w = cfg.width_mult
        cin = _make_divisible(32 * w)
        self.stem = conv_bn_act(in_ch, cin, 3, 2)
        stages: list[list[nn.Module]] = [[] for _ in range(5)]  # index = log2(stride) - 1
        stride_log = 1
        for expand, c, n, s in cfg.mobile_stages:
            cout = _make_divisible(c * w)
            for i in range(n):
                st = s if i == 0 else 1
                if st == 2:
                    stride_log += 1
                stages[stride_log - 1].append(InvertedResidual(cin, cout, st, expand))
                cin = cout
        if stride_log != 5:
            raise ValueError(f"mobile_stages must reach stride 32, reach {2 ** stride_log}")
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        self.channels = [self._out_ch(s, prev) for s, prev in zip(stages, [_make_divisible(32 * w)] + [0] * 4)]

    @staticmethod
    def _out_ch(stage: list[nn.Module], prev: int) -> int:
        return stage[-1].block[-1][0].out_channels if stage else prev

    def forward(self, x):
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * 4
        self.block = nn.Sequential(conv_bn_act(cin, width, 1), conv_bn_act(width, width, 3, stride),
                                   conv_bn_act(width, cout, 1, act=False))
        self.short = None if (stride == 1 and cin == cout) else conv_bn_act(cin, cout, 1, stride, act=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.block(x) + (x if self.short is None else self.short(x)))


class ResNetEncoder(nn.Module):
    """ResNet-50-like bottleneck encoder (as published); features at strides 2, 4, 8, 16, 32."""

    def __init__(self, cfg: ModelConfig, in_ch: int = 4):
        super().__init__()
        w = cfg.resnet_width
        self.stem = conv_bn_act(in_ch, w, 7, 2)
        self.pool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], w
        for i, n in enumerate(cfg.resnet_layers):
            width = w * 2 ** i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * 4
            layers.append(nn.Sequential(*blocks))
        self.layers = nn.ModuleList(layers)
        self.channels = [w] + [w * 2 ** i * 4 for i in range(4)]

    def forward(self, x):
        f2 = self.stem(x)
        x = self.pool(f2)
        feats = [f2]
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class FusedMBConv(nn.Module):
    """Fused-MBConv (EfficientNetV2): a dense 3×3 expansion (stride s), then a 1×1 projection; at expansion 1
    a single dense 3×3. Residual where the shape is kept. Dense convolutions: what int8 kernels and NPUs run
    fastest, where depthwise ones on few channels are no faster than float."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        if expand == 1:
            self.block = conv_bn_act(cin, cout, 3, stride)
        else:
            self.block = nn.Sequential(conv_bn_act(cin, cin * expand, 3, stride),
                                       conv_bn_act(cin * expand, cout, 1, act=False))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.residual else self.block(x)


class FusedEncoder(nn.Module):
    """The int8/NPU encoder: a 4×4 stride-4 patch stem (no full-resolution feature map at all), then
    ``cfg.fused_stages`` of fused-MBConv ("fused") or inverted-residual ("ir") blocks to stride 32. Returns
    None at stride 2 (see :class:`Encoder`)."""

    BLOCKS = {"fused": FusedMBConv, "ir": InvertedResidual}

    def __init__(self, cfg: ModelConfig, in_ch: int = 4):
        super().__init__()
        cin = cfg.stem_channels
        self.stem = conv_bn_act(in_ch, cin, 4, 4)
        self.stem[0].padding = (0, 0)
        stages: list[list[nn.Module]] = [[] for _ in range(4)]   # strides 4, 8, 16, 32
        channels, stride_log = [cin, 0, 0, 0], 2
        for kind, expand, c, n, s in cfg.fused_stages:
            if kind not in self.BLOCKS:
                raise ValueError(f"unknown fused_stages block kind {kind!r}; use one of {', '.join(self.BLOCKS)}")
            for i in range(n):
                st = s if i == 0 else 1
                stride_log += st == 2
                if stride_log > 5:
                    raise ValueError("fused_stages go past stride 32")
                stages[stride_log - 2].append(self.BLOCKS[kind](cin, c, st, expand))
                cin = channels[stride_log - 2] = c
        if stride_log != 5:
            raise ValueError(f"fused_stages must reach stride 32, reach {2 ** stride_log}")
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in stages)
        self.channels = [0] + channels

    def forward(self, x):
        feats: list = [None]
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


# cfg.encoder → the class that implements Encoder.
ENCODERS: dict[str, type[nn.Module]] = {"mobile": MobileEncoder, "resnet": ResNetEncoder, "fused": FusedEncoder}


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """The encoder ``cfg.encoder`` names (see :class:`Encoder`); ValueError for an unknown name."""
    if cfg.encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {cfg.encoder!r}")
    return ENCODERS[cfg.encoder](cfg)
