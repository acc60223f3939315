"""Every export target this machine can build, in one call: what ``make demo`` and ``make gate`` run.

    results = export_all("weights/mobile.pt", "out/export", (512, 512), cal, val)

A target that raises is recorded as ``failed`` with the error and the others still run (the report lists
it; ``adamat export all`` exits 1). Targets, in order: ``onnx`` (FP32 + onnxruntime INT8), ``openvino`` (FP32/FP16/INT8 IR), ``tensorrt``
(the FP16 and Q/DQ INT8 ONNX; the engines only where TensorRT imports), ``coreml`` (fp16, w8, pal6,
w8a8 packages). Each returns a :class:`TargetResult`: built, reused, or not built with the reason (a
missing package, no TensorRT). An artifact is *reused* when it is already in ``out_dir`` with a manifest
that matches it (hash), the checkpoint (hash), the input size and, when calibrated, the calibration
set — so a second ``make demo`` skips the minutes of export and a changed checkpoint re-exports.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from adamatting.checkpoint import file_sha256, load_model
from export.manifest import ManifestError, export_code_sha, load_manifest
from calib_data.outputs import inside
from export.targets import artifact_name, artifact_path

TARGETS = ("onnx", "openvino", "tensorrt", "coreml")
OPENVINO_PRECISIONS = ("fp32", "fp16", "int8")
COREML_VARIANTS = ("fp16", "w8", "pal6", "w8a8")


@dataclass
class TargetResult:
    target: str
    status: str                          # built | reused | not built | failed
    artifacts: list[Path] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


def _current(path: Path, checkpoint_sha: str, size, calib_key: str | None) -> bool:
    """Is ``path`` an intact export of this checkpoint at this size by this export code (and, if calibrated,
    with this set)?"""
    try:
        m = load_manifest(path)
    except ManifestError:
        return False
    if (m.checkpoint_sha256 != checkpoint_sha or list(m.input_size) != list(size)
            or m.export_code_sha256 != export_code_sha()):
        return False
    return m.calibration is None or calib_key is None or m.calibration.get("key") == calib_key


def planned_artifacts(config: str, size, out_dir: Path) -> dict[str, list[Path]]:
    """The files each target writes (the TensorRT engines excluded: they exist only where TensorRT does)."""
    base = artifact_name(config, size, "x")[: -len("_x.onnx")]
    return {"onnx": [artifact_path(out_dir, config, size, p) for p in ("fp32", "int8")],
            "openvino": [inside(out_dir, f"{base}_openvino_{p}.xml") for p in OPENVINO_PRECISIONS],
            "tensorrt": [artifact_path(out_dir, config, size, p) for p in ("trt_fp16", "trt_int8")],
            "coreml": [artifact_path(out_dir, config, size, f"coreml_{v}", suffix=".mlpackage")
                       for v in COREML_VARIANTS]}


def _missing_package(target: str) -> str:
    needs = {"onnx": ("onnx", "onnxruntime"), "openvino": ("openvino", "nncf"), "tensorrt": ("onnx", "onnxruntime"),
             "coreml": ("coremltools",)}[target]
    missing = [p for p in needs if importlib.util.find_spec(p) is None]
    return f"needs {', '.join(missing)} (pip install -e '.[export,coreml]')" if missing else ""


def export_all(checkpoint: str | Path, out_dir: str | Path, size=(512, 512), cal=None, val=None, *,
               targets=TARGETS, reuse: bool = True, log: Callable[[str], None] = print) -> list[TargetResult]:
    """Export ``checkpoint`` to every target in ``targets`` possible here; see the module doc.

    ``cal`` / ``val``: composited calibration and validation sets at ``size`` (calib_data.sets)."""
    from export.int8_qdq import quantize_onnx_int8
    from export.onnx_graph import export_onnx

    checkpoint, out_dir, size = Path(checkpoint), Path(out_dir), tuple(size)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown export target(s) {unknown}; known: {', '.join(TARGETS)}")
    model, _ = load_model(checkpoint)
    sha = file_sha256(checkpoint)
    calib_key = cal.meta.get("key") if cal is not None else None
    plan = planned_artifacts(model.cfg.name, size, out_dir)
    fp32 = plan["onnx"][0]
    results = []

    def fp32_onnx() -> Path:
        if not (reuse and _current(fp32, sha, size, None)):
            export_onnx(model, fp32, size, checkpoint_sha256=sha)
        return fp32

    def build(target: str) -> None:
        if target == "onnx":
            q = plan["onnx"][1]
            quantize_onnx_int8(fp32_onnx(), q, cal, val)
        elif target == "openvino":
            from export.openvino_ir import export_openvino

            for p in OPENVINO_PRECISIONS:
                export_openvino(fp32_onnx(), out_dir, p, calib_set=cal, val_set=val)
        elif target == "tensorrt":
            from export.trt_models import make_fp16_onnx, make_int8_qdq_onnx

            fp16, int8 = plan["tensorrt"]
            make_fp16_onnx(fp32_onnx(), fp16, val)
            make_int8_qdq_onnx(fp32_onnx(), int8, cal, val)
        elif target == "coreml":
            from export.coreml_package import export_coreml

            converted: dict = {}
            for v in COREML_VARIANTS:
                export_coreml(model, out_dir, v, size, calib_set=cal, val_set=val, checkpoint_sha256=sha,
                              converted=converted)

    for target in targets:
        paths = plan[target]
        missing = _missing_package(target)
        if missing:
            results.append(TargetResult(target, "not built", reason=missing))
            log(f"export {target}: not built: {missing}")
            continue
        if reuse and all(_current(p, sha, size, calib_key) for p in paths):
            results.append(TargetResult(target, "reused", paths))
            log(f"export {target}: reused {len(paths)} artifact(s) in {out_dir}")
            continue
        log(f"export {target}: building {', '.join(p.name for p in paths)}")
        t0 = time.perf_counter()
        try:
            build(target)
        except Exception as e:  # one target's tool failing must not cost the others (nor the report)
            results.append(TargetResult(target, "failed", reason=f"{type(e).__name__}: {e}",
                                        seconds=time.perf_counter() - t0))
            log(f"export {target}: FAILED: {results[-1].reason}")
            continue
        results.append(TargetResult(target, "built", paths, seconds=time.perf_counter() - t0))
        log(f"export {target}: built in {results[-1].seconds:.0f} s")
    trt = next((r for r in results if r.target == "tensorrt"), None)
    if trt is not None and trt.status in ("built", "reused"):
        results.append(_trt_engines(trt.artifacts, out_dir, log))
    return results


def _trt_engines(onnx_paths: list[Path], out_dir: Path, log) -> TargetResult:
    """The TensorRT engines from the FP16 / Q/DQ ONNX, where TensorRT imports; otherwise why not."""
    from export.trt_engine import TIMING_CACHE_NAME, build_engine, engine_path_for, tensorrt_or_none

    if tensorrt_or_none() is None:
        reason = ("TensorRT does not import here (not installable from PyPI on these machines; needs NVIDIA's "
                  "TensorRT and a GPU): build on the target with `make export-trt` or trtexec")
        log(f"export tensorrt-engine: not built: {reason}")
        return TargetResult("tensorrt-engine", "not built", reason=reason)
    t0 = time.perf_counter()
    engines = []
    for p in onnx_paths:
        if p.is_file():
            build_engine(p, timing_cache=out_dir / TIMING_CACHE_NAME)
            engines.append(engine_path_for(p))
    return TargetResult("tensorrt-engine", "built", engines, seconds=time.perf_counter() - t0)
