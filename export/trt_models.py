"""The two ONNX models a TensorRT 11 engine is built from: FP16, and symmetric INT8 Q/DQ.

TensorRT 11 has no precision flags (no FP16/INT8 builder flags, no calibrators): networks are strongly typed
and run in the types the ONNX says. So precision is decided here, in the ONNX:

- **FP16** (:func:`make_fp16_onnx`): float tensors and weights in float16, inputs and outputs kept float32
  (a Cast at each end), and the precision policy's nodes (export/precision.toml) kept in float32 with
  Casts around them. The conversion is schema-driven: an input or output becomes float16 only where the
  op's ONNX schema types it with a type parameter that admits float16 (so e.g. ``Resize`` scales stay
  float32); ops whose schema has no float16 stay float32. (onnxconverter-common's
  ``convert_float_to_float16(keep_io_types=True)`` was tried first and produced invalid graphs on this
  model: a graph output that is also consumed inside the graph, ``trimap_prob``, and initializers shared
  between a blocked and a converted node both end up with mismatched types.)
- **INT8 Q/DQ** (:func:`make_int8_qdq_onnx`): symmetric int8 activations and weights (zero points 0),
  weights per output channel, the policy's nodes left unquantized. Made by NVIDIA ModelOpt when it is
  installed (``pip install "nvidia-modelopt[onnx]"``; that path is written against its documented API and
  is UNVERIFIED: the project's CI does not install ModelOpt), otherwise by onnxruntime's
  ``quantize_static`` through :func:`export.int8_qdq.quantize_onnx_int8` with symmetric activations. Its
  output is then made TensorRT-conformant (:func:`make_trt_conformant`: onnxruntime quantizes Conv biases
  to int32 through DequantizeLinear, which TensorRT does not take, so they are folded back to float) and
  checked against TensorRT's Q/DQ rules (:mod:`export.qdq_rules`).

Both are measured under onnxruntime (CPU) against the FP32 ONNX on the composited validation set
(:func:`export.int8_qdq.compare_to_fp32`), gated (:data:`DEFAULT_GATES`; an export over its gate raises
ExportError and writes nothing), and written atomically with a manifest (backend ``tensorrt``, artifact
``onnx``). This is the strongest check available without a GPU: it measures the graph TensorRT will run,
not TensorRT's kernels (its fusions, FP16 accumulation choices and INT8 tactics can differ slightly).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from common.manifest import Manifest, check_expected, load_manifest, tool_versions
from export.errors import ExportError
from export.int8_qdq import (
    SetReader,
    check_set_size,
    compare_to_fp32,
    quantize_onnx_int8,
)
from export.onnx_graph import save_onnx
from export.precision import PrecisionPolicy
from export.qdq_rules import check_or_raise

QUANTIZERS = ("auto", "onnxruntime", "modelopt")
# Accuracy gates against the FP32 ONNX under onnxruntime on the validation composites.
# FP16: float16 rounding of weights and activations only. Measured with the step-600 checkpoint: max |Δα|
#   2.6e-3, mean 6.7e-5 (128×128, 8 composites); 4.0e-3 / 6.2e-5 (512×512, the 32 `val` composites). With
#   an earlier shipped checkpoint (step 750): max 2.2e-2 at isolated pixels, with mean 2.3e-4
#   and SAD +0.008 % (512×512, `val`). The max gate is for a broken
#   conversion (wrong casts give max |Δα| near 1), the mean for systematic drift; gates.toml judges the
#   accuracy that matters (SAD, edges, the bokeh render) on every artifact.
# INT8: the same bound as the onnxruntime INT8 target (tests/test_export_onnx.py): the SAD on the unknown
#   region may grow by at most 10 % (0.3 absolute floor for near-zero SADs) and alpha may move by 0.03 on
#   average. Measured symmetric (TensorRT) INT8: SAD +3.8 % and mean |Δα| 0.018 (128×128); SAD +0.7 % and
#   0.016 (512×512) with the step-600 checkpoint. With the step-750 checkpoint the whole-frame mean
#   |Δα| once measured 0.042: not this graph's error but onnxruntime's. Its WeightBiasQuantization
#   transformer quantized the policy's float layers at load time (see
#   runtime.backends.onnxruntime_backend.SESSION_CONFIG); with it off, as every session here now runs,
#   SAD +0.5 % and mean |Δα| 0.014 (512×512, `val`), so the bound is back at 0.03.
DEFAULT_GATES = {
    "fp16": {"max_abs": 0.1, "mean_abs": 1e-3},
    "int8": {"sad_drop_rel": 0.10, "sad_drop_floor": 0.3, "mean_abs": 0.03},
}
TRT_NOTE = ("for TensorRT >= 11 (strongly typed; precision is what this ONNX says): build with "
            "export.trt_engine.build_engine or trtexec")


# ------------------------------------------------------------------------------------------------- FP16
def _fp16_slot(schema, index: int, is_input: bool) -> bool:
    """Whether formal input/output ``index`` of ``schema`` is a type parameter that admits float16."""
    from onnx.defs import OpSchema

    params = schema.inputs if is_input else schema.outputs
    if not params:
        return False
    if index >= len(params):
        if params[-1].option != OpSchema.FormalParameterOption.Variadic:
            return False
        index = len(params) - 1
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    return "tensor(float16)" in allowed.get(params[index].type_str, set())


def _has_typed_attribute(node) -> bool:
    """Ops whose output type comes from an attribute (RandomNormal dtype, ConstantOfShape value, ...)."""
    import onnx

    return any(a.name in ("dtype", "value", "to") or a.type in (onnx.AttributeProto.TENSOR,)
               for a in node.attribute)


def convert_to_fp16(proto, keep_float: list[str] = (), keep_float_ops: list[str] = ()):
    """FP16 copy of an FP32 ``proto``: float32 I/O, ``keep_float`` node names and ``keep_float_ops`` types in
    float32. Returns (proto, report) with the nodes kept in float32 and the initializer values clipped."""
    import onnx
    from onnx import numpy_helper

    FLOAT, FLOAT16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    src = onnx.shape_inference.infer_shapes(proto)
    g = src.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise ExportError("FP16 conversion: graphs with subgraphs (If/Loop/Scan) are not supported")
    opset = max(o.version for o in src.opset_import if o.domain in ("", "ai.onnx"))
    elem = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    consts = {i.name: i for i in g.initializer}
    for i in g.initializer:
        elem[i.name] = i.data_type
    keep_float, keep_float_ops = set(keep_float), set(keep_float_ops)

    avail: dict[str, dict[int, str]] = {x.name: {x.type.tensor_type.elem_type: x.name} for x in g.input}
    for name, t in consts.items():
        avail[name] = {t.data_type: name}
    new_nodes, new_inits, kept, clipped = [], [], [], 0
    used_names = {o for n in g.node for o in n.output} | set(consts) | {x.name for x in g.input}

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in used_names:
            name, k = f"{base}_{k}", k + 1
        used_names.add(name)
        return name

    def version(name: str, want: int) -> str:
        nonlocal clipped
        versions = avail[name]
        if want in versions:
            return versions[want]
        if name in consts and consts[name].data_type == FLOAT and want == FLOAT16:
            arr = numpy_helper.to_array(consts[name]).astype(np.float32)
            limit = float(np.finfo(np.float16).max)
            clipped += int(np.sum(np.abs(arr) > limit))
            t = numpy_helper.from_array(np.clip(arr, -limit, limit).astype(np.float16), fresh(f"{name}_fp16"))
            new_inits.append(t)
            versions[FLOAT16] = t.name
            return t.name
        have = next(iter(versions.values()))
        out = fresh(f"{name}_{'fp16' if want == FLOAT16 else 'fp32'}")
        new_nodes.append(onnx.helper.make_node("Cast", [have], [out], name=f"{out}_cast", to=want))
        versions[want] = out
        return out

    for node in g.node:
        node = _copy(node)
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(f"FP16 conversion: node {node.name} is in domain {node.domain!r}")
        schema = onnx.defs.get_schema(node.op_type, opset, "")
        is_cast = node.op_type == "Cast"
        blocked = (node.name in keep_float or node.op_type in keep_float_ops
                   or (not is_cast and _has_typed_attribute(node)))
        float_io = [i for i in (*node.input, *node.output) if i and elem.get(i) == FLOAT]
        if float_io and not blocked and not is_cast and not any(
                _fp16_slot(schema, k, True) for k, i in enumerate(node.input) if elem.get(i) == FLOAT):
            blocked = True  # the schema has no float16 for this op
        if blocked and float_io:
            kept.append(node.name)
        for k, inp in enumerate(node.input):
            if not inp or elem.get(inp) != FLOAT:
                continue
            if is_cast:
                want = FLOAT16 if (not blocked and FLOAT16 in avail[inp]) else next(iter(avail[inp]))
            else:
                want = FLOAT16 if (not blocked and _fp16_slot(schema, k, True)) else FLOAT
            node.input[k] = version(inp, want)
        for k, o in enumerate(node.output):
            if not o:
                continue
            t = elem.get(o, 0)
            if t == FLOAT:
                if is_cast:
                    if not blocked:
                        _set_attr(node, "to", FLOAT16)
                        t = FLOAT16
                elif not blocked and _fp16_slot(schema, k, False):
                    t = FLOAT16
            avail[o] = {t: o}
        new_nodes.append(node)

    for o in g.output:
        if avail.get(o.name, {FLOAT: o.name}).get(FLOAT) == o.name:
            continue  # produced in float32 under its own name
        inner = fresh(f"{o.name}_fp16")
        for n in new_nodes:
            for k, x in enumerate(n.input):
                if x == o.name:
                    n.input[k] = inner
            for k, x in enumerate(n.output):
                if x == o.name:
                    n.output[k] = inner
        new_nodes.append(onnx.helper.make_node("Cast", [inner], [o.name], name=f"{o.name}_to_fp32", to=FLOAT))

    out = onnx.ModelProto()
    out.CopyFrom(src)
    del out.graph.node[:], out.graph.value_info[:]
    out.graph.node.extend(new_nodes)
    used = {i for n in new_nodes for i in n.input}
    inits = [i for i in g.initializer if i.name in used] + [i for i in new_inits if i.name in used]
    del out.graph.initializer[:]
    out.graph.initializer.extend(inits)
    try:
        out = onnx.shape_inference.infer_shapes(out, strict_mode=True)
        onnx.checker.check_model(out, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"FP16 conversion produced an invalid graph: {e}") from None
    return out, {"nodes_kept_fp32": kept, "initializer_values_clipped": clipped,
                 "casts": sum(n.op_type == "Cast" for n in new_nodes) - sum(n.op_type == "Cast" for n in g.node)}


def _copy(node):
    import onnx

    n = onnx.NodeProto()
    n.CopyFrom(node)
    return n


def _set_attr(node, name: str, value: int) -> None:
    for a in node.attribute:
        if a.name == name:
            a.i = value
            return
    raise ExportError(f"node {node.name} has no attribute {name}")


def float_types(proto, names: list[str]) -> dict[str, list[int]]:
    """Element types of the float inputs/outputs (initializers included) of the named nodes."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(proto)
    g = inferred.graph
    elem = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    elem.update({i.name: i.data_type for i in g.initializer})
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    return {n.name: [elem[i] for i in (*n.input, *n.output) if i and elem.get(i) in floats]
            for n in g.node if n.name in set(names)}


# -------------------------------------------------------------------------------------------- INT8 Q/DQ
def make_trt_conformant(proto):
    """Fold int32 bias DequantizeLinear back to float initializers; drop unused opset imports.

    onnxruntime's QDQ quantizer stores Conv/Gemm biases as int32 with scale = input scale × weight scale;
    TensorRT dequantizes INT8 only and adds the float bias itself. The folded bias is exactly the value
    onnxruntime dequantized, so the model computes the same thing. Returns (proto, report)."""
    import onnx
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    rename, drop, folded = {}, set(), 0
    for n in g.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            continue
        if inits[n.input[0]].data_type != onnx.TensorProto.INT32 or n.output[0] in outputs:
            continue
        x = numpy_helper.to_array(inits[n.input[0]]).astype(np.float64)
        scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
        zp = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2] else 0.0
        if np.ndim(scale) == 1 and scale.size > 1:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1) % x.ndim
            shape = [1] * x.ndim
            shape[axis] = scale.size
            scale = scale.reshape(shape)
            zp = np.reshape(zp, shape) if np.ndim(zp) == 1 else zp
        value = ((x - zp) * scale).astype(np.float32)
        name = f"{n.input[0]}_float"
        g.initializer.append(numpy_helper.from_array(value, name))
        rename[n.output[0]] = name
        drop.add(n.output[0])
        folded += 1
    keep = [n for n in g.node if n.output[0] not in drop]
    for n in keep:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | outputs
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    domains = {n.domain for n in g.node} | {""}
    dropped = [o.domain for o in proto.opset_import if o.domain not in domains and o.domain != "ai.onnx"]
    live_ops = [o for o in proto.opset_import if o.domain in domains or o.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(live_ops)
    return proto, {"biases_folded_to_float": folded, "opset_imports_dropped": dropped}


def modelopt_available() -> bool:
    try:
        import modelopt.onnx.quantization  # noqa: F401
    except Exception:  # ImportError, or a broken install (it pulls CUDA wheels)
        return False
    return True


def _quantize_modelopt(fp32_path: Path, out: Path, calib_set, calib_limit, method: str, nodes_to_exclude):
    """UNVERIFIED (the project's CI does not install ModelOpt): written against the documented
    ``modelopt.onnx.quantization.quantize`` signature. Its output still goes through make_trt_conformant,
    the Q/DQ checker and the accuracy gate, so a wrong result cannot ship silently."""
    import re

    from modelopt.onnx.quantization import quantize

    reader, batches = SetReader(calib_set, calib_limit), []
    while (item := reader.get_next()) is not None:
        batches.append(item)
    data = {k: np.concatenate([b[k] for b in batches]) for k in ("image", "trimap")}
    quantize(onnx_path=str(fp32_path), quantize_mode="int8", calibration_data=data,
             calibration_method="max" if method == "minmax" else "entropy", calibration_eps=["cpu"],
             nodes_to_exclude=[re.escape(n) for n in nodes_to_exclude], high_precision_dtype="fp32",
             output_path=str(out))
    return {"quantizer": "nvidia-modelopt (unverified here)", "samples": len(batches), "method": method,
            "activations": "int8 symmetric", "weights": "int8 symmetric per-channel",
            "nodes_kept_float": list(nodes_to_exclude)}


def _gate_int8(report: dict, gate: dict) -> list[str]:
    problems = []
    sad, drop = report["fp32"]["SAD"], report["drop"]["SAD"]
    limit = max(gate["sad_drop_rel"] * sad, gate["sad_drop_floor"])
    if drop > limit:
        problems.append(f"SAD {sad:.3f} → {report['quantized']['SAD']:.3f} (drop {drop:+.3f} > {limit:.3f})")
    if report["alpha_vs_fp32"]["mean_abs"] > gate["mean_abs"]:
        problems.append(f"mean |Δα| {report['alpha_vs_fp32']['mean_abs']:.4f} > {gate['mean_abs']}")
    return problems


def _gate_fp16(report: dict, gate: dict) -> list[str]:
    d = report["alpha_vs_fp32"]
    return ([f"max |Δα| {d['max_abs']:.2e} > {gate['max_abs']:g}"] if d["max_abs"] > gate["max_abs"] else []) + \
           ([f"mean |Δα| {d['mean_abs']:.2e} > {gate['mean_abs']:g}"] if d["mean_abs"] > gate["mean_abs"] else [])


def _source(fp32_path: Path) -> Manifest:
    src = load_manifest(fp32_path)
    check_expected(src, fp32_path, backend="onnxruntime", precision="fp32")
    return src


def _finish(proto, out: Path, src: Manifest, fp32_path: Path, precision: str, report: dict, gate: dict,
            calibration: dict | None, extra: dict) -> Manifest:

    manifest = Manifest(**{**src.__dict__, "backend": "tensorrt", "precision": precision, "artifact_sha256": "",
                           "tools": tool_versions("onnx", "onnxruntime", "nvidia-modelopt"),
                           "validation": {"reference": "onnxruntime fp32 (same export)",
                                          "runtime": "onnxruntime CPU (the TensorRT engine itself is not run here)",
                                          **report, "gate": gate},
                           "calibration": calibration,
                           "extra": {**src.extra, "nodes": len(proto.graph.node), "artifact_type": "onnx",
                                     "derived_from": fp32_path.name,
                                     "fp32_sha256": src.artifact_sha256, "tensorrt": TRT_NOTE, **extra}})
    manifest.created = Manifest.__dataclass_fields__["created"].default_factory()
    save_onnx(proto, out, manifest)
    return manifest


def make_fp16_onnx(fp32_path: str | Path, out: str | Path, val_set=None, *, policy: PrecisionPolicy | None = None,
                   val_limit: int | None = None, gate: dict | None = None) -> Manifest:
    """FP16 ONNX for TensorRT from an exported FP32 ONNX (with manifest); gated; ``out`` + manifest written
    atomically. Without ``val_set`` nothing is measured (and the manifest says so)."""
    import onnx

    fp32_path, out = Path(fp32_path), Path(out)
    src = _source(fp32_path)
    if val_set is not None:
        check_set_size(val_set, src.input_size, "validation")
    policy = policy if policy is not None else PrecisionPolicy.load(runtime="tensorrt")
    gate = {**DEFAULT_GATES["fp16"], **(gate or {})}
    proto32 = onnx.load(str(fp32_path))
    keep = policy.float_nodes(proto32)
    proto, conv = convert_to_fp16(proto32, keep_float=keep, keep_float_ops=policy.op_types)
    work = Path(tempfile.mkdtemp(prefix="trt-fp16-"))
    try:
        report = _measure_and_gate(proto, work / "fp16.onnx", fp32_path, val_set, val_limit, _gate_fp16, gate,
                                   "FP16 ONNX differs from FP32 beyond its gate", out)
        extra = {"fp16": {**conv, "policy": policy.source, "policy_nodes": keep,
                          "io": "float32 (Cast at the graph's inputs and outputs)"}}
        return _finish(proto, out, src, fp32_path, "fp16", report, gate, None, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure_and_gate(proto, candidate: Path, fp32_path: Path, val_set, val_limit, gate_fn, gate: dict,
                      failure: str, out: Path) -> dict:
    """Save ``proto`` to ``candidate``, compare it with the FP32 model on ``val_set`` and apply the gate;
    an empty report without a validation set."""
    import onnx

    if val_set is None:
        return {}
    onnx.save(proto, str(candidate))
    report = compare_to_fp32(fp32_path, candidate, val_set, val_limit)
    problems = gate_fn(report, gate)
    if problems:
        raise ExportError(f"{failure} on {report['samples']} validation composites: {'; '.join(problems)}; "
                          f"{out} not written")
    return report


def make_int8_qdq_onnx(fp32_path: str | Path, out: str | Path, calib_set, val_set=None, *, method: str = "minmax",
                       policy: PrecisionPolicy | None = None, calib_limit: int | None = None,
                       val_limit: int | None = None, quantizer: str = "auto", gate: dict | None = None) -> Manifest:
    """Symmetric INT8 Q/DQ ONNX for TensorRT: calibrated on ``calib_set``, made TensorRT-conformant, checked
    (export.qdq_rules), measured on ``val_set`` and gated; ``out`` + manifest written atomically."""
    import onnx


    fp32_path, out = Path(fp32_path), Path(out)
    if quantizer not in QUANTIZERS:
        raise ExportError(f"unknown quantizer {quantizer!r}; use one of {', '.join(QUANTIZERS)}")
    src = _source(fp32_path)
    check_set_size(calib_set, src.input_size, "calibration")
    if val_set is not None:
        check_set_size(val_set, src.input_size, "validation")
    policy = policy if policy is not None else PrecisionPolicy.load(runtime="tensorrt")
    gate = {**DEFAULT_GATES["int8"], **(gate or {})}
    use_modelopt = quantizer == "modelopt" or (quantizer == "auto" and modelopt_available())
    if quantizer == "modelopt" and not modelopt_available():
        raise ExportError('quantizer "modelopt" asked for but modelopt.onnx is not installed '
                          '(pip install "nvidia-modelopt[onnx]")')
    work = Path(tempfile.mkdtemp(prefix="trt-int8-"))
    try:
        raw = work / "q.onnx"
        if use_modelopt:
            keep = policy.float_nodes(onnx.load(str(fp32_path), load_external_data=False))
            calibration = _quantize_modelopt(fp32_path, raw, calib_set, calib_limit, method, keep)
            calibration.update({"set": str(calib_set.path), "key": calib_set.meta.get("key"),
                                "config": calib_set.meta.get("config"), "policy": policy.source})
        else:
            # the onnxruntime quantizer applies the policy, checks the set size and writes atomically;
            # its accuracy is measured below, on the TensorRT-conformant graph
            m = quantize_onnx_int8(fp32_path, raw, calib_set, None, method=method, policy=policy,
                                   symmetric_activations=True, calib_limit=calib_limit)
            calibration = {**m.calibration, "quantizer": "onnxruntime quantize_static (QDQ, symmetric)"}
        proto, fixes = make_trt_conformant(onnx.load(str(raw)))
        warnings = check_or_raise(proto, f"INT8 Q/DQ model for {out.name}", calibration.get("nodes_kept_float"))
        report = _measure_and_gate(proto, work / "trt.onnx", fp32_path, val_set, val_limit, _gate_int8, gate,
                                   "INT8 Q/DQ ONNX loses too much against FP32", out)
        extra = {"qdq": {**fixes, "rules": "export.qdq_rules: conformant",
                         "warnings": [str(w) for w in warnings][:20], "warning_count": len(warnings)}}
        return _finish(proto, out, src, fp32_path, "int8", report, gate, calibration, extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
