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

    src = onnx.shape_inference.infer_shapes(proto)
    g = src.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in g.node for a in n.attribute):
        raise ExportError("FP16 conversion: graphs with subgraphs (If/Loop/Scan) are not supported")
    rewrite = _Fp16Rewrite(src, set(keep_float), set(keep_float_ops))
    for node in g.node:
        rewrite.add_node(node)
    rewrite.cast_outputs_to_fp32()
    return rewrite.model(), rewrite.report()


class _Fp16Rewrite:
    """One FP16 rewrite of a shape-inferred ``src``: the types each tensor is available in (under which name),
    the names in use, the nodes and float16 initializers made, the nodes kept in float32, the values clipped."""

    def __init__(self, src, keep_float: set[str], keep_float_ops: set[str]):
        g = src.graph
        self.src, self.keep_float, self.keep_float_ops = src, keep_float, keep_float_ops
        self.opset = max(o.version for o in src.opset_import if o.domain in ("", "ai.onnx"))
        self.elem = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
        self.consts = {i.name: i for i in g.initializer}
        self.elem.update({i.name: i.data_type for i in g.initializer})
        self.avail: dict[str, dict[int, str]] = {x.name: {x.type.tensor_type.elem_type: x.name} for x in g.input}
        self.avail.update({name: {t.data_type: name} for name, t in self.consts.items()})
        self.used_names = {o for n in g.node for o in n.output} | set(self.consts) | {x.name for x in g.input}
        self.nodes, self.inits, self.kept, self.clipped = [], [], [], 0

    def fresh(self, base: str) -> str:
        """``base``, or ``base_k`` with the first free ``k``; taken from then on."""
        name, k = base, 1
        while name in self.used_names:
            name, k = f"{base}_{k}", k + 1
        self.used_names.add(name)
        return name

    def version(self, name: str, want: int) -> str:
        """The name of tensor ``name`` in element type ``want``: a float16 copy of a float32 initializer
        (clipped to the float16 range) or a Cast, made on first asking."""
        from onnx import TensorProto

        versions = self.avail[name]
        if want not in versions:
            const = name in self.consts and self.consts[name].data_type == TensorProto.FLOAT
            made = self._fp16_initializer(name) if const and want == TensorProto.FLOAT16 else self._cast(name, want)
            versions[want] = made
        return versions[want]

    def _fp16_initializer(self, name: str) -> str:
        from onnx import numpy_helper

        arr = numpy_helper.to_array(self.consts[name]).astype(np.float32)
        limit = float(np.finfo(np.float16).max)
        self.clipped += int(np.sum(np.abs(arr) > limit))
        t = numpy_helper.from_array(np.clip(arr, -limit, limit).astype(np.float16), self.fresh(f"{name}_fp16"))
        self.inits.append(t)
        return t.name

    def _cast(self, name: str, want: int) -> str:
        import onnx

        have = next(iter(self.avail[name].values()))
        out = self.fresh(f"{name}_{'fp16' if want == onnx.TensorProto.FLOAT16 else 'fp32'}")
        self.nodes.append(onnx.helper.make_node("Cast", [have], [out], name=f"{out}_cast", to=want))
        return out

    def add_node(self, node) -> None:
        """Append a copy of ``node`` in float16 where its schema allows and it is not kept in float32."""
        import onnx

        node = _copy(node)
        if node.domain not in ("", "ai.onnx"):
            raise ExportError(f"FP16 conversion: node {node.name} is in domain {node.domain!r}")
        schema = onnx.defs.get_schema(node.op_type, self.opset, "")
        float_io = [i for i in (*node.input, *node.output) if i and self.elem.get(i) == onnx.TensorProto.FLOAT]
        blocked = self._blocked(node, schema, bool(float_io))
        if blocked and float_io:
            self.kept.append(node.name)
        self._rewrite_inputs(node, schema, blocked)
        self._rewrite_outputs(node, schema, blocked)
        self.nodes.append(node)

    def _blocked(self, node, schema, has_float_io: bool) -> bool:
        """Whether ``node`` stays float32: named, of a kept type, typed by an attribute, or with no float16
        in its schema for its float inputs."""
        from onnx import TensorProto

        is_cast = node.op_type == "Cast"
        if (node.name in self.keep_float or node.op_type in self.keep_float_ops
                or (not is_cast and _has_typed_attribute(node))):
            return True
        return has_float_io and not is_cast and not any(
            _fp16_slot(schema, k, True) for k, i in enumerate(node.input) if self.elem.get(i) == TensorProto.FLOAT)

    def _rewrite_inputs(self, node, schema, blocked: bool) -> None:
        """Point each float input at its version in the type the node takes it in (a Cast keeps the one it has)."""
        from onnx import TensorProto

        for k, inp in enumerate(node.input):
            if not inp or self.elem.get(inp) != TensorProto.FLOAT:
                continue
            if node.op_type == "Cast":
                fp16 = not blocked and TensorProto.FLOAT16 in self.avail[inp]
                want = TensorProto.FLOAT16 if fp16 else next(iter(self.avail[inp]))
            else:
                want = TensorProto.FLOAT16 if (not blocked and _fp16_slot(schema, k, True)) else TensorProto.FLOAT
            node.input[k] = self.version(inp, want)

    def _rewrite_outputs(self, node, schema, blocked: bool) -> None:
        """Record each output's type: float16 where converted (a Cast to float becomes a Cast to float16)."""
        from onnx import TensorProto

        for k, o in enumerate(node.output):
            if not o:
                continue
            t = self.elem.get(o, 0)
            if t == TensorProto.FLOAT and not blocked:
                if node.op_type == "Cast":
                    _set_attr(node, "to", TensorProto.FLOAT16)
                    t = TensorProto.FLOAT16
                elif _fp16_slot(schema, k, False):
                    t = TensorProto.FLOAT16
            self.avail[o] = {t: o}

    def cast_outputs_to_fp32(self) -> None:
        """Each graph output not made in float32 under its own name: made as ``<name>_fp16`` and cast back."""
        import onnx

        for o in self.src.graph.output:
            if self.avail.get(o.name, {onnx.TensorProto.FLOAT: o.name}).get(onnx.TensorProto.FLOAT) == o.name:
                continue  # produced in float32 under its own name
            inner = self.fresh(f"{o.name}_fp16")
            self._rename(o.name, inner)
            self.nodes.append(onnx.helper.make_node("Cast", [inner], [o.name], name=f"{o.name}_to_fp32",
                                                    to=onnx.TensorProto.FLOAT))

    def _rename(self, old: str, new: str) -> None:
        for n in self.nodes:
            for k, x in enumerate(n.input):
                if x == old:
                    n.input[k] = new
            for k, x in enumerate(n.output):
                if x == old:
                    n.output[k] = new

    def model(self):
        """The new model: the rewritten nodes and the initializers they use, shape-inferred and checked."""
        import onnx

        out = onnx.ModelProto()
        out.CopyFrom(self.src)
        del out.graph.node[:], out.graph.value_info[:]
        out.graph.node.extend(self.nodes)
        used = {i for n in self.nodes for i in n.input}
        del out.graph.initializer[:]
        out.graph.initializer.extend([i for i in (*self.src.graph.initializer, *self.inits) if i.name in used])
        try:
            out = onnx.shape_inference.infer_shapes(out, strict_mode=True)
            onnx.checker.check_model(out, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            raise ExportError(f"FP16 conversion produced an invalid graph: {e}") from None
        return out

    def report(self) -> dict:
        casts = sum(n.op_type == "Cast" for n in self.nodes) - sum(n.op_type == "Cast" for n in self.src.graph.node)
        return {"nodes_kept_fp32": self.kept, "initializer_values_clipped": self.clipped, "casts": casts}


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
    g = proto.graph
    outputs = {o.name for o in g.output}
    folds = _fold_int32_biases(g, outputs)
    _bypass(g, dict(folds))
    used = {i for n in g.node for i in n.input} | outputs
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return proto, {"biases_folded_to_float": len(folds), "opset_imports_dropped": _drop_unused_opsets(proto)}


def _fold_int32_biases(g, outputs: set[str]) -> list[tuple[str, str]]:
    """Add ``<bias>_float`` for each int32 DequantizeLinear of an initializer (not a graph output);
    returns (DequantizeLinear output, float initializer) pairs."""
    from onnx import numpy_helper

    inits = {i.name: i for i in g.initializer}
    folds = []
    for n in g.node:
        if _is_int32_dq(n, inits, outputs):
            name = f"{n.input[0]}_float"
            g.initializer.append(numpy_helper.from_array(_dequantized(n, inits), name))
            folds.append((n.output[0], name))
    return folds


def _is_int32_dq(n, inits: dict, outputs: set[str]) -> bool:
    """A DequantizeLinear of an int32 initializer whose output is not a graph output."""
    import onnx

    return (n.op_type == "DequantizeLinear" and n.input[0] in inits
            and inits[n.input[0]].data_type == onnx.TensorProto.INT32 and n.output[0] not in outputs)


def _dequantized(n, inits: dict) -> np.ndarray:
    """What DequantizeLinear ``n`` makes of its initializers (per axis where the scale is a vector), float32."""
    from onnx import numpy_helper

    x = numpy_helper.to_array(inits[n.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
    zp = numpy_helper.to_array(inits[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2] else 0.0
    if np.ndim(scale) == 1 and scale.size > 1:
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1) % x.ndim
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
        zp = np.reshape(zp, shape) if np.ndim(zp) == 1 else zp
    return ((x - zp) * scale).astype(np.float32)


def _bypass(g, rename: dict[str, str]) -> None:
    """Drop the nodes making the tensors in ``rename``; their consumers read the new names instead."""
    keep = [n for n in g.node if n.output[0] not in rename]
    for n in keep:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
    del g.node[:]
    g.node.extend(keep)


def _drop_unused_opsets(proto) -> list[str]:
    """Remove the opset imports of domains no node uses (the default domain stays); returns their domains."""
    domains = {n.domain for n in proto.graph.node} | {""}
    dropped = [o.domain for o in proto.opset_import if o.domain not in domains and o.domain != "ai.onnx"]
    live_ops = [o for o in proto.opset_import if o.domain in domains or o.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(live_ops)
    return dropped


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
    fp32_path, out = Path(fp32_path), Path(out)
    if quantizer not in QUANTIZERS:
        raise ExportError(f"unknown quantizer {quantizer!r}; use one of {', '.join(QUANTIZERS)}")
    src = _source(fp32_path)
    check_set_size(calib_set, src.input_size, "calibration")
    if val_set is not None:
        check_set_size(val_set, src.input_size, "validation")
    policy = policy if policy is not None else PrecisionPolicy.load(runtime="tensorrt")
    gate = {**DEFAULT_GATES["int8"], **(gate or {})}
    use_modelopt = _use_modelopt(quantizer)
    work = Path(tempfile.mkdtemp(prefix="trt-int8-"))
    try:
        raw = work / "q.onnx"
        calibration = _quantize_int8(fp32_path, raw, calib_set, calib_limit, method, policy, use_modelopt)
        proto, qdq = _conformant_qdq(raw, out, calibration)
        report = _measure_and_gate(proto, work / "trt.onnx", fp32_path, val_set, val_limit, _gate_int8, gate,
                                   "INT8 Q/DQ ONNX loses too much against FP32", out)
        return _finish(proto, out, src, fp32_path, "int8", report, gate, calibration, {"qdq": qdq})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _use_modelopt(quantizer: str) -> bool:
    """ModelOpt quantizes when asked for, or for ``auto`` when installed; asked for and missing is an error."""
    use_modelopt = quantizer == "modelopt" or (quantizer == "auto" and modelopt_available())
    if quantizer == "modelopt" and not modelopt_available():
        raise ExportError('quantizer "modelopt" asked for but modelopt.onnx is not installed '
                          '(pip install "nvidia-modelopt[onnx]")')
    return use_modelopt


def _quantize_int8(fp32_path: Path, raw: Path, calib_set, calib_limit, method: str, policy: PrecisionPolicy,
                   use_modelopt: bool) -> dict:
    """Quantize ``fp32_path`` to ``raw`` with ModelOpt or onnxruntime; returns the calibration record."""
    import onnx

    if use_modelopt:
        keep = policy.float_nodes(onnx.load(str(fp32_path), load_external_data=False))
        calibration = _quantize_modelopt(fp32_path, raw, calib_set, calib_limit, method, keep)
        calibration.update({"set": str(calib_set.path), "key": calib_set.meta.get("key"),
                            "config": calib_set.meta.get("config"), "policy": policy.source})
        return calibration
    # the onnxruntime quantizer applies the policy, checks the set size and writes atomically;
    # its accuracy is measured by the caller, on the TensorRT-conformant graph
    m = quantize_onnx_int8(fp32_path, raw, calib_set, None, method=method, policy=policy,
                           symmetric_activations=True, calib_limit=calib_limit)
    return {**m.calibration, "quantizer": "onnxruntime quantize_static (QDQ, symmetric)"}


def _conformant_qdq(raw: Path, out: Path, calibration: dict):
    """The quantized ``raw`` made TensorRT-conformant and checked against the Q/DQ rules: (proto, record)."""
    import onnx

    proto, fixes = make_trt_conformant(onnx.load(str(raw)))
    warnings = check_or_raise(proto, f"INT8 Q/DQ model for {out.name}", calibration.get("nodes_kept_float"))
    return proto, {**fixes, "rules": "export.qdq_rules: conformant",
                   "warnings": [str(w) for w in warnings][:20], "warning_count": len(warnings)}
