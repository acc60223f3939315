"""The TensorRT backend: a serialized engine (``.engine``) built by ``adamat export trt`` on the target, its
loader and runner (:class:`TrtEngineRunner`) side by side.

UNVERIFIED: ``tensorrt`` installs only where NVIDIA's TensorRT and a GPU are, which the project's CI does not
have; this code follows the TensorRT 11 Python API as documented and has not been executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.manifest import check_expected, load_manifest
from runtime.backends.base import ManifestBackend
from runtime.errors import ArtifactError, BackendUnavailable

TRT_MISSING = "tensorrt not installed (it needs NVIDIA's TensorRT and a GPU)"


def tensorrt_or_none():
    """The ``tensorrt`` module, or None when it does not import (anywhere without NVIDIA's TensorRT and a GPU)."""
    try:
        import tensorrt as trt
    except Exception:  # ImportError, or a wheel without its CUDA libraries
        return None
    return trt


class TrtEngineRunner:
    """Run a built engine: ``runner(image, trimap)`` → {"alpha": ..., "trimap_prob": ...} as numpy float32.

    UNVERIFIED here (needs ``tensorrt``, a CUDA GPU and torch with CUDA; this project's torch is the CPU
    wheel). Device buffers are torch CUDA tensors, the simplest documented way from Python: their
    ``data_ptr()`` goes to ``IExecutionContext.set_tensor_address`` and ``execute_async_v3`` runs on a torch
    CUDA stream. The engine's manifest is checked first (backend tensorrt, artifact_type engine, plus ``expect``).
    """

    def __init__(self, engine_path: str | Path, **expect):
        trt = tensorrt_or_none()
        if trt is None:
            raise BackendUnavailable(f"cannot run {engine_path}: {TRT_MISSING}")
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailable(f"cannot run {engine_path}: no CUDA device (or torch without CUDA)")
        engine_path = Path(engine_path)
        self.manifest = load_manifest(engine_path)
        check_expected(self.manifest, engine_path, backend="tensorrt", artifact_type="engine", **expect)
        self._trt, self._torch = trt, torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise ArtifactError(f"{engine_path}: TensorRT could not deserialize the engine (built with another "
                              f"TensorRT version or for another GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.stream = torch.cuda.Stream()

    def _torch_dtype(self, name: str):
        return {np.dtype(np.float32): self._torch.float32, np.dtype(np.float16): self._torch.float16}[
            np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))]

    def __call__(self, image: np.ndarray, trimap: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        feeds = {"image": image, "trimap": trimap}
        buffers = {}
        with torch.cuda.stream(self.stream):
            for name in self.inputs:
                x = torch.from_numpy(np.ascontiguousarray(feeds[name])).to("cuda", self._torch_dtype(name))
                self.context.set_input_shape(name, tuple(x.shape))
                buffers[name] = x
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                buffers[name] = torch.empty(shape, dtype=self._torch_dtype(name), device="cuda")
            for name, t in buffers.items():
                self.context.set_tensor_address(name, t.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise ArtifactError("TensorRT execute_async_v3 failed")
        self.stream.synchronize()
        return {name: buffers[name].float().cpu().numpy() for name in self.outputs}

    def alpha(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        """The ``run_alpha(image_nchw, trimap_nchw)`` form evaluation.protocol.evaluate_set takes."""
        return self(image, trimap)["alpha"]


class TensorRtBackend(ManifestBackend):
    name = "tensorrt"

    def __init__(self, runner: TrtEngineRunner):
        super().__init__(runner.manifest)
        self.runner = runner

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any]) -> "TensorRtBackend":
        return cls(TrtEngineRunner(artifact, **expect))

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.runner(image, trimap)
        return out["alpha"], out["trimap_prob"]
