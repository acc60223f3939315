"""The OpenVINO backend: an IR (``.xml`` + ``.bin``; FP32, FP16 or INT8) with its manifest.

Performance hint LATENCY by default (one request, all cores for it: the phone/laptop case), THROUGHPUT on
request; ``threads`` caps the CPU threads (``INFERENCE_NUM_THREADS``).

On the CPU every float operation runs in f32 (``INFERENCE_PRECISION_HINT``): the CPU plugin's default is
bf16 on processors with AVX512-BF16 or AMX, which would silently turn an FP32 IR into a bf16 model and the
precision policy's float layers of an INT8 IR into bf16 ones (measured on an AVX512-BF16 EPYC: max |Δα|
0.045 of an FP32 IR against PyTorch, against 1e-5 in f32). ``inference_precision="bf16"`` opts in.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from common.manifest import Manifest
from runtime.backends.base import OUTPUT_NAMES, ManifestBackend
from runtime.errors import ArtifactError
from runtime.quiet_import import native_stderr_captured

log = logging.getLogger(__name__)

HINTS = ("LATENCY", "THROUGHPUT")
PRECISION_HINTS = ("f32", "bf16", "f16")


class OpenVinoBackend(ManifestBackend):
    name = "openvino"

    def __init__(self, compiled: ov.CompiledModel, manifest: Manifest, hint: str, threads: int | None):
        super().__init__(manifest)
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.hint, self.threads = hint, threads
        self._outputs = [compiled.output(n) for n in OUTPUT_NAMES]

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any], hint: str = "LATENCY", threads: int | None = None,
             device: str = "CPU", inference_precision: str | None = None) -> "OpenVinoBackend":
        hint = hint.upper()
        if hint not in HINTS:
            raise ValueError(f"unknown OpenVINO performance hint {hint!r}; use {' or '.join(HINTS)}")
        if inference_precision is None and device.upper() == "CPU":
            inference_precision = "f32"
        if inference_precision is not None and inference_precision not in PRECISION_HINTS:
            raise ValueError(f"unknown OpenVINO inference precision {inference_precision!r}; "
                             f"use one of {', '.join(PRECISION_HINTS)}")
        manifest = cls.read_manifest(artifact, {"backend": "openvino", **expect})   # verifies the .xml and the .bin
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if inference_precision is not None:
            config["INFERENCE_PRECISION_HINT"] = inference_precision
        try:
            compiled = ov.Core().compile_model(str(artifact), device, config)
        except RuntimeError as e:
            raise ArtifactError(f"{artifact}: OpenVINO cannot load it: {e}") from None
        return cls(compiled, manifest, hint, threads)

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.request.infer({"image": image, "trimap": trimap})
        return result[self._outputs[0]], result[self._outputs[1]]


def band_refiner_runner(path: Path):
    """The band refiner's OpenVINO IR (``adamat export band-refiner``) compiled for the CPU in f32 (as the network
    is: the CPU plugin would take bf16 where the CPU has it), any batch and size."""
    from runtime.band_refiner import Runner, check_inputs

    try:
        with native_stderr_captured(log):      # the frontends that fail to parse a damaged file say so there
            compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except RuntimeError:
        raise ValueError(f"{path}: not a band refiner model OpenVINO can read") from None
    check_inputs([port.get_any_name() for port in compiled.inputs], path)
    request, output = compiled.create_infer_request(), compiled.output(0)
    return Runner(lambda inputs: request.infer(inputs)[output], "openvino")
