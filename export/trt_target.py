"""``adamat export trt`` / ``make export-trt``: checkpoint → FP32 ONNX → FP16 and INT8 Q/DQ ONNX for TensorRT
(each measured against FP32 under onnxruntime, gated, with a manifest) → TensorRT engines.

Where ``tensorrt`` imports, the engines are built (export.trt_engine.build_engine, one shared timing
cache) and the command exits 0. Where it does not (no NVIDIA GPU, as in CI), the ONNX models are still
written, then the command names them with the exact ``trtexec`` line that builds each engine on the target
and exits :data:`EXIT_NO_TENSORRT` (3); with ``TRT_OPTIONAL=1`` in the environment that is a warning and exit
0 (``make demo`` uses it). Bad input (a calibration set of another size, a policy naming a missing layer, an
unreadable checkpoint) raises ExportError / DataError / CheckpointError — exit 2 through the CLI — and
nothing is left under a final name.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from adamatting.checkpoint import load_model
from common.errors import DataError
from common.manifest import load_manifest
from common.targets import TARGETS, Precision
from export.errors import ExportError
from export.job import (
    WORKSPACE_HELP,
    ExportJob,
    add_export_arguments,
    artifact_path,
    composited_set,
    workspace_mib,
)
from export.onnx_graph import check_input_size
from export.onnx_target import export_onnx_target
from export.trt_engine import (
    TIMING_CACHE_NAME,
    TRT_MISSING,
    build_engine,
    engine_path_for,
    tensorrt_or_none,
    trtexec_line,
)
from export.trt_models import make_fp16_onnx, make_int8_qdq_onnx

TARGET = TARGETS["tensorrt"]

EXIT_NO_TENSORRT = 3
OPTIONAL_ENV = "TRT_OPTIONAL"


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``adamat export trt`` (also used by ``python -m export.trt_target``)."""
    add_export_arguments(p, dynamic_batch_help="dynamic batch dimension (profile: batch 1)",
                         val_help="validation set config for the accuracy gates")
    p.add_argument("--quantizer", default="auto", choices=["auto", "onnxruntime", "modelopt"],
                   help="auto: NVIDIA ModelOpt when installed (unverified here), else onnxruntime")
    p.add_argument("--workspace-mib", type=workspace_mib, default=None, help=WORKSPACE_HELP)
    return p


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="python -m export.trt_target", description="FP16 + INT8 Q/DQ ONNX for TensorRT, and engines where "
                                                         "TensorRT is installed (what `adamat export trt` runs)."))


def _accuracy(m) -> str:
    v = m.validation
    if "alpha_vs_fp32" not in v:
        return "not measured"
    d = v["alpha_vs_fp32"]
    return (f"vs FP32 (onnxruntime) on {v['samples']} validation composites: max |Δα| {d['max_abs']:.2e}, "
            f"mean |Δα| {d['mean_abs']:.2e}, SAD {v['fp32']['SAD']:.3f} → {v['quantized']['SAD']:.3f}")


def export_trt_models(args) -> list[tuple[Path, object]]:
    """FP32 ONNX, then the FP16 and INT8 Q/DQ ONNX for TensorRT; returns [(path, manifest)]."""
    out, size, cache = Path(args.out), tuple(args.size), Path(args.cache)
    model, _ = load_model(args.checkpoint)  # fails early, before any set is built, on a bad checkpoint
    check_input_size(model.cfg, size)       # and on a size the model cannot take
    name = model.cfg.name
    cal = composited_set(args.calib, size, cache, progress=False)
    val = composited_set(args.val, size, cache, progress=False)
    [(fp32, _)] = export_onnx_target(Path(args.checkpoint), out, size, steps=args.steps,
                                     dynamic_batch=args.dynamic_batch, simplifier=args.simplifier, int8=False,
                                     calib=args.calib, val=args.val, cache=cache, progress=False)
    fp16 = artifact_path(out, name, size, "trt_fp16", args.steps)
    int8 = artifact_path(out, name, size, "trt_int8", args.steps)
    m16 = make_fp16_onnx(fp32, fp16, val)
    m8 = make_int8_qdq_onnx(fp32, int8, cal, val, method=args.calib_method, quantizer=args.quantizer)
    return [(fp32, load_manifest(fp32)), (fp16, m16), (int8, m8)]


def no_tensorrt_report(written: list[tuple[Path, object]], timing_cache: Path) -> str:
    """What was written and the trtexec line for each TensorRT model."""
    lines = [f"TensorRT engines not built: {TRT_MISSING}.", "Written (each with its .manifest.json):"]
    for path, m in written:
        what = "FP32 reference" if m.backend != "tensorrt" else f"{m.precision.upper()} for TensorRT; {_accuracy(m)}"
        lines.append(f"  {path}  ({what})")
    lines.append("Build each engine on the target (TensorRT >= 10.12; --stronglyTyped is the default in 11) with:")
    for path, m in written:
        if m.backend == "tensorrt":
            lines.append("  " + trtexec_line(path, timing_cache=timing_cache))
    lines.append("or there: python -m export.trt_engine " + " ".join(str(p) for p, m in written if m.backend == "tensorrt"))
    return "\n".join(lines)


def run_export_trt(args) -> int:
    """Handler of ``adamat export trt``: 0 when engines were built (or TRT_OPTIONAL=1 and TensorRT is missing),
    EXIT_NO_TENSORRT when TensorRT is missing; input errors propagate (the CLI prints them, exit 2)."""
    written = export_trt_models(args)
    for path, m in written:
        print(f"{path}  {m.precision}" + (f"  {_accuracy(m)}" if m.backend == "tensorrt" else ""))
    timing_cache = Path(args.out) / TIMING_CACHE_NAME
    if tensorrt_or_none() is None:
        report = no_tensorrt_report(written, timing_cache)
        if os.environ.get(OPTIONAL_ENV, "") == "1":
            print(f"warning: {report}\n({OPTIONAL_ENV}=1: not an error)", file=sys.stderr)
            return 0
        print(f"error: {report}\n(set {OPTIONAL_ENV}=1 to make this a warning)", file=sys.stderr)
        return EXIT_NO_TENSORRT
    for path, m in written:
        if m.backend == "tensorrt":
            em = build_engine(path, timing_cache=timing_cache, workspace_mib=getattr(args, "workspace_mib", None))
            print(f"{engine_path_for(path)}  {em.precision} engine, TensorRT {em.tools.get('tensorrt')}, "
                  f"timing cache {em.extra['timing_cache']['state']}")
    return 0


run = run_export_trt


def build(job: ExportJob) -> None:
    """``export all``: the FP16 and INT8 Q/DQ ONNX from the FP32 ONNX (engines are the tensorrt-engine target)."""
    fp32 = job.fp32_onnx()
    make_fp16_onnx(fp32, job.artifact(TARGET, Precision.FP16), job.val)
    make_int8_qdq_onnx(fp32, job.artifact(TARGET, Precision.INT8), job.cal, job.val)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_export_trt(args)
    except (DataError, ValueError, FileNotFoundError, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def band_refiner(model, out: Path, metadata: dict) -> dict:
    """The band refiner as a strongly typed FP16 ONNX graph for TensorRT (float32 I/O; any batch and size):
    ``trtexec --onnx=band_refiner_trt_fp16.onnx --stronglyTyped`` builds its engine on the device. Checked here
    under onnxruntime CPU against PyTorch FP32."""
    import onnx

    from common.outputs import atomic_path
    from export.band_refiner_graph import checked, to_onnx
    from export.trt_models import convert_to_fp16

    proto, _ = convert_to_fp16(to_onnx(model, metadata))
    with atomic_path(out) as tmp:
        onnx.save(proto, str(tmp))
        return checked(model, tmp, 5e-3, runtimes=["onnxruntime"])


if __name__ == "__main__":
    sys.exit(main())
