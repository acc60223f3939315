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
from runtime.band_refiner import BATCH, TILE
from runtime.band_refiner import RECEPTIVE_RADIUS as RUNTIME_RADIUS
from runtime.band_refiner import open_runner, runtimes_for
from runtime.errors import BackendUnavailable

TOLERANCE = 1e-4
OPSET = 17


def to_onnx(model: BandRefiner, metadata: dict) -> onnx.ModelProto:
    if RECEPTIVE_RADIUS != RUNTIME_RADIUS:
        raise ExportError(f"the model's receptive radius {RECEPTIVE_RADIUS} is not the runtime's {RUNTIME_RADIUS}")
    example = example_inputs(2, 48, 40)
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
        checked(model, tmp, TOLERANCE, runtimes_for(Path(path)))
    return Path(path)


def max_difference(model: BandRefiner, path: Path, runtimes: list[str] | None = None,
                   shapes=((2, 64, 80), (1, 37, 53))) -> float:
    """Largest |Δ| between PyTorch and the file at ``path`` run by each of ``runtimes`` (by default every one
    that opens its suffix: for an ONNX graph onnxruntime and OpenCV) that runs here, on random inputs of the
    (n, h, w) ``shapes``."""
    runners = []
    for name in runtimes or runtimes_for(Path(path)):
        try:
            runners.append(open_runner(Path(path), name))
        except BackendUnavailable:
            continue
    if not runners:
        raise ExportError(f"{path}: no runtime here runs it to check it")
    worst = 0.0
    for shape in shapes:
        example = example_inputs(*shape)
        with torch.no_grad():
            want = model(*example).numpy()
        for runner in runners:
            got = runner.run({name: x.numpy() for name, x in zip(INPUTS, example)})
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


def tile_batch() -> tuple[int, int, int]:
    """(n, h, w) of the runtime's batches of tiles (:mod:`runtime.band_refiner`): the fixed input of the targets
    whose programs have one shape (ExecuTorch, CoreML)."""
    side = TILE + 2 * RUNTIME_RADIUS
    return BATCH, side, side


def checked(model: BandRefiner, path: Path, tolerance: float, runtimes: list[str] | None = None,
            shapes=((2, 64, 80), (1, 37, 53))) -> dict:
    """:func:`max_difference` as a manifest fact; ExportError (nothing published) beyond ``tolerance``."""
    diff = max_difference(model, path, runtimes, shapes)
    if not diff <= tolerance:
        raise ExportError(f"{path}: the band refiner differs from PyTorch by {diff:.2e} (> {tolerance:g})")
    return {"max_abs_vs_pytorch": diff, "tolerance": tolerance, "shapes": [list(s) for s in shapes]}


def from_onnx(path: str | Path) -> tuple[BandRefiner, dict]:
    """The PyTorch refiner of a band refiner graph (its initializers are the module's parameters, by name) and
    the facts of its training from the graph's metadata: what the other targets are converted from."""
    from onnx import numpy_helper

    if not Path(path).is_file():
        raise ExportError(f"{path}: band refiner graph not found")
    try:
        proto = onnx.load(str(path))
    except Exception:   # protobuf's DecodeError, onnx's own errors
        raise ExportError(f"{path}: not an ONNX graph") from None
    state = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in proto.graph.initializer}
    if "body.0.weight" not in state:
        raise ExportError(f"{path}: not a band refiner graph (no body.0.weight)")
    model = BandRefiner(int(state["body.0.weight"].shape[0]))
    try:
        model.load_state_dict(state)
    except RuntimeError:   # other layers than the refiner's
        raise ExportError(f"{path}: not a band refiner graph (its weights are not the refiner's layers)") from None
    return model.eval(), {p.key: _fact(p.value) for p in proto.metadata_props}


def _fact(value: str):
    """A metadata value as the exporter wrote it (JSON), or the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def example_inputs(n: int, h: int, w: int) -> list[torch.Tensor]:
    """Seeded random inputs of the refiner: the image in [−1, 1], alpha, prior and mask in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(n, 3, h, w, generator=g) * 2 - 1
    return [image] + [torch.rand(n, 1, h, w, generator=g) for _ in range(3)]
