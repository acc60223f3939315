"""INT8 ONNX for onnxruntime (CPU, Android via onnxruntime mobile): static QDQ quantization calibrated on the
composited calibration set, per-channel weights.

Activations are uint8 with asymmetric ranges (what onnxruntime's CPU kernels run fastest); weights are int8,
symmetric, per output channel. The precision policy (export/precision.toml) names the nodes kept in
float (``nodes_to_exclude``). (TensorRT needs symmetric int8 activations too: that variant is built by
the TensorRT target.) The result is checked against the FP32 ONNX model on the composited validation set
and both numbers are recorded in its manifest.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from common.encoding import encode_inputs
from common.manifest import Manifest, check_expected, load_manifest, tool_versions
from evaluation.protocol import evaluate_set
from export.errors import ExportError
from export.job import check_set_size
from export.onnx_graph import save_onnx
from export.precision import PrecisionPolicy
from runtime.backends.onnxruntime_backend import SESSION_CONFIG, inference_session

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


class SetReader:
    """onnxruntime CalibrationDataReader over a composited set, encoded as the model expects."""

    def __init__(self, cset, limit: int | None = None):
        self.cset, self.n, self.i = cset, len(cset) if limit is None else min(limit, len(cset)), 0

    def get_next(self):
        if self.i >= self.n:
            return None
        item = self.cset[self.i]
        self.i += 1
        img, tri = encode_inputs(item["image"], item["trimap"])
        return {"image": img[None], "trimap": tri[None]}

    def rewind(self):
        self.i = 0


def ort_alpha_fn(path: str | Path):
    sess = inference_session(path)
    return lambda img, tri: sess.run(["alpha"], {"image": img, "trimap": tri})[0]


def compare_to_fp32(fp32_path: Path, candidate_path: Path, val_set, limit: int | None = None) -> dict:
    """Metrics of both on the validation set, the drop (candidate − FP32) and |Δα| between them."""
    ref, ref_alphas = evaluate_set(ort_alpha_fn(fp32_path), val_set, limit, keep=True)
    cand, cand_alphas = evaluate_set(ort_alpha_fn(candidate_path), val_set, limit, keep=True)
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(ref_alphas, cand_alphas)])
    return {"samples": len(ref_alphas), "fp32": ref, "quantized": cand,
            "drop": {k: cand[k] - ref[k] for k in ref},
            "alpha_vs_fp32": {"max_abs": float(diffs.max()), "mean_abs": float(diffs.mean())}}


def check_method(method: str) -> None:
    if method not in CALIBRATION_METHODS:
        raise ExportError(f"unknown calibration method {method!r}; use one of {', '.join(CALIBRATION_METHODS)}")


def quantize_qdq(src: str | Path, dst: str | Path, reader, *, method: str = "minmax",
                 symmetric_activations: bool = False, nodes_to_exclude: list[str] | None = None,
                 nodes_to_quantize: list[str] | None = None) -> None:
    """onnxruntime static quantization with this project's settings: QDQ format, int8 weights symmetric per
    output channel, uint8 asymmetric activations (or int8 symmetric, TensorRT's) calibrated from ``reader``."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    check_method(method)
    cal_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[method]
    quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, calibrate_method=cal_method,
                    nodes_to_exclude=nodes_to_exclude or [], nodes_to_quantize=nodes_to_quantize or [],
                    extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True})


def quantize_with_policy(fp32_path: str | Path, out: str | Path, reader, policy: PrecisionPolicy, *,
                         also_float: Callable[[object], bool] = lambda node: False, **settings) -> list[str]:
    """``fp32_path`` pre-processed and quantized to ``out`` (:func:`quantize_qdq` with ``settings``), the nodes
    of ``policy`` and those for which ``also_float(node)`` kept float; returns the names of those nodes."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="int8-pre-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        proto = onnx.load(str(pre), load_external_data=False)
        nodes_to_exclude = policy.float_nodes(proto) + [n.name for n in proto.graph.node if also_float(n)]
        quantize_qdq(pre, out, reader, nodes_to_exclude=nodes_to_exclude, **settings)
    return nodes_to_exclude


def quantize_onnx_int8(fp32_path: str | Path, out: str | Path, calib_set, val_set=None, *,
                       method: str = "minmax", policy: PrecisionPolicy | None = None,
                       symmetric_activations: bool = False, calib_limit: int | None = None,
                       val_limit: int | None = None) -> Manifest:
    """Quantize an exported FP32 ONNX (with manifest) to QDQ INT8; write ``out`` + manifest atomically."""
    fp32_path, out = Path(fp32_path), Path(out)
    src = load_manifest(fp32_path)
    check_expected(src, fp32_path, backend="onnxruntime", precision="fp32")
    check_method(method)
    check_set_size(calib_set, src.input_size, "calibration")
    if val_set is not None:
        check_set_size(val_set, src.input_size, "validation")
    work = Path(tempfile.mkdtemp(prefix="int8-"))
    try:
        import onnx

        policy = policy if policy is not None else PrecisionPolicy.load(runtime="onnxruntime")
        q = work / "int8.onnx"
        nodes_to_exclude = quantize_with_policy(fp32_path, q, SetReader(calib_set, calib_limit), policy,
                                                method=method, symmetric_activations=symmetric_activations)
        report = compare_to_fp32(fp32_path, q, val_set, val_limit) if val_set is not None else {}
        manifest = Manifest(**{**src.__dict__, "precision": "int8", "artifact_sha256": "",
                               "tools": tool_versions("onnx", "onnxruntime"),
                               "validation": {"reference": "onnxruntime fp32 (same export)", **report},
                               "calibration": {"set": str(calib_set.path), "key": calib_set.meta.get("key"),
                                               "config": calib_set.meta.get("config"), "method": method,
                                               "samples": min(len(calib_set), calib_limit or len(calib_set)),
                                               "activations": "int8 symmetric" if symmetric_activations else "uint8 asymmetric",
                                               "weights": "int8 symmetric per-channel",
                                               "policy": policy.source, "nodes_kept_float": nodes_to_exclude},
                               "extra": {**src.extra, "quantized_from": fp32_path.name,
                                         "onnxruntime_session_config": SESSION_CONFIG}})
        manifest.created = Manifest.__dataclass_fields__["created"].default_factory()
        proto = onnx.load(str(q))

        save_onnx(proto, out, manifest)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)
