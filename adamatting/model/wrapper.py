"""The export wrapper: the inference graph, two named outputs.

The runtime's PyTorch backend runs it and the ONNX and CoreML exporters trace it (OpenVINO and TensorRT
start from the ONNX file), so it lives in the model package: the runtime layer may not import the export
layer.
"""

from __future__ import annotations

import torch.nn as nn

from adamatting.model.network import AdaMatting


class ExportWrapper(nn.Module):
    """Two named outputs for export: alpha (N,1,H,W) and the adapted trimap's probabilities (N,3,H,W)."""

    def __init__(self, model: AdaMatting):
        super().__init__()
        self.model = model

    def forward(self, image, trimap):
        out = self.model(image, trimap)
        return out["alpha"], out["trimap_prob"]
