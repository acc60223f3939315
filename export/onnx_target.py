"""The ONNX target (``adamat export onnx``, ``make export-onnx``): the FP32 ONNX validated against PyTorch and its
calibrated INT8 QDQ twin for onnxruntime."""

from __future__ import annotations

import argparse
from pathlib import Path

from adamatting.checkpoint import file_sha256, load_model, load_state
from adamatting.model import build_model
from common.outputs import check_folder
from common.targets import TARGETS, Precision
from export.int8_qdq import quantize_onnx_int8
from export.job import (
    ExportJob,
    add_export_arguments,
    artifact_path,
    check_sets_readable,
    composited_set,
    describe_validation,
)
from export.onnx_graph import check_checkpoint_size, export_onnx

TARGET = TARGETS["onnx"]


def export_onnx_target(checkpoint: Path, out_dir: Path, size: tuple[int, int] = (512, 512), *, steps: int | None = None,
                       dynamic_batch: bool = False, simplifier: str = "onnxslim", int8: bool = True,
                       calib: str = "calib", val: str = "val", cache: Path = Path("cache/sets"),
                       calib_method: str = "minmax", progress: bool = True) -> list[tuple[Path, dict]]:
    """FP32 ONNX (validated against PyTorch) and, with ``int8``, its calibrated QDQ INT8 twin."""
    check_folder(out_dir)   # before any work
    if int8:   # and the sets' names, before the FP32 export is written
        check_sets_readable(calib, val)
    model, _ = load_model(checkpoint)
    if steps is not None and steps != model.cfg.pu_steps:
        state = model.state_dict()
        model = build_model(model.cfg.replace(pu_steps=steps))
        load_state(model, state, checkpoint)
        model.eval()
    if int8:   # built before the FP32 graph is written: a set that cannot be built leaves no artifact behind
        cal = composited_set(calib, size, cache, progress)
        vset = composited_set(val, size, cache, progress)
    name = model.cfg.name
    fp32 = artifact_path(out_dir, name, size, "fp32", steps)
    m32 = export_onnx(model, fp32, size, dynamic_batch=dynamic_batch, simplifier=simplifier,
                      checkpoint_sha256=file_sha256(checkpoint))
    written = [(fp32, m32.validation)]
    if int8:
        q = artifact_path(out_dir, name, size, "int8", steps)
        m8 = quantize_onnx_int8(fp32, q, cal, vset, method=calib_method)
        written.append((q, m8.validation))
    return written


def build(job: ExportJob) -> None:
    """``export all``: the FP32 ONNX (or the up-to-date one) and its INT8 QDQ twin."""
    quantize_onnx_int8(job.fp32_onnx(), job.artifact(TARGET, Precision.INT8), job.cal, job.val)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p)
    p.add_argument("--no-int8", action="store_true", help="skip the INT8 QDQ model")


def run(args) -> int:
    """``adamat export onnx``: write both models and print how each compares with its reference."""
    check_checkpoint_size(args.checkpoint, tuple(args.size))   # before the INT8 model's sets are built
    written = export_onnx_target(Path(args.checkpoint), Path(args.out), tuple(args.size), steps=args.steps,
                                 dynamic_batch=args.dynamic_batch, simplifier=args.simplifier, int8=not args.no_int8,
                                 calib=args.calib, val=args.val, cache=Path(args.cache), calib_method=args.calib_method)
    for path, v in written:
        print(f"{path}  {describe_validation(v)}")
    return 0


def band_refiner(model, out: Path, metadata: dict) -> dict:
    """The band refiner's FP32 ONNX graph (:mod:`export.band_refiner_graph`: any batch and size), checked under
    onnxruntime and OpenCV against PyTorch before it is published."""
    from export.band_refiner_graph import TOLERANCE, checked, write_band_refiner

    return checked(model, write_band_refiner(model, out, metadata), TOLERANCE)
