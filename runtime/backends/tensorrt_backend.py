"""The TensorRT backend: a serialized engine (``.engine``) built by ``adamat export trt`` on the target.

UNVERIFIED on the project machines: ``tensorrt`` cannot be installed there and they have no GPU. The
engine runner itself lives in export/trt_engine.py (``TrtEngineRunner``); this wraps it in the common
backend interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from export.trt_engine import TrtEngineRunner
from runtime.backends.base import stride_of


class TensorRtBackend:
    name = "tensorrt"

    def __init__(self, runner: TrtEngineRunner):
        self.runner = runner
        self.manifest = runner.manifest
        self.stride = stride_of(self.manifest)
        self.precision = runner.manifest.precision
        self.input_size = (int(self.manifest.input_size[0]), int(self.manifest.input_size[1]))

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any]) -> "TensorRtBackend":
        return cls(TrtEngineRunner(artifact, **expect))

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.runner(image, trimap)
        return out["alpha"], out["trimap_prob"]
