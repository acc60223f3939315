"""Building blocks shared by the encoders and the decoders: conv + BN + ReLU6 and its separable form."""

from __future__ import annotations

import torch.nn as nn


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


def conv_block(cin: int, cout: int, separable: bool, k: int = 3) -> nn.Sequential:
    """3×3 conv + BN + ReLU6, or its depthwise-separable form."""
    if separable:
        return nn.Sequential(conv_bn_act(cin, cin, k, groups=cin), conv_bn_act(cin, cout, 1))
    return conv_bn_act(cin, cout, k)
