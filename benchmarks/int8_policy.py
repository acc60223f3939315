"""Which INT8 graph of one network onnxruntime runs fastest: the precision policy's graph beside variants that
keep more (or fewer) operations in float, timed interleaved against the FP32 graph, as a measured table.

    python -m benchmarks.int8_policy --checkpoint weights/mobile-int8.pt \\
        --out benchmarks/measured/int8-policy-<date>-<device>.json [--rounds 15] [--threads 2]

The FP32 ONNX is exported once (:func:`export.onnx_graph.export_onnx`); every variant is quantized from it with
the project's settings (:func:`export.int8_qdq.quantize_qdq`, calibrated on a few composites) and differs only
in the nodes kept float (``VARIANTS``). All sessions run in one process, onnxruntime without spinning, the
order rotated every round (:func:`benchmarks.variant_search.interleaved`); a ratio is the median over rounds
of the variant's p50 over the FP32 graph's. It answers whether a change to the precision policy (or to what
the exporter leaves float) buys speed before the policy is changed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from adamatting.checkpoint import load_model
from benchmarks.fingerprint import measured_header
from benchmarks.latency import synthetic_inputs
from benchmarks.measurements import load
from benchmarks.variant_search import interleaved, open_runner, small_set
from common.arguments import positive_int
from common.errors import DataError
from common.outputs import check_writable, write_json
from export.int8_qdq import SetReader, quantize_with_policy
from export.onnx_graph import export_onnx
from export.precision import PrecisionPolicy


def _nothing(n) -> bool:
    return False


def _gcn(n) -> bool:
    return "/gcn" in n.name


# name → (what is kept float, the policy's modules and op types quantized in this variant, nodes kept float
# beyond the policy)
VARIANTS = {
    "policy": ("the precision policy for onnxruntime (export/precision.toml)", (), (), _nothing),
    "int8-conv-transpose": ("policy but the sub-pixel ConvTransposes quantized", (), ("ConvTranspose",), _nothing),
    "quantized-upsampling": ("policy but model.trimap_outputs (the adapted trimap's upsampling, a graph output) "
                             "quantized", ("model.trimap_outputs",), (), _nothing),
    "quantized-inputs": ("policy but model.inputs (the stem's input concatenation, the downscales): the "
                         "full-resolution inputs quantized", ("model.inputs",), (), _nothing),
    "int8-stem": ("policy but the stem (model.encoder.stem) quantized", ("model.encoder.stem",), (), _nothing),
    "float-gcn": ("policy + the Global Convolution blocks (depthwise in mobile-int8: no faster in int8)", (), (),
                  _gcn),
}


def quantize_variant(fp32: Path, out: Path, cal, modules: tuple[str, ...], op_types: tuple[str, ...],
                     also_float) -> Path:
    """``fp32`` quantized to ``out`` by the exporter's own step, keeping float the policy's nodes but those of
    ``modules`` and ``op_types``, and those for which ``also_float(node)``."""
    policy = PrecisionPolicy.load(runtime="onnxruntime").without(modules, op_types)
    quantize_with_policy(fp32, out, SetReader(cal), policy, also_float=also_float)
    return out


def measure(checkpoint: Path, size: tuple[int, int], rounds: int, runs: int, threads: int, work: Path,
            cache: Path, calib_samples: int = 4) -> dict[str, float]:
    """{variant: median over rounds of its p50 / the FP32 graph's p50}, and ``fp32`` → its p50 in ms."""
    fp32 = work / "fp32.onnx"
    export_onnx(load_model(checkpoint)[0], fp32, size)
    cal = small_set("calib", size, calib_samples, cache)
    paths = {"fp32": fp32} | {k: quantize_variant(fp32, work / f"{k}.onnx", cal, *rest)
                              for k, (_, *rest) in VARIANTS.items()}
    runners = {(k, "onnxruntime"): open_runner("onnxruntime", p, threads) for k, p in paths.items()}
    times = interleaved(runners, synthetic_inputs(size), rounds, runs)
    base = times[("fp32", "onnxruntime")]
    out = {k: statistics.median(np.median(a) / np.median(b) for a, b in zip(times[(k, "onnxruntime")], base))
           for k in VARIANTS}
    return out | {"fp32": float(np.median(np.concatenate(base)))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.int8_policy", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--size", type=positive_int, default=512)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--rounds", type=positive_int, default=15)
    p.add_argument("--runs", type=positive_int, default=10)
    p.add_argument("--cache", type=Path, default=Path("cache/sets"))
    p.add_argument("--out", required=True, help="the measured-results JSON to write")
    args = p.parse_args(argv)
    size = (args.size, args.size)
    try:
        out = check_writable(args.out)   # before the work, not after
        if not args.checkpoint.is_file():
            raise DataError("no such checkpoint", args.checkpoint)
        with tempfile.TemporaryDirectory(prefix="int8-policy-") as tmp:
            ratios = measure(args.checkpoint, size, args.rounds, args.runs, args.threads, Path(tmp), args.cache)
    except (ValueError, OSError) as e:   # DataError, ExportError and a checkpoint that does not load
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = [{"variant": k, "kept float": what, "ORT INT8 / ORT FP32": round(ratios[k], 3)}
            for k, (what, *_) in VARIANTS.items()]
    head = measured_header("int8-policy", input_size=size, threads=args.threads,
                           model=f"{args.checkpoint} (FP32 graph p50 {ratios['fp32']:.1f} ms)",
                           command=["python", "-m", "benchmarks.int8_policy", *(sys.argv[1:] if argv is None else argv)],
                           method=f"one process, {args.rounds} rounds x {args.runs} calls per graph, rotating order, "
                                  f"onnxruntime without spinning; ratio: median over rounds of the variant's p50 over "
                                  f"FP32's")
    write_json(head | {"columns": ["variant", "kept float", "ORT INT8 / ORT FP32"], "rows": rows}, out)
    load(out)
    for r in rows:
        print(f"{r['variant']:16s} {r['ORT INT8 / ORT FP32']:.3f}  {r['kept float']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
