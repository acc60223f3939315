"""The PyTorch backend: an AdaMatting checkpoint (``.pt``) run eagerly on the CPU (or a given device).

A checkpoint has no export manifest, so one is built from it (config, steps, hash; ``input_size`` empty
for "any size") and checked like an exported artifact's. Weights stored in fp16 are run in fp32. The network is fully convolutional: it takes any size that is a multiple of the
encoder stride, so ``input_size`` is None unless the caller fixes one (``expect={"input_size": [H, W]}``),
which then makes it behave exactly like a fixed-size export of the same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from adamatting.checkpoint import file_sha256, load_model
from adamatting.model import AdaMatting, ExportWrapper
from common.manifest import Manifest, ManifestError
from common.values import is_whole_number
from runtime.backends.base import ManifestBackend, check_manifest
from runtime.errors import BackendUnavailable


class TorchBackend(ManifestBackend):
    name = "torch"

    def __init__(self, model: AdaMatting, manifest: Manifest, input_size: tuple[int, int] | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__(manifest, input_size)
        self.device = _device(device)
        self.net = ExportWrapper(model.eval()).to(self.device)

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any], device: str = "cpu", threads: int | None = None) -> "TorchBackend":
        """Load a checkpoint (CheckpointError if truncated or not one); ManifestError if ``expect`` differs.
        ``threads`` sets PyTorch's intra-op threads (process-wide)."""
        if threads:
            torch.set_num_threads(int(threads))
        model, _ = load_model(artifact)
        size = expect.get("input_size")
        if size is not None:
            if not (isinstance(size, (list, tuple)) and all(map(is_whole_number, size))):
                raise ManifestError(f"{artifact}: expected input_size must be two whole numbers, got {size!r}")
            size = tuple(int(s) for s in size)
            if len(size) != 2 or min(size) <= 0 or any(s % model.cfg.stride for s in size):
                raise ManifestError(f"{artifact}: expected input_size {list(size)} is not two positive multiples "
                                    f"of the encoder stride {model.cfg.stride}")
        digest = file_sha256(artifact)
        manifest = _manifest(model, size, digest)
        check_manifest(manifest, artifact, expect)
        return cls(model, manifest, size, device)

    @classmethod
    def from_model(cls, model: AdaMatting, device: str | torch.device = "cpu") -> "TorchBackend":
        """An in-memory model, any input size (training's validation, figures)."""
        return cls(model, _manifest(model, None, ""), None, device)

    @torch.inference_mode()
    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, prob = self.net(torch.from_numpy(image).to(self.device), torch.from_numpy(trimap).to(self.device))
        return alpha.float().cpu().numpy(), prob.float().cpu().numpy()


def _manifest(model: AdaMatting, size: tuple[int, int] | None, digest: str) -> Manifest:
    """A checkpoint has no export manifest: its facts, for the checks every backend makes."""
    return Manifest(backend="torch", precision="fp32", model_config=model.cfg.to_dict(), input_size=list(size or []),
                    pu_steps=model.cfg.pu_steps, checkpoint_sha256=digest, artifact_sha256=digest)


def _device(device: str | torch.device) -> torch.device:
    """``device`` as a torch device this process has: ValueError naming the option for a name torch does not know,
    BackendUnavailable for one it knows but cannot use here (``cuda`` without a GPU or a CUDA build)."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r}") from e
    usable = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not usable.get(device.type, False):
        raise BackendUnavailable(f"device {str(device)!r}: this process cannot run PyTorch on it (use 'cpu')")
    return device
