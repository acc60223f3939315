"""The band refiner: a small full-resolution network that corrects the matte inside the mask's unknown band,
starting from a guided filter of the mask so that its worst case is that filter, not a hallucination.

Inputs, all (N, C, H, W) float32 at the photo's resolution (or the refiner's working resolution):
- ``image``: RGB as 2·I − 1 (``common.encoding``);
- ``alpha``: the matting network's alpha, brought to this resolution;
- ``prior``: the coarse mask refined by a guided filter with the photo as guide (``runtime.mask_prior``);
- ``mask``: the coarse mask, bilinearly upsampled (0..1).

Output: ``prior + g · (alpha − prior) + r``, clipped to [0, 1]: ``g`` in [0, 1] says how far to trust the
network against the filter, ``r`` in [−½, ½] is a correction of both. The last layer starts at zero, so an
untrained refiner returns the mean of the two. Dilated 3×3 convolutions (1, 2, 4, 8, 1) give a 33-pixel
receptive field: enough to see whether a band region is see-through (a net, leaves, hair with gaps), where
the network paints solid and the filter follows the photo. About 8 k parameters at 16 channels: it runs
everywhere as a plain ONNX graph (the runtime runs it with onnxruntime, or OpenCV's DNN module).
"""

from __future__ import annotations

import torch
import torch.nn as nn

DILATIONS = (1, 2, 4, 8, 1)
INPUTS = ("image", "alpha", "prior", "mask")
IN_CHANNELS = 3 + 1 + 1 + 1 + 1   # image, alpha, prior, alpha − prior, mask
RECEPTIVE_RADIUS = sum(DILATIONS)  # pixels each side an output depends on


class BandRefiner(nn.Module):
    def __init__(self, channels: int = 16):
        super().__init__()
        self.channels = channels
        layers: list[nn.Module] = []
        cin = IN_CHANNELS
        for d in DILATIONS:
            layers += [nn.Conv2d(cin, channels, 3, padding=d, dilation=d), nn.ReLU()]
            cin = channels
        layers.append(nn.Conv2d(channels, 2, 1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, alpha: torch.Tensor, prior: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        h = self.body(torch.cat([image, alpha, prior, alpha - prior, mask], dim=1))
        gate = torch.sigmoid(h[:, :1])
        residual = 0.5 * torch.tanh(h[:, 1:2])
        return torch.clamp(prior + gate * (alpha - prior) + residual, 0.0, 1.0)
