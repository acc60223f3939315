"""Fold the BatchNorms that exporters cannot fuse on their own into the convolutions before them.

Exporters fold Conv→BN pairs, but two of ours sit behind other ops:
- sub-pixel upsampling: Conv(4C) → PixelShuffle(2) → BN(C). Output channel c of the shuffle comes from
  conv channels 4c … 4c+3, so BN channel c folds into those four filters;
- Global Convolution: (branch a + branch b) → BN. BN is affine, so its scale folds into the last conv of
  both branches and its shift becomes the bias of one of them.
The folded model computes the same function (eval mode) with no BatchNormalization left in the graph,
which every backend (and every INT8 quantizer) handles better.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from adamatting.model import AdaMatting, GlobalConv, SubPixelUp


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _scale_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor | None) -> nn.Conv2d:
    """A copy of ``conv`` computing scale·conv(x) + shift per output channel."""
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    new.weight.data = conv.weight.data * scale.view(-1, 1, 1, 1)
    new.bias.data = bias.data * scale + (shift if shift is not None else 0.0)
    return new


@torch.no_grad()
def fold_batchnorms(model: AdaMatting) -> AdaMatting:
    """An eval-mode copy of ``model`` with the sub-pixel and GCN BatchNorms folded away."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, SubPixelUp):
            bn = module.post[0]
            scale, shift = _bn_affine(bn)
            r2 = module.shuffle.upscale_factor ** 2
            last = module.conv[-1] if isinstance(module.conv, nn.Sequential) else module.conv
            folded = _scale_conv(last, scale.repeat_interleave(r2), shift.repeat_interleave(r2))
            if isinstance(module.conv, nn.Sequential):
                module.conv[-1] = folded
            else:
                module.conv = folded
            module.post[0] = nn.Identity()
        elif isinstance(module, GlobalConv):
            scale, shift = _bn_affine(module.bn)
            module.a[-1] = _scale_conv(module.a[-1], scale, shift)
            module.b[-1] = _scale_conv(module.b[-1], scale, None)
            module.bn = nn.Identity()
    return model
