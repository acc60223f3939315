"""The onnxruntime backend: an exported ``.onnx`` artifact (FP32 or INT8 QDQ) with its manifest.

The manifest beside the file (``<name>.onnx.manifest.json``) is required: it proves the file is whole
(its SHA-256), says which input encoding and tensor names the graph uses, and gives the fixed input
size. The session's own input shapes are checked against it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnxruntime as ort

from common.manifest import Manifest, ManifestError
from runtime.backends.base import INPUT_NAMES, OUTPUT_NAMES, ManifestBackend
from runtime.errors import ArtifactError

# onnxruntime >= 1.21 runs a graph transformer, WeightBiasQuantization, that quantizes the float weights of
# any DQ -> Conv -> Q group at session creation. In a QDQ model that is what a layer the precision policy
# keeps in float looks like when its neighbours are quantized: the shipped policy's ConvTransposes would run
# with int8-rounded weights behind a DequantizeLinear per call (and the stem, when the policy quantized the
# inputs, silently ran as QLinearConv). A session config entry rather than the
# Python-only ``disabled_optimizers`` argument: apps set the same key through the C, C++, Java and
# Objective-C APIs (``AddSessionConfigEntry`` / ``addConfigEntry``). Recorded in every INT8 manifest.
SESSION_CONFIG = {"optimization.disable_specified_optimizers": "WeightBiasQuantization"}


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """The options every onnxruntime session of this project uses (runtime, export checks, benchmarks)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    return options


def inference_session(model, threads: int | None = None,
                      providers: Sequence[str] = ("CPUExecutionProvider",)) -> ort.InferenceSession:
    """An onnxruntime session over a path or serialized bytes, with ``session_options``."""
    return ort.InferenceSession(model if isinstance(model, (bytes, str)) else str(model),
                                session_options(threads), providers=list(providers))


class OnnxRuntimeBackend(ManifestBackend):
    name = "onnxruntime"

    def __init__(self, session: ort.InferenceSession, manifest: Manifest):
        super().__init__(manifest)
        self.session = session

    @classmethod
    def open(cls, artifact: Path, expect: dict[str, Any], threads: int | None = None,
             providers: Sequence[str] = ("CPUExecutionProvider",)) -> "OnnxRuntimeBackend":
        """ManifestError for a missing manifest, a hash mismatch (truncated file) or facts that differ from
        ``expect``; ArtifactError when onnxruntime cannot load the graph."""
        manifest = cls.read_manifest(artifact, expect)
        try:
            session = inference_session(artifact, threads, providers)
        except Exception as e:  # onnxruntime raises its own pybind exception types
            raise ArtifactError(f"{artifact}: onnxruntime cannot load it: {e}") from None
        graph_inputs = {i.name: i.shape for i in session.get_inputs()}
        if sorted(graph_inputs) != sorted(INPUT_NAMES):
            raise ManifestError(f"{artifact}: graph inputs {sorted(graph_inputs)} differ from {INPUT_NAMES}")
        h, w = manifest.input_size
        if list(graph_inputs["image"][2:]) != [h, w]:
            raise ManifestError(f"{artifact}: graph input size {graph_inputs['image'][2:]} differs from the "
                                f"manifest's {manifest.input_size}")
        return cls(session, manifest)

    def run(self, image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, prob = self.session.run(OUTPUT_NAMES, {"image": image, "trimap": trimap})
        return alpha, prob


def band_refiner_runner(path: Path):
    """The band refiner's ONNX graph (:mod:`runtime.band_refiner`) in an onnxruntime session."""
    from runtime.band_refiner import Runner, check_inputs

    try:
        session = inference_session(path)
    except Exception:   # onnxruntime raises its own exception types for a file that is not a graph
        raise ValueError(f"{path}: not a band refiner graph onnxruntime can read (an ONNX file is expected)") from None
    check_inputs([i.name for i in session.get_inputs()], path)
    return Runner(lambda inputs: session.run(None, inputs)[0], "onnxruntime",
                  metadata=dict(session.get_modelmeta().custom_metadata_map))
