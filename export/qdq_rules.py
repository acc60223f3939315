"""The Q/DQ rules a TensorRT-bound INT8 ONNX must follow, checked on the graph before anything is built.

TensorRT (10 and 11) quantizes only explicitly: it reads QuantizeLinear/DequantizeLinear (Q/DQ) nodes and
keeps exactly the precisions they say. Its ONNX parser refuses some Q/DQ graphs at parse time and quietly
reinterprets others, so a model that runs correctly under onnxruntime can fail to build, or build into an
engine that computes something else. :func:`check` finds those cases and names the offending nodes;
:func:`check_or_raise` turns them into an :class:`~export.errors.ExportError`.

Rules (id — what — where it comes from):

- ``domain`` — Q/DQ nodes are standard ONNX ops (domain ``""``/``ai.onnx``), not ``com.microsoft`` contrib
  ops (onnxruntime's ``UseQDQContribOps``): the TensorRT ONNX parser registers importers for the standard
  ops only (onnx/onnx-tensorrt ``onnxOpImporters.cpp``).
- ``opset`` — the default-domain opset is ≥ 13: the ``axis`` attribute, hence per-channel Q/DQ, exists
  from opset 13; for older models the parser assumes axis 0 (onnx-tensorrt ``QuantDequantLinearHelper``).
- ``zero-point-missing`` — every Q/DQ carries an explicit zero point. Without one, ONNX means *uint8* while
  TensorRT defaults to *int8*: onnxruntime (where accuracy is measured here) and TensorRT would compute
  different things (onnx-tensorrt: "ONNX default is UINT8, TRT will default to INT8").
- ``zero-point-int8`` — the zero point (hence the quantized type) is int8, not uint8: TensorRT's explicit
  quantization is signed INT8 (TensorRT "Working with Quantized Types": symmetric scheme, INT8 signed);
  the parser warns and silently substitutes INT8 for a uint8 zero point, and refuses uint8 DequantizeLinear
  input without the DLA-only flag ``kENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA``.
- ``zero-point-nonzero`` — every zero point is 0 (symmetric): parser error "Non-zero zero point is not
  supported"; onnx-tensorrt operators.md: "``x_zero_point`` must be zero" / "``y_zero_point`` must be 0".
- ``constant-params`` — scales and zero points are initializers (or Constant nodes), so they can be checked
  here; the parser verifies concrete scales at parse time.
- ``scale-positive`` / ``scale-finite`` — every scale is > 0 (parser: "Scale coefficients must all be
  positive") and finite (an inf/NaN scale makes the tensor meaningless; checked here, not by the parser).
- ``scale-zero-point-size`` — scale and zero point have the same number of elements (parser: "The scale and
  zero point must have the same volume").
- ``dq-input-type`` — DequantizeLinear dequantizes int8 only: an int32 (e.g. onnxruntime's quantized Conv
  bias) or uint8 input is not a TensorRT Q/DQ type (onnx-tensorrt operators.md: DequantizeLinear types INT8;
  ``checkQuantizationDatatype``: FP8, INT8, INT4, FP4 only). TensorRT adds the float bias itself.
- ``weights-per-channel`` — the weight input of Conv, ConvTranspose, Gemm and MatMul (an initializer through
  DequantizeLinear, or Q→DQ) is quantized per output channel: Conv axis 0 (KCRS), ConvTranspose axis 1
  (CKRS), MatMul axis 1 (K×N), Gemm axis 0 with transB=1 else 1; the scale is a vector of exactly that many
  elements (parser: "The number of scales is not equal to the number of output channels"). Per-tensor
  weights parse, but this project requires per-channel weights (accuracy); a single-output-channel weight
  counts as per-channel.
- ``activation-per-tensor`` — Q/DQ of activations (anything but weights) have one scale: TensorRT quantizes
  activations per tensor (onnx-tensorrt 8.x ``QuantDequantLinearHelper``: "Activations-quantization does not
  support per-axis quantization"; per-channel scales are meant for weights).
- ``q-without-dq`` — a QuantizeLinear output feeds only DequantizeLinear nodes with the same scale and zero
  point, and is not a graph output: explicit quantization is expressed as Q/DQ pairs (TensorRT "Explicit
  Quantization": each fake-quantization exports as a QuantizeLinear + DequantizeLinear pair); an int8 tensor
  flowing into another op or out of the network is not what the float model meant.
- ``weighted-op-float-input`` (warning) — a Conv/ConvTranspose/Gemm/MatMul with int8 weights whose data input
  is not dequantized: TensorRT then runs it in float on dequantized weights (no INT8 kernel); TensorRT's
  Q/DQ placement recommendations say to quantize all inputs of weighted operations.
- ``policy-float`` — a node the precision policy keeps in float has a dequantized weight (only when the
  policy's node names are given).

Warnings are reported but do not make :func:`check_or_raise` fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export.errors import ExportError
from export.graph_index import STANDARD_DOMAINS, GraphIndex, node_attr

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# weighted op → (index of its weight input, function (node, weight rank) → output-channel axis)
WEIGHTED_OPS = {
    "Conv": (1, lambda node, rank: 0),
    "ConvTranspose": (1, lambda node, rank: 1),
    "MatMul": (1, lambda node, rank: rank - 1),
    "Gemm": (1, lambda node, rank: 0 if node_attr(node, "transB", 0) else 1),
}
MIN_OPSET = 13


@dataclass(frozen=True)
class Violation:
    node: str       # node name (or the tensor name for graph-level rules)
    rule: str       # rule id, see the module docstring
    detail: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.node}: [{self.rule}] {self.detail}"


def _name(node) -> str:
    return node.name or f"<{node.op_type} → {node.output[0] if node.output else '?'}>"


def _weight_source(g: GraphIndex, dq) -> str | None:
    """The initializer a DequantizeLinear dequantizes: directly, or through a QuantizeLinear (Q→DQ)."""
    x = dq.input[0]
    if g.tensor(x) is not None:
        return x
    q = g.producer.get(x)
    if q is not None and q.op_type == "QuantizeLinear" and g.tensor(q.input[0]) is not None:
        return q.input[0]
    return None


def _weighted_nodes(g: GraphIndex):
    """(weighted node, its output-channel axis function, the DequantizeLinear of its weight, the initializer
    behind that, or None) for each weighted op whose weight input is dequantized, in graph order."""
    for n in g.proto.graph.node:
        spec = WEIGHTED_OPS.get(n.op_type)
        if spec is None or len(n.input) <= spec[0]:
            continue
        dq = g.producer.get(n.input[spec[0]])
        if dq is not None and dq.op_type == "DequantizeLinear":
            yield n, spec[1], dq, _weight_source(g, dq)


def _weight_uses(g: GraphIndex) -> dict[str, list[tuple]]:
    """DequantizeLinear output → [(weighted node, output-channel axis, weight shape)] for weight inputs."""
    uses: dict[str, list[tuple]] = {}
    for n, channel_axis, dq, src in _weighted_nodes(g):
        if src is None:
            continue
        shape = list(g.tensor(src).dims)
        uses.setdefault(dq.output[0], []).append((n, channel_axis(n, len(shape)), shape))
    return uses


def _check_zero_point(g: GraphIndex, node, out: list[Violation]) -> np.ndarray | None:
    """zero-point-missing, constant-params, zero-point-int8, zero-point-nonzero; the zero point, None when
    absent or computed."""
    name = _name(node)
    if len(node.input) < 3 or not node.input[2]:
        out.append(Violation(name, "zero-point-missing",
                             "no zero point: ONNX then means uint8, TensorRT int8 — give an int8 zero point of 0"))
        return None
    zp = g.array(node.input[2])
    if zp is None:
        out.append(Violation(name, "constant-params", f"zero point {node.input[2]!r} is computed, not a constant"))
        return None
    import onnx

    if g.dtype(node.input[2]) != onnx.TensorProto.INT8:
        tname = onnx.TensorProto.DataType.Name(g.dtype(node.input[2]))
        out.append(Violation(name, "zero-point-int8", f"zero point is {tname}; TensorRT needs INT8"))
    if np.any(zp != 0):
        nz = np.unique(zp[zp != 0])[:4].tolist()
        out.append(Violation(name, "zero-point-nonzero", f"zero point {nz} is not 0 (asymmetric)"))
    return zp


def _check_scale(name: str, scale: np.ndarray, zp: np.ndarray | None, out: list[Violation]) -> None:
    """scale-finite, scale-positive, and scale-zero-point-size against a constant zero point."""
    s = scale.astype(np.float64)
    if not np.all(np.isfinite(s)):
        out.append(Violation(name, "scale-finite", "scale has inf/NaN values"))
    elif np.any(s <= 0):
        out.append(Violation(name, "scale-positive", f"scale has {int(np.sum(s <= 0))} value(s) ≤ 0"))
    if zp is not None and zp.size != scale.size:
        out.append(Violation(name, "scale-zero-point-size", f"scale has {scale.size} elements, zero point {zp.size}"))


def _check_params(g: GraphIndex, node, out: list[Violation]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The rules on one Q/DQ node's scale and zero point; both as arrays, None where not constant."""
    name = _name(node)
    if len(node.input) < 2 or not node.input[1]:
        out.append(Violation(name, "constant-params", "no scale input"))
        return None, None
    scale = g.array(node.input[1])
    if scale is None:
        out.append(Violation(name, "constant-params", f"scale {node.input[1]!r} is computed, not a constant"))
    zp = _check_zero_point(g, node, out)
    if scale is not None:
        _check_scale(name, scale, zp, out)
    return scale, zp


def _check_opset(proto, qdq: list, out: list[Violation]) -> None:
    """opset: a model with Q/DQ nodes imports the default domain at opset ≥ MIN_OPSET."""
    opset = max((o.version for o in proto.opset_import if o.domain in STANDARD_DOMAINS), default=0)
    if qdq and opset < MIN_OPSET:
        out.append(Violation("<model>", "opset", f"default-domain opset {opset} < {MIN_OPSET}: no per-axis Q/DQ"))


def _refused_dq_input(g: GraphIndex, n, out: list[Violation]) -> bool:
    """dq-input-type: whether ``n`` dequantizes a constant other than int8 (the cause: its zero-point type and
    scale shape follow from it and are not checked)."""
    if n.op_type != "DequantizeLinear":
        return False
    import onnx

    dt = g.dtype(n.input[0])
    if dt is None or dt == onnx.TensorProto.INT8:
        return False
    out.append(Violation(_name(n), "dq-input-type",
                         f"dequantizes a {onnx.TensorProto.DataType.Name(dt)} constant; TensorRT "
                         f"dequantizes INT8 only (keep biases float)"))
    return True


def _uses_as_weight(g: GraphIndex, n, weight_uses: dict[str, list[tuple]]) -> list[tuple] | None:
    """The weight uses of a Q/DQ node's output; a Q on a weight initializer is judged through the DQ it feeds."""
    if n.op_type != "QuantizeLinear":
        return weight_uses.get(n.output[0])
    dqs = [c for c in g.consumers.get(n.output[0], []) if c.op_type == "DequantizeLinear"]
    return next((weight_uses[d.output[0]] for d in dqs if d.output[0] in weight_uses), None)


def _check_weight_scales(n, scale: np.ndarray | None, axis: int, uses: list[tuple], out: list[Violation]) -> None:
    """weights-per-channel: one scale per output channel, on that axis, for each weighted op fed."""
    if scale is None:
        return
    name, size = _name(n), int(scale.size)
    for op, want_axis, shape in uses:
        channels = shape[want_axis] if want_axis < len(shape) else None
        if size == 1 and channels != 1:
            out.append(Violation(name, "weights-per-channel",
                                 f"weight of {op.op_type} {_name(op)} is quantized per tensor; needs "
                                 f"{channels} scales along axis {want_axis}"))
        elif size != 1 and (scale.ndim != 1 or size != channels or (axis % len(shape)) != want_axis):
            out.append(Violation(name, "weights-per-channel",
                                 f"weight of {op.op_type} {_name(op)} (shape {shape}) has {size} scales "
                                 f"on axis {axis}; needs {channels} on axis {want_axis}"))


def _check_qdq_node(g: GraphIndex, n, weight_uses: dict[str, list[tuple]], out: list[Violation]) -> tuple | None:
    """One Q/DQ node's own rules; its (scale, zero point), or None when its input type stops the checks."""
    if n.domain not in STANDARD_DOMAINS:
        out.append(Violation(_name(n), "domain", f"{n.op_type} in domain {n.domain!r}, not a standard ONNX op"))
    if _refused_dq_input(g, n, out):
        return None
    scale, zp = _check_params(g, n, out)
    axis = node_attr(n, "axis", 1)
    uses = _uses_as_weight(g, n, weight_uses)
    if uses:
        _check_weight_scales(n, scale, axis, uses, out)
    elif scale is not None and scale.size != 1:
        out.append(Violation(_name(n), "activation-per-tensor",
                             f"activation {n.input[0]!r} quantized per axis ({scale.size} scales)"))
    return scale, zp


def _check_qdq_nodes(g: GraphIndex, qdq: list, out: list[Violation]) -> dict[str, tuple]:
    """Each Q/DQ node's own rules in graph order; output → (scale, zero point) of each node whose parameters
    were checked."""
    weight_uses = _weight_uses(g)
    params = {}
    for n in qdq:
        found = _check_qdq_node(g, n, weight_uses, out)
        if found is not None:
            params[n.output[0]] = found
    return params


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Equal in shape and values, or either one unknown."""
    return a is None or b is None or (a.shape == b.shape and np.array_equal(a, b))


def _check_q_output(g: GraphIndex, q, params: dict[str, tuple], out: list[Violation]) -> None:
    """q-without-dq for one QuantizeLinear: dequantized, only, with its own scale and zero point."""
    name, y = _name(q), q.output[0]
    if y in g.outputs:
        out.append(Violation(name, "q-without-dq", f"quantized tensor {y!r} is a graph output"))
    cons = g.consumers.get(y, [])
    if not cons and y not in g.outputs:
        out.append(Violation(name, "q-without-dq", "output is never dequantized"))
    for c in cons:
        if c.op_type != "DequantizeLinear":
            out.append(Violation(name, "q-without-dq", f"int8 output feeds {c.op_type} {_name(c)}"))
            continue
        (qs, qz), (ds, dz) = params.get(y, (None, None)), params.get(c.output[0], (None, None))
        if not _same(qs, ds):
            out.append(Violation(name, "q-without-dq", f"scale differs from its DequantizeLinear {_name(c)}"))
        if not _same(qz, dz):
            out.append(Violation(name, "q-without-dq", f"zero point differs from its DequantizeLinear {_name(c)}"))


def _check_weighted_ops(g: GraphIndex, float_nodes: list[str] | None, out: list[Violation]) -> None:
    """policy-float and weighted-op-float-input, for each weighted op with an int8 weight."""
    float_set = set(float_nodes or [])
    for n, _, _, src in _weighted_nodes(g):
        if not src:
            continue
        if n.name in float_set:
            out.append(Violation(_name(n), "policy-float",
                                 "the precision policy keeps this node in float but its weight is int8"))
        xprod = g.producer.get(n.input[0])
        if xprod is None or xprod.op_type != "DequantizeLinear":
            out.append(Violation(_name(n), "weighted-op-float-input",
                                 "int8 weight but float data input: TensorRT runs it in float", "warning"))


def check(proto, float_nodes: list[str] | None = None) -> list[Violation]:
    """Every violation of the rules above in ``proto`` (an onnx.ModelProto); empty when conformant."""
    g = GraphIndex(proto)
    out: list[Violation] = []
    qdq = [n for n in proto.graph.node if n.op_type in QDQ_OPS]
    _check_opset(proto, qdq, out)
    params = _check_qdq_nodes(g, qdq, out)
    for n in qdq:
        if n.op_type == "QuantizeLinear":
            _check_q_output(g, n, params, out)
    _check_weighted_ops(g, float_nodes, out)
    return out


def errors(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.severity == "error"]


def format_violations(violations: list[Violation], limit: int = 20) -> str:
    lines = [f"  {v}" for v in violations[:limit]]
    if len(violations) > limit:
        lines.append(f"  ... and {len(violations) - limit} more")
    return "\n".join(lines)


def check_or_raise(proto, where: str = "model", float_nodes: list[str] | None = None) -> list[Violation]:
    """Raise ExportError listing every error (offending node + rule); return the warnings otherwise."""
    found = check(proto, float_nodes)
    errs = errors(found)
    if errs:
        raise ExportError(f"{where} breaks TensorRT's Q/DQ rules ({len(errs)} violation(s)):\n"
                          + format_violations(errs))
    return found
