"""ExecuTorch programs (``.pte``) for Android apps: the network lowered to the XNNPACK delegate, FP32 and INT8
(``adamat export executorch``, ``make export-android``).

FP32: the inference wrapper (BatchNorms folded) captured by ``torch.export`` at a fixed size and lowered with
``to_edge_transform_and_lower`` and the ``XnnpackPartitioner``; validated against PyTorch (max |Δα| ≤ 1e-3).
INT8: PT2E static quantization with ExecuTorch's ``XNNPACKQuantizer`` — int8 weights symmetric per output
channel, int8 activations per tensor — calibrated on the composited calibration set every other backend uses,
the precision policy's modules (export/precision.toml) left unannotated, so they stay float; then lowered
the same way and compared with PyTorch FP32 on the validation set.

What XNNPACK does not take runs on ExecuTorch's portable kernels between the delegated subgraphs. How much of
the graph is delegated (operators inside XNNPACK subgraphs against those outside, tuple access not counted)
and which operators are not is recorded in each manifest (``extra.delegation``) and logged.

The program is written to a temporary file, loaded and validated from there by ExecuTorch's runtime (the
backend of :mod:`runtime.backends.executorch_backend`), then renamed and its manifest written; an export that
fails validation writes nothing. executorch and torchao (the project's ``[android]`` extra) are imported
where they are used, so the other exporters work without them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from adamatting.checkpoint import file_sha256, load_model
from adamatting.config import DEFAULT_WEIGHTS
from adamatting.fuse import fold_batchnorms
from adamatting.model import AdaMatting, ExportWrapper
from common.arguments import Distinct, out_folder
from common.encoding import encode_inputs
from common.manifest import Manifest, tool_versions, write_manifest
from common.outputs import atomic_path, check_folder
from common.targets import TARGETS, Precision
from evaluation.protocol import evaluate_set
from export.errors import ExportError
from export.job import (
    ExportJob,
    add_limit_arguments,
    add_size_argument,
    artifact_path,
    check_set_size,
    composited_set,
    describe_validation,
)
from export.onnx_graph import alpha_difference, check_input_size, run_torch, validation_samples
from export.precision import PrecisionPolicy

TARGET = TARGETS["executorch"]
PRECISIONS = tuple(str(p) for p in TARGET.precisions)
# FP32 XNNPACK vs PyTorch on the same CPU: other kernels and approximations of sigmoid/tanh (measured on the
# shipped model at 512x512: max |Δα| ~3e-4 on noise, far less on composites).
TOLERANCE = {"max_abs": 1e-3, "mean_abs": 1e-4}
QUANTIZATION = ("XNNPACKQuantizer (PT2E static): int8 weights symmetric per output channel, int8 activations "
                "asymmetric per tensor")
BOOKKEEPING = {"getitem"}   # tuple access between a delegate call and its users: no computation
CONVERSIONS = ("quantize_per_", "dequantize_per_")   # INT8's float <-> int8 conversions


# ----------------------------------------------------------------------------------------------- graphs
def export_module(model: AdaMatting) -> torch.nn.Module:
    """The inference wrapper every artifact runs (two outputs, BatchNorms folded), in eval mode."""
    return ExportWrapper(fold_batchnorms(model)).eval()


def example_inputs(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = size
    return torch.zeros(1, 3, h, w), torch.full((1, 1, h, w), 0.5)


def _encoded(item: dict) -> tuple[torch.Tensor, torch.Tensor]:
    img, tri = encode_inputs(item["image"], item["trimap"])
    return torch.from_numpy(img[None]), torch.from_numpy(tri[None])


def quantize(module: torch.nn.Module, size: tuple[int, int], calib_set, policy: PrecisionPolicy,
             limit: int | None = None) -> torch.fx.GraphModule:
    """PT2E static INT8 of ``module`` for XNNPACK, calibrated on ``calib_set`` (the first ``limit`` samples)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(module, example_inputs(size)).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    quantizer.set_filter_function(policy.pt2e_filter(graph))
    prepared = prepare_pt2e(graph, quantizer)
    n = len(calib_set) if limit is None else min(limit, len(calib_set))
    with torch.no_grad():
        for i in range(n):
            prepared(*_encoded(calib_set[i]))
    return convert_pt2e(prepared)


def delegation(graph_module) -> dict:
    """How much of a lowered graph XNNPACK runs: operators inside its subgraphs against those outside. The
    share counts computing operators (INT8's quantize/dequantize conversions are not counted, tuple access
    never); ``undelegated`` lists every operator left outside, conversions included."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    ops = {k: v for k, v in info.delegation_by_operator.items() if k not in BOOKKEEPING}
    compute = {k: v for k, v in ops.items() if not any(c in k for c in CONVERSIONS)}
    inside = sum(v.delegated for v in compute.values())
    outside = sum(v.non_delegated for v in compute.values())
    return {"backend": "XnnpackBackend", "subgraphs": info.num_delegated_subgraphs, "delegated_ops": inside,
            "undelegated_ops": outside, "share": inside / (inside + outside) if inside + outside else 0.0,
            "undelegated": {k: v.non_delegated for k, v in sorted(ops.items()) if v.non_delegated}}


def describe_delegation(d: dict) -> str:
    """One line for the export log."""
    rest = ", ".join(f"{op} ×{n}" for op, n in d["undelegated"].items()) or "none"
    return (f"{d['share']:.1%} of {d['delegated_ops'] + d['undelegated_ops']} computing operators delegated to XNNPACK in "
            f"{d['subgraphs']} subgraph(s); not delegated: {rest}")


def lower(module: torch.nn.Module, size: tuple[int, int]) -> tuple[bytes, dict]:
    """``module`` (eager, or a converted PT2E graph) as ExecuTorch program bytes, XNNPACK-delegated, and the
    :func:`delegation` of its graph."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(module, example_inputs(size))
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    report = delegation(edge.exported_program().graph_module)
    return edge.to_executorch().buffer, report


# ----------------------------------------------------------------------------------------- validation
def pte_alpha_fn(path: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """alpha(image, trimap) of a written program, run by the runtime's ExecuTorch loader."""
    from runtime.backends.executorch_backend import execute, load_method

    _program, method = load_method(path)
    return lambda img, tri: execute(method, img, tri)[0]


def check_fp32(model: AdaMatting, path: Path, size: tuple[int, int], out: Path) -> dict:
    """|Δα| of the program against PyTorch on seeded composites; ExportError beyond :data:`TOLERANCE`."""
    samples = validation_samples(size)
    run = pte_alpha_fn(path)
    diff = alpha_difference(run_torch(model, samples), [run(s.image, s.trimap) for s in samples])
    if diff["max_abs"] > TOLERANCE["max_abs"] or diff["mean_abs"] > TOLERANCE["mean_abs"]:
        raise ExportError(f"ExecuTorch FP32 alpha differs from PyTorch: max |Δα| {diff['max_abs']:.3g} (tolerance "
                          f"{TOLERANCE['max_abs']:g}), mean |Δα| {diff['mean_abs']:.3g} (tolerance "
                          f"{TOLERANCE['mean_abs']:g}); {out} not written")
    return {"reference": "pytorch fp32", **diff, "tolerance": TOLERANCE}


def compare_to_pytorch(model: AdaMatting, path: Path, val_set, limit: int | None = None) -> dict:
    """Metrics of PyTorch FP32 and of the program on the validation set, the drop and |Δα| between them."""
    @torch.no_grad()
    def torch_alpha(img, tri):
        return model(torch.from_numpy(img), torch.from_numpy(tri))["alpha"].numpy()

    ref, ref_alphas = evaluate_set(torch_alpha, val_set, limit, keep=True)
    cand, cand_alphas = evaluate_set(pte_alpha_fn(path), val_set, limit, keep=True)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref_alphas, cand_alphas)])
    return {"reference": "pytorch fp32", "samples": len(ref_alphas), "fp32": ref, "quantized": cand,
            "drop": {k: cand[k] - ref[k] for k in ref},
            "alpha_vs_fp32": {"max_abs": float(diffs.max()), "mean_abs": float(diffs.mean())}}


# --------------------------------------------------------------------------------------------- export
def export_pte(model: AdaMatting, out: str | Path, precision: str, size: tuple[int, int] = (512, 512), *,
               calib_set=None, val_set=None, policy: PrecisionPolicy | None = None, checkpoint_sha256: str = "",
               calib_limit: int | None = None, val_limit: int | None = None) -> Manifest:
    """Write ``out`` (a ``.pte``) of ``precision`` (fp32 | int8) and its manifest; see the module doc."""
    precision = str(precision)
    if precision not in PRECISIONS:
        raise ExportError(f"unknown ExecuTorch precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    out = Path(out)
    size = check_input_size(model.cfg, size)
    model = model.eval()
    module = export_module(model)
    calibration = None
    if precision == Precision.INT8:
        if calib_set is None:
            raise ExportError("ExecuTorch INT8 needs a calibration set")
        check_set_size(calib_set, list(size), "calibration")
        policy = policy if policy is not None else PrecisionPolicy.load(runtime="executorch")
        module = quantize(module, size, calib_set, policy, calib_limit)
        calibration = {"set": str(calib_set.path), "key": calib_set.meta.get("key"),
                       "config": calib_set.meta.get("config"),
                       "samples": len(calib_set) if calib_limit is None else min(calib_limit, len(calib_set)),
                       "tool": "torchao prepare_pt2e / convert_pt2e", "scheme": QUANTIZATION,
                       "policy": policy.source}
    if val_set is not None:
        check_set_size(val_set, list(size), "validation")
    program, report = lower(module, size)
    manifest = Manifest(backend="executorch", precision=precision, model_config=model.cfg.to_dict(),
                        input_size=list(size), pu_steps=model.cfg.pu_steps, checkpoint_sha256=checkpoint_sha256,
                        tools=tool_versions("executorch", "torchao"), calibration=calibration,
                        extra={"delegation": report, "partitioner": "XnnpackPartitioner", "method": "forward"})
    with atomic_path(out) as tmp:
        tmp.write_bytes(program)
        if precision == Precision.FP32:
            manifest.validation = check_fp32(model, tmp, size, out)
        elif val_set is not None:
            manifest.validation = compare_to_pytorch(model, tmp, val_set, val_limit)
    write_manifest(out, manifest)
    return manifest


def build(job: ExportJob) -> None:
    """``export all``: the FP32 and INT8 programs, each with its delegation in the export log."""
    for precision in TARGET.precisions:
        path = job.artifact(TARGET, precision)
        m = export_pte(job.model, path, precision, job.size, calib_set=job.cal, val_set=job.val,
                       checkpoint_sha256=job.checkpoint_sha)
        job.log(f"export {TARGET.name}: {path.name}: {describe_delegation(m.extra['delegation'])}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--out", type=out_folder, default="out/export", help="folder for the .pte programs and their manifests")
    add_size_argument(p)
    p.add_argument("--precisions", nargs="+", action=Distinct, choices=PRECISIONS, default=list(PRECISIONS))
    p.add_argument("--calib", default="calib", help="calibration set config for INT8 (TOML or embedded name)")
    p.add_argument("--val", default="val", help="validation set config for the INT8 accuracy report")
    add_limit_arguments(p)
    p.add_argument("--cache", type=out_folder, default="cache/sets")


def run(args) -> int:
    """``adamat export executorch``: write each program and print its accuracy and delegation."""
    why_not = TARGET.not_buildable()
    if why_not:
        raise ExportError(f"the ExecuTorch target {why_not}")
    check_folder(args.out)
    model, _ = load_model(args.checkpoint)
    size = check_input_size(model.cfg, args.size)
    cal = composited_set(args.calib, size, Path(args.cache)) if "int8" in args.precisions else None
    val = composited_set(args.val, size, Path(args.cache)) if "int8" in args.precisions else None
    sha = file_sha256(args.checkpoint)
    for precision in args.precisions:
        path = artifact_path(args.out, model.cfg.name, size, TARGET.file_tag(precision), suffix=TARGET.suffix)
        m = export_pte(model, path, precision, size, calib_set=cal, val_set=val, checkpoint_sha256=sha,
                       calib_limit=args.calib_limit, val_limit=args.val_limit)
        print(f"{path}  {describe_validation(m.validation, 'PyTorch FP32')}\n"
              f"  {describe_delegation(m.extra['delegation'])}")
    return 0


def band_refiner(model, out: Path, metadata: dict) -> dict:
    """The band refiner as an ExecuTorch program, XNNPACK-delegated, FP32, of the runtime's fixed batch of
    tiles (:func:`export.band_refiner_graph.tile_batch`), checked by the runtime's ExecuTorch loader against
    PyTorch."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from export.band_refiner_graph import checked, example_inputs, tile_batch

    shape = tile_batch()
    exported = torch.export.export(model.eval(), tuple(example_inputs(*shape)))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch().buffer
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(program)
        return checked(model, Path(tmp), 1e-4, runtimes=["executorch"], shapes=(shape,))
