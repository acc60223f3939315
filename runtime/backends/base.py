"""What every backend provides: one inference call on the model's encoded inputs, and its facts.

A backend runs the network and nothing else. Pre-processing (decoding, resizing, letterboxing, the
input encoding of :mod:`common.encoding`) and post-processing (cropping, edge-aware upsampling)
live in :mod:`runtime.matter`, so every runtime — PyTorch, onnxruntime, and later OpenVINO, TensorRT,
CoreML — receives exactly the same tensors and is compared on exactly the same terms.

Adding a backend: one module in this package with a class implementing :class:`Backend` and a
``open(artifact, expect)`` classmethod, plus one :class:`common.targets.Runtime` entry in the
registry (``common/targets.py``) naming the packages it needs and the artifact suffixes
it opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from adamatting.config import ModelConfig
from common.manifest import INPUT_NAMES as MANIFEST_INPUTS
from common.manifest import OUTPUT_NAMES as MANIFEST_OUTPUTS
from common.manifest import Manifest, ManifestError, check_expected, load_manifest, manifest_path
from common.targets import Precision, target_of

# What the runtime itself implements, required of every artifact's manifest: the tensor names it feeds and
# reads, as the manifest format defines them (the input encoding version is always checked by check_expected).
INPUT_NAMES = list(MANIFEST_INPUTS)
OUTPUT_NAMES = list(MANIFEST_OUTPUTS)


@runtime_checkable
class Backend(Protocol):
    """A loaded model behind one runtime.

    ``name``: the registry name (``"torch"``, ``"onnxruntime"``, ...).
    ``precision``: what the artifact computes in (``"fp32"``, ``"fp16"``, ``"int8"``, ...).
    ``input_size``: the fixed (H, W) the artifact was built for, or None when it takes any size that is
    a multiple of ``stride``.
    ``manifest``: the artifact's facts (an :class:`common.manifest.Manifest`).
    :class:`ManifestBackend` sets all four from the manifest.
    """

    name: str
    precision: str
    input_size: tuple[int, int] | None
    stride: int
    manifest: Any

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` (1, 3, H, W) float32 as 2·I − 1 and ``trimap`` (1, 1, H, W) float32 in {0, 0.5, 1}
        → ``alpha`` (1, 1, H, W) in [0, 1] and ``trimap_prob`` (1, 3, H, W), softmax over
        (background, unknown, foreground). Both float32 NumPy arrays."""
        ...


def check_manifest(manifest: Manifest, artifact: str | Path, expect: dict[str, Any]) -> None:
    """Refuse (ManifestError, naming every mismatch) an artifact that is not what the runtime implements
    (encoding version, input/output names) or not what the caller asked for in ``expect``."""
    check_expected(manifest, artifact, **{**expect, "input_names": INPUT_NAMES, "output_names": OUTPUT_NAMES})


def stride_of(manifest: Manifest) -> int:
    """The multiple the model's input sides must be (its config's stride: 128 for mobile, 64 at guided_scale 2,
    32 without the upsampler)."""
    return ModelConfig.from_dict(manifest.model_config).stride   # no torch: config is plain dataclasses


class ManifestBackend:
    """What every backend reads from its artifact's manifest: precision, stride and the fixed input size."""

    name: str

    def __init__(self, manifest: Manifest, input_size: tuple[int, int] | None = None):
        self.manifest = manifest
        self.precision = manifest.precision
        self.stride = stride_of(manifest)
        fixed = manifest.input_size
        self.input_size = input_size or ((int(fixed[0]), int(fixed[1])) if fixed else None)

    @staticmethod
    def read_manifest(artifact: str | Path, expect: dict[str, Any]) -> Manifest:
        """The artifact's manifest, every file verified (:func:`common.manifest.load_manifest`) and its facts
        checked against what the runtime implements and ``expect``."""
        manifest = load_manifest(artifact)
        try:
            ModelConfig.from_dict(manifest.model_config)
        except (TypeError, ValueError) as e:
            raise ManifestError(f"{manifest_path(artifact)}: invalid manifest: bad model_config: {e}") from None
        _check_target(manifest, Path(artifact))
        check_manifest(manifest, artifact, expect)
        return manifest


def _check_target(manifest: Manifest, artifact: Path) -> None:
    """ManifestError unless the manifest's backend writes artifacts of this suffix (a registry target) and its
    precision is one the project exports: a manifest that says otherwise describes another file."""
    problems = []
    if target_of(manifest.backend, artifact.suffix) is None:
        problems.append(f"backend {manifest.backend!r} writes no {artifact.suffix} artifacts")
    if manifest.precision not in {str(p) for p in Precision}:
        problems.append(f"precision {manifest.precision!r} is none of {', '.join(str(p) for p in Precision)}")
    if problems:
        raise ManifestError(f"{manifest_path(artifact)}: invalid manifest: {'; '.join(problems)}; re-export the "
                            f"artifact")
