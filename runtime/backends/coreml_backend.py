"""The CoreML backend: an ML Program package (``.mlpackage``: fp16, w8, pal6/pal4, w8a8) with its manifest.

CoreML runs only on Apple platforms: coremltools cannot run models on Linux, so on any other system
:meth:`CoreMLBackend.open` checks the manifest (so a wrong or damaged artifact is still refused first) and
then raises :class:`runtime.errors.BackendUnavailable`. The package's ``image`` input is an RGB ImageType
(scale 2/255, bias −1), so :meth:`run` turns the encoded image (2·I − 1, NCHW float) back into the 8-bit
RGB picture the app would pass as a CVPixelBuffer.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from common.manifest import Manifest
from runtime.backends.base import OUTPUT_NAMES, ManifestBackend
from runtime.errors import ArtifactError, BackendUnavailable

NOT_MACOS = "CoreML prediction needs macOS (coremltools cannot run models on Linux)"
COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def coreml_can_predict() -> bool:
    return platform.system() == "Darwin"


def encoded_to_pil(image: np.ndarray):
    """(1, 3, H, W) float 2·I − 1 → an 8-bit RGB PIL image (what the ImageType input takes)."""
    from PIL import Image

    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be (1, 3, H, W) encoded RGB, got shape {tuple(image.shape)}")
    rgb = np.clip(np.rint((np.transpose(image[0], (1, 2, 0)) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


class CoreMLBackend(ManifestBackend):
    name = "coreml"

    def __init__(self, model, manifest: Manifest):
        super().__init__(manifest)
        self.model = model
        # iOS16+ programs converted with FP16 compute take and return FLOAT16 multi-arrays
        from coremltools.proto import FeatureTypes_pb2

        spec = model.get_spec()
        kinds = {f.name: f.type.multiArrayType.dataType for f in spec.description.input if f.type.HasField("multiArrayType")}
        self._trimap_dtype = (np.float16 if kinds.get("trimap") == FeatureTypes_pb2.ArrayFeatureType.FLOAT16
                              else np.float32)

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any], compute_units: str = "ALL") -> "CoreMLBackend":
        compute_units = compute_units.upper()
        if compute_units not in COMPUTE_UNITS:
            raise ValueError(f"unknown CoreML compute units {compute_units!r}; use one of {', '.join(COMPUTE_UNITS)}")
        artifact = Path(artifact)
        manifest = cls.read_manifest(artifact, {"backend": "coreml", **expect})
        if not coreml_can_predict():
            raise BackendUnavailable(f"{artifact}: {NOT_MACOS}; copy the package to a Mac or add it to an Xcode project")
        import coremltools as ct

        try:
            model = ct.models.MLModel(str(artifact), compute_units=getattr(ct.ComputeUnit, compute_units))
        except Exception as e:  # coremltools raises many types for a package CoreML refuses
            raise ArtifactError(f"{artifact}: CoreML cannot load it: {type(e).__name__}: {e}") from None
        return cls(model, manifest)

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.input_size
        if tuple(image.shape[2:]) != (h, w) or tuple(trimap.shape) != (1, 1, h, w):
            raise ValueError(f"the CoreML package takes 1x3x{h}x{w} and 1x1x{h}x{w}, got {tuple(image.shape)} "
                             f"and {tuple(trimap.shape)}")
        out = self.model.predict({"image": encoded_to_pil(np.asarray(image, np.float32)),
                                  "trimap": np.asarray(trimap, self._trimap_dtype)})
        return tuple(np.asarray(out[n], np.float32) for n in OUTPUT_NAMES)  # type: ignore[return-value]


def band_refiner_runner(path: Path):
    """UNVERIFIED (CoreML predicts on macOS only): the band refiner's CoreML package (``adamat export
    band-refiner``), a fixed batch of tiles, its inputs and output named as the ONNX graph's."""
    from runtime.band_refiner import INPUTS, Runner, check_inputs

    if not coreml_can_predict():
        raise BackendUnavailable(f"{path}: {NOT_MACOS}")
    import coremltools as ct

    model = ct.models.MLModel(str(path))
    check_inputs([i.name for i in model.get_spec().description.input], path)
    batch = int(model.get_spec().description.input[0].type.multiArrayType.shape[0])
    return Runner(lambda inputs: np.asarray(model.predict({n: inputs[n] for n in INPUTS})["refined"]), "coreml", batch)
