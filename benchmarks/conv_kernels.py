"""How fast onnxruntime's int8 kernels run *this model's* convolutions on this device, one shape at a time.

    python -m benchmarks.conv_kernels out/export/adamatting_mobile_512x512_fp32.onnx [--runs 50] [--threads 2]

Every distinct convolution of the FP32 ONNX (input shape, weight shape, group, stride, padding) becomes a
one-node graph with random weights, quantized with the project's INT8 settings
(:func:`export.int8_qdq.quantize_qdq`: QDQ, uint8 activations, per-channel int8 weights), and both run
interleaved in one process. The table says which layer kinds int8 speeds up on this CPU and which it slows
down, independently of the layout changes and (de)quantization around them that ``benchmarks.op_profile``
shows in the whole graph. That is the question a model designer has when a latency ratio disappoints:
is it the graph, or the kernels? (On a 2-core AVX512-VNNI AMD EPYC, for the mobile
model: dense convolutions with 24+ channels ~2.4x faster in int8, 4-17-channel ones ~1.1x, depthwise ones
1.75-2.3x *slower* — at 8-16 channels; from 64 channels up int8 depthwise is faster too.)

The times are the convolution kernels' own (onnxruntime's profiler): a one-node graph also needs layout
changes and (de)quantization around the kernel that the whole model mostly avoids; ``op_profile`` shows what
they cost there. Like every latency here: compare the two columns of one run, not numbers from two runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from benchmarks.op_profile import CONV_OPS, kernel_times, profiling_options
from common.arguments import positive_int
from common.outputs import check_writable, write_json
from export.int8_qdq import quantize_qdq

CONV_TYPES = ("Conv", "ConvTranspose")


def conv_shapes(model) -> "OrderedDict[tuple, dict]":
    """The distinct convolutions of an ONNX model (shape-inferred), in graph order, each with its count."""
    import onnx
    from onnx import shape_inference

    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.input)}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    found: OrderedDict[tuple, dict] = OrderedDict()
    for node in model.graph.node:
        if node.op_type not in CONV_TYPES:
            continue
        x, w = shapes.get(node.input[0]), weights.get(node.input[1])
        if not x or not w or 0 in x:
            raise ValueError(f"{node.name}: input or weight shape unknown; profile a fixed-size export")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or "output_shape" in attrs:
            raise ValueError(f"{node.name}: auto_pad/output_shape are not supported; export with explicit pads")
        attrs = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in attrs.items()
                 if k in ("group", "strides", "pads", "dilations", "kernel_shape", "output_padding")}
        key = (node.op_type, tuple(x), tuple(w), len(node.input) > 2, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in found:
            found[key] = {"op": node.op_type, "input": x, "weight": w, "bias": len(node.input) > 2,
                          "attrs": attrs, "count": 0, "example": node.name, "group": int(attrs.get("group", 1))}
        found[key]["count"] += 1
    return found


def out_channels(conv: dict) -> int:
    w = conv["weight"]
    return w[1] * conv["group"] if conv["op"] == "ConvTranspose" else w[0]


def kind_of(conv: dict) -> str:
    if conv["op"] == "ConvTranspose":
        return "transposed"
    cin = conv["input"][1]
    if conv["group"] == 1:
        return "dense"
    return "depthwise" if conv["group"] == cin and conv["weight"][1] == 1 else "grouped"


def one_conv_model(conv: dict, seed: int = 0):
    """A one-node ONNX graph computing ``conv`` with random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.2, conv["weight"]).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    inputs = ["x", "w"]
    if conv["bias"]:
        inits.append(numpy_helper.from_array(rng.normal(0.0, 0.1, out_channels(conv)).astype(np.float32), "b"))
        inputs.append("b")
    node = helper.make_node(conv["op"], inputs, ["y"], name="conv", **conv["attrs"])
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, conv["input"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model)


class _RandomReader:
    def __init__(self, shape, n: int = 2):
        self.shape, self.n, self.i = shape, n, 0

    def get_next(self):
        if self.i >= self.n:
            return None
        self.i += 1
        return {"x": np.random.default_rng(self.i).normal(0.0, 1.0, self.shape).astype(np.float32)}


def time_convs(fp32_onnx: str | Path, runs: int = 50, warmup: int = 5, threads: int | None = None) -> list[dict]:
    """One row per distinct convolution: the fp32 and int8 convolution kernels' ms per call (onnxruntime's
    profiler; the layout changes and (de)quantization a one-node graph needs around them are reported
    apart, as ``*_around_ms``: inside the model most of them are not there)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    path = Path(fp32_onnx)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as e:   # onnx's DecodeError and friends
        raise ValueError(f"{path}: not a readable ONNX model: {e}") from None
    rows = []
    work = Path(tempfile.mkdtemp(prefix="conv-kernels-"))
    try:
        for i, conv in enumerate(conv_shapes(model).values()):
            f, q = work / f"{i}.onnx", work / f"{i}_int8.onnx"
            onnx.save(one_conv_model(conv), str(f))
            quant_pre_process(str(f), str(f), skip_symbolic_shape=True)   # what the exporter quantizes
            quantize_qdq(f, q, _RandomReader(conv["input"]))
            feed = {"x": np.random.default_rng(0).normal(0.0, 1.0, conv["input"]).astype(np.float32)}
            sessions = [ort.InferenceSession(str(p), profiling_options(threads, work / f"{p.stem}-", spinning=False),
                                             providers=["CPUExecutionProvider"]) for p in (f, q)]   # interleaved
            for _ in range(warmup + runs):
                for s in sessions:
                    s.run(None, feed)
            (fp32_ms, fp32_around), (int8_ms, int8_around) = (
                (sum(ms for _, op, ms in calls if op in CONV_OPS) / runs,
                 sum(ms for _, op, ms in calls if op not in CONV_OPS) / runs)
                for calls in (kernel_times(s, warmup) for s in sessions))
            rows.append({**conv, "kind": kind_of(conv), "fp32_ms": fp32_ms, "int8_ms": int8_ms,
                         "fp32_around_ms": fp32_around, "int8_around_ms": int8_around})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _describe(r: dict) -> str:
    _, c, h, w = r["input"]
    k = "x".join(str(v) for v in r["weight"][2:])
    stride = r["attrs"].get("strides", [1])[0]
    return f"{k} {c}→{out_channels(r)} @{h}x{w}" + (f" /{stride}" if stride != 1 and r["op"] == "Conv" else "") + \
        (f" x{stride}" if r["op"] == "ConvTranspose" else "")


def format_rows(rows: list[dict], top: int = 30) -> str:
    """Markdown: the layers by FP32 time spent in the whole model (time per call × count), then per kind."""
    lines = ["| layer | kind | count | fp32 ms | int8 ms | int8/fp32 | fp32 total | int8 total |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    ranked = sorted(rows, key=lambda r: -r["fp32_ms"] * r["count"])
    for r in ranked[:top]:
        lines.append(f"| {_describe(r)} | {r['kind']} | {r['count']} | {r['fp32_ms']:.3f} | {r['int8_ms']:.3f} | "
                     f"{r['int8_ms'] / max(r['fp32_ms'], 1e-9):.2f} | {r['fp32_ms'] * r['count']:.2f} | "
                     f"{r['int8_ms'] * r['count']:.2f} |")
    if len(ranked) > top:
        lines.append(f"| ({len(ranked) - top} more) | | | | | | | |")
    lines += ["", "| kind | layers | fp32 total ms | int8 total ms | int8/fp32 |", "|---|---:|---:|---:|---:|"]
    for kind, (count, f, q) in kind_totals(rows).items():
        name = "**all**" if kind == "all" else kind
        lines.append(f"| {name} | {count} | {f:.2f} | {q:.2f} | {q / max(f, 1e-9):.2f} |")
    return "\n".join(lines)


def totals(rows: list[dict]) -> tuple[int, float, float]:
    """(layers, FP32 ms, INT8 ms) of ``rows`` in the whole model: each time per call × its count."""
    return (sum(r["count"] for r in rows), sum(r["fp32_ms"] * r["count"] for r in rows),
            sum(r["int8_ms"] * r["count"] for r in rows))


def kind_totals(rows: list[dict]) -> dict[str, tuple[int, float, float]]:
    """:func:`totals` of each layer kind present, then of ``all``."""
    kinds = [k for k in ("dense", "depthwise", "grouped", "transposed") if any(r["kind"] == k for r in rows)]
    return {k: totals([r for r in rows if r["kind"] == k]) for k in kinds} | {"all": totals(rows)}


def measured_table(rows: list[dict], model: str, command: list[str], threads: int | None, runs: int,
                   input_size: list[int]) -> dict:
    """The timings as a measured-results file (kind ``conv-kernels``): one row per distinct layer (its time
    per call × its count in the model), then one per kind and one for all."""
    from benchmarks.fingerprint import measured_header

    cols = ["layer", "kind", "count", "FP32 kernels ms", "INT8 kernels ms", "INT8 / FP32"]

    def row(layer, kind, count, f, q):
        return dict(zip(cols, (layer, kind, count, round(f, 3), round(q, 3), round(q / max(f, 1e-9), 2))))

    table = [row(_describe(r), r["kind"], *totals([r])) for r in sorted(rows, key=lambda r: -r["fp32_ms"] * r["count"])]
    table += [row("all" if k == "all" else f"all {k}", k, *t) for k, t in kind_totals(rows).items()]
    head = measured_header("conv-kernels", input_size=input_size, threads=threads, model=model, command=command,
                           method=f"each distinct convolution alone, FP32 and QDQ INT8 one-node graphs interleaved, "
                                  f"{runs} runs; kernel time from onnxruntime's profiler, times the layer's count in "
                                  f"the model")
    return head | {"columns": cols, "rows": table}


def main(argv: list[str] | None = None) -> int:

    p = argparse.ArgumentParser(prog="python -m benchmarks.conv_kernels", description=__doc__.split("\n\n")[0])
    p.add_argument("onnx", help="an FP32 ONNX export with fixed shapes")
    p.add_argument("--runs", type=positive_int, default=50)
    p.add_argument("--warmup", type=positive_int, default=5)
    p.add_argument("--threads", type=positive_int, default=None, help="onnxruntime intra-op threads (default: its own)")
    p.add_argument("--top", type=positive_int, default=30, help="layers listed (the rest still count in the totals)")
    p.add_argument("--measured", default=None, help="also write a measured-results file (benchmarks/measured/)")
    p.add_argument("--model", default="", help="with --measured: what the network is (config, weights)")
    args = p.parse_args(argv)
    try:
        out = check_writable(args.measured) if args.measured else None   # before the work, not after
        rows = time_convs(args.onnx, args.runs, args.warmup, args.threads)
    except (FileNotFoundError, ValueError) as e:   # DataError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_rows(rows, args.top))
    if out is not None:
        import onnx

        dims = onnx.load(args.onnx, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        command = ["python", "-m", "benchmarks.conv_kernels", *(sys.argv[1:] if argv is None else argv)]
        write_json(measured_table(rows, args.model or Path(args.onnx).name, command, args.threads, args.runs,
                                  [d.dim_value for d in dims[-2:]]), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
