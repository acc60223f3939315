"""The two decoders: the trimap decoder and the alpha decoder, built from one class.

Skips (strides): shallow = 2 and 4, middle = 8, deep = 16; the trimap decoder takes deep + middle, the
alpha decoder middle + shallow, each through a Global Convolution block; both upsample by sub-pixel
convolution (conv to 4·C, PixelShuffle(2)).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from adamatting.config import ModelConfig
from adamatting.model.encoders import FEATURE_STRIDES
from adamatting.model.layers import conv_block


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

    def __init__(self, cin: int, cout: int, separable: bool, kernel: int = 3):
        super().__init__()
        if kernel == 1:   # exported as the identical 2×2 stride-2 ConvTranspose (export.onnx_graph)
            self.conv = nn.Conv2d(cin, 4 * cout, 1, bias=False)
        elif separable:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                                      nn.Conv2d(cin, 4 * cout, 1, bias=False))
        else:
            self.conv = nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=False)
        self.shuffle = nn.PixelShuffle(2)
        self.post = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    def forward(self, x):
        return self.post(self.shuffle(self.conv(x)))


class Decoder(nn.Module):
    """×2 sub-pixel stages from stride 32 to 1 (or to 2 or 4: one per ``cfg.decoder_channels``); a skip
    (through GCN) is added where given and reached."""

    STRIDES = (16, 8, 4, 2, 1)

    def __init__(self, cfg: ModelConfig, enc_channels: list[int], skip_strides: tuple[int, ...], out_ch: int):
        super().__init__()
        ch = list(cfg.decoder_channels)
        enc_by_stride = dict(zip(FEATURE_STRIDES, enc_channels))
        self.skip_strides = skip_strides
        self.ups, self.refine, self.gcn = nn.ModuleList(), nn.ModuleList(), nn.ModuleDict()
        cin = enc_by_stride[32]
        for stride, c in zip(self.STRIDES, ch):
            self.ups.append(SubPixelUp(cin, c, cfg.separable, cfg.subpixel_kernel))
            if stride in skip_strides:
                self.gcn[str(stride)] = GlobalConv(enc_by_stride[stride], c, cfg.gcn_kernel, cfg.gcn_is_separable)
            self.refine.append(conv_block(c, c, cfg.separable))
            cin = c
        self.head = nn.Conv2d(cin, out_ch, 3, padding=1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        by_stride = dict(zip(FEATURE_STRIDES, feats))
        x = by_stride[32]
        for stride, up, refine in zip(self.STRIDES, self.ups, self.refine):
            x = up(x)
            if stride in self.skip_strides:
                x = x + self.gcn[str(stride)](by_stride[stride])
            x = refine(x)
        return self.head(x)
