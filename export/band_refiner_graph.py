"""The band refiner as the ONNX graph the runtime ships (``runtime/data/band_refiner.onnx``).

Inputs ``image`` (N×3×H×W, 2·I − 1), ``alpha``, ``prior``, ``mask`` (N×1×H×W); output ``refined`` (N×1×H×W).
Batch, height and width are dynamic (it is fully convolutional). Written with the TorchScript exporter at opset
17, the facts of its training in the graph's metadata (``metadata_props``), then run by the runtime's own loaders
(onnxruntime where installed, and OpenCV's DNN module) and compared with PyTorch before the file is published: a
graph that does not run, or differs by more than ``TOLERANCE``, is never written.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from adamatting.model.band_refiner import INPUTS, RECEPTIVE_RADIUS, BandRefiner
from common.outputs import atomic_path
from export.errors import ExportError
from runtime.band_refiner import RECEPTIVE_RADIUS as RUNTIME_RADIUS
from runtime.band_refiner import RUNNERS
from runtime.band_refiner import BandRefiner as RefinerRunner

TOLERANCE = 1e-4
OPSET = 17


def to_onnx(model: BandRefiner, metadata: dict) -> onnx.ModelProto:
    if RECEPTIVE_RADIUS != RUNTIME_RADIUS:
        raise ExportError(f"the model's receptive radius {RECEPTIVE_RADIUS} is not the runtime's {RUNTIME_RADIUS}")
    example = _example(2, 48, 40)
    dynamic = {name: {0: "n", 2: "h", 3: "w"} for name in (*INPUTS, "refined")}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), tuple(example), buf, input_names=list(INPUTS), output_names=["refined"],
                          opset_version=OPSET, dynamic_axes=dynamic, do_constant_folding=True, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in metadata.items()})
    return proto


def write_band_refiner(model: BandRefiner, path: str | Path, metadata: dict) -> Path:
    """Export, check under the runtime's loader, then publish ``path``; returns it."""
    proto = to_onnx(model, metadata)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
        diff = max_difference(model, tmp)
        if not diff <= TOLERANCE:
            raise ExportError(f"the exported band refiner differs from PyTorch by {diff:.2e} (> {TOLERANCE})", path)
    return Path(path)


def max_difference(model: BandRefiner, path: Path) -> float:
    """Largest |Δ| between PyTorch and the graph at ``path`` run by each runtime the runtime may choose
    (onnxruntime where installed, OpenCV), on random inputs of two sizes."""
    runners = [RefinerRunner.open(path, name) for name in RUNNERS if name == "opencv" or _installed(name)]
    worst = 0.0
    for shape in ((2, 64, 80), (1, 37, 53)):
        example = _example(*shape)
        with torch.no_grad():
            want = model(*example).numpy()
        for runner in runners:
            got = runner.run({name: x.numpy() for name, x in zip(INPUTS, example)})
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _example(n: int, h: int, w: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    return [image] + [torch.rand(n, 1, h, w, generator=g) for _ in range(3)]
