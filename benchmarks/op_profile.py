"""Where an ONNX artifact spends its time under onnxruntime: per model stage and per operator type.

    python -m benchmarks.op_profile out/export/adamatting_mobile_512x512_fp32.onnx \\
        out/export/adamatting_mobile_512x512_int8.onnx [--runs 30] [--threads 2] \\
        [--measured benchmarks/measured/op-profile-<date>-<device>.json --model "what the network is"]

It answers the question a latency ratio cannot: *which* part of the graph an INT8 artifact makes faster or
slower, so a precision policy or a model change can be judged before it is made. onnxruntime's own
profiler records every node's kernel time; the nodes are grouped by the PyTorch module path their names
keep (``/model/propagation/cell/...`` → ``propagation/cell``) and by operator type. Nodes onnxruntime
inserts itself are grouped by what they do: layout changes (``ReorderInput``/``ReorderOutput`` of the
NCHWc float kernels, ``Transpose`` around the NHWC int8 kernels) and (de)quantization.

The last lines bound what int8 arithmetic can buy: the share of the first artifact's kernel time spent in
convolutions, and the INT8/FP32 ratio if every convolution ran twice as fast and nothing else changed
(Amdahl). Profiling adds its own overhead, so the absolute times read higher than ``make bench``'s;
compare shares and differences, and take latencies from the benchmark.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from common.arguments import positive_int
from common.outputs import check_writable, write_json

LAYOUT_OPS = ("ReorderInput", "ReorderOutput", "Transpose")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
CONV_OPS = ("Conv", "FusedConv", "QLinearConv", "NhwcConv", "NhwcFusedConv", "ConvTranspose")
_MODULE = re.compile(r"^/model/([^/]+)(?:/([^/]+))?/")
_INDEX = re.compile(r"[._]\d+$")                      # ups.3 -> ups, cell_1 -> cell


def stage_of(node: str, op: str) -> str:
    """The stage a node belongs to: its module path's first two parts (``propagation/cell``), with the
    index of repeated modules dropped (``ups.3`` → ``ups``); layout and (de)quantize nodes by what they do."""
    if op in LAYOUT_OPS:
        return "layout (reorder, transpose)"
    if op in QDQ_OPS:
        return "(de)quantize"
    m = _MODULE.match(node)
    if not m:   # the model's own operations (fusion, resampling): /model/Softmax, /model/Resize_1
        return "model" if node.startswith("/model/") else "other"
    top, sub = m.group(1), m.group(2)
    if sub is None or sub[0].isupper():   # an operation of the module itself (ONNX op names are capitalised)
        return top
    return top + "/" + _INDEX.sub("", sub)


def profiling_options(threads: int | None, prefix: str | Path, spinning: bool = True):
    """The project's onnxruntime session options (``session_options``) with the profiler on, writing to
    ``prefix``*. ``spinning=False`` for sessions run interleaved in one process (idle ones must not spin)."""
    from runtime.backends.onnxruntime_backend import session_options

    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(prefix)
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def kernel_times(session, warmup: int) -> list[tuple[str, str, float]]:
    """End ``session``'s profiling: (node name, operator type, ms) of every kernel call made after its first
    ``warmup`` runs (their one-off costs — allocations, first-touch pages — are left out)."""
    events = json.loads(Path(session.end_profiling()).read_text())
    run_ends = sorted(e["ts"] + e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    start = run_ends[warmup - 1] if 0 < warmup <= len(run_ends) else float("-inf")
    return [(e["name"][: -len("_kernel_time")], e["args"]["op_name"], e["dur"] / 1e3) for e in events
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start]


def profile_onnx(path: str | Path, runs: int = 30, warmup: int = 5, threads: int | None = None,
                 seed: int = 0) -> dict:
    """Median wall time of ``runs`` calls and the mean kernel time per call by stage and by operator type
    (ms), from onnxruntime's profiler, on random inputs of the graph's fixed shapes."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    with tempfile.TemporaryDirectory(prefix="ort-profile-") as tmp:
        options = profiling_options(threads, Path(tmp) / "profile")
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime's own exception types
            raise ValueError(f"{path}: onnxruntime cannot load it: {e}") from None
        rng = np.random.default_rng(seed)
        feeds = {}
        for i in session.get_inputs():
            if any(not isinstance(d, int) for d in i.shape):
                raise ValueError(f"{path}: input {i.name} has a dynamic shape {i.shape}; profile a fixed-size export")
            feeds[i.name] = rng.random(i.shape, dtype=np.float32)
        size = session.get_inputs()[0].shape[-2:]
        for _ in range(warmup):
            session.run(None, feeds)
        seconds = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feeds)
            seconds.append(time.perf_counter() - start)
        calls = kernel_times(session, warmup)
    by_stage, by_op, nodes = defaultdict(float), defaultdict(float), set()
    for name, op, ms in calls:
        by_stage[stage_of(name, op)] += ms / runs
        by_op[op] += ms / runs
        nodes.add(name)
    return {"artifact": path.name, "p50_ms": float(np.median(seconds) * 1e3), "nodes": len(nodes),
            "kernel_ms": float(sum(by_op.values())), "by_stage": dict(by_stage), "by_op": dict(by_op),
            "runs": runs, "warmup": warmup, "threads": threads,
            "input_size": [int(x) for x in size]}


def conv_share(profile: dict) -> float:
    """Fraction of the kernel time spent in convolutions (float or int8)."""
    return sum(ms for op, ms in profile["by_op"].items() if op in CONV_OPS) / max(profile["kernel_ms"], 1e-12)


def format_table(profiles: list[dict], key: str = "by_stage", top: int = 25) -> str:
    """A Markdown table: one row per stage (or operator type), one column per artifact, ms per call."""
    rows = sorted({k for p in profiles for k in p[key]}, key=lambda k: -max(p[key].get(k, 0.0) for p in profiles))
    head = "stage" if key == "by_stage" else "operator"
    lines = [f"| {head} | " + " | ".join(p["artifact"] for p in profiles) + " |",
             "|---|" + "---:|" * len(profiles)]
    for k in rows[:top]:
        lines.append(f"| {k} | " + " | ".join(f"{p[key].get(k, 0.0):.2f}" for p in profiles) + " |")
    if len(rows) > top:
        rest = rows[top:]
        lines.append(f"| ({len(rest)} more) | " + " | ".join(f"{sum(p[key].get(k, 0.0) for k in rest):.2f}"
                                                        for p in profiles) + " |")
    lines.append("| **kernel time** | " + " | ".join(f"**{p['kernel_ms']:.2f}**" for p in profiles) + " |")
    lines.append("| wall time p50 (profiled) | " + " | ".join(f"{p['p50_ms']:.2f}" for p in profiles) + " |")
    lines.append("| nodes | " + " | ".join(str(p["nodes"]) for p in profiles) + " |")
    return "\n".join(lines)


def amdahl_note(reference: dict) -> str:
    share = conv_share(reference)
    return (f"{reference['artifact']}: convolutions are {100 * share:.0f} % of the kernel time; if every "
            f"convolution ran 2x faster and nothing else changed, the whole graph would take "
            f"{1 - share / 2:.2f}x the time (Amdahl's bound for int8 arithmetic at 2x).")


def measured_table(profiles: list[dict], model: str, command: list[str]) -> dict:
    """The profiles as a measured-results file (kind ``op-profile``, :mod:`benchmarks.measurements`): one row
    per stage, one per operator type, then the kernel and profiled wall time, each artifact's ms per call;
    Amdahl's bound in the note."""
    from benchmarks.fingerprint import measured_header

    names = [p["artifact"] for p in profiles]
    rows = []
    for key, what in (("by_stage", "stage"), ("by_op", "operator")):
        for k in sorted({k for p in profiles for k in p[key]}, key=lambda k: -max(p[key].get(k, 0.0) for p in profiles)):
            rows.append({"by": what, "name": k, **{f"{n} ms": round(p[key].get(k, 0.0), 3) for n, p in zip(names, profiles)}})
    for what, field in (("kernel time", "kernel_ms"), ("wall time p50 (profiled)", "p50_ms")):
        rows.append({"by": "total", "name": what, **{f"{n} ms": round(p[field], 3) for n, p in zip(names, profiles)}})
    head = measured_header("op-profile", input_size=profiles[0]["input_size"], threads=profiles[0]["threads"],
                           model=model, command=command,
                           method=f"onnxruntime's profiler, mean kernel time per call over {profiles[0]['runs']} runs "
                                  f"after {profiles[0]['warmup']} warm-up runs, random inputs")
    return head | {"columns": ["by", "name", *(f"{n} ms" for n in names)], "rows": rows, "note": amdahl_note(profiles[0])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.op_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", help="ONNX files of the same model (the first is the reference)")
    p.add_argument("--runs", type=positive_int, default=30)
    p.add_argument("--warmup", type=positive_int, default=5)
    p.add_argument("--threads", type=positive_int, default=None, help="onnxruntime intra-op threads (default: its own)")
    p.add_argument("--by", choices=("stage", "op", "both"), default="both")
    p.add_argument("--json", type=Path, help="also write the profiles here")
    p.add_argument("--measured", type=Path, help="also write a measured-results file (benchmarks/measured/)")
    p.add_argument("--model", default="", help="with --measured: what the network is (config, weights)")
    args = p.parse_args(argv)
    try:
        outputs = [check_writable(o) for o in (args.json, args.measured) if o]   # before the work, not after
        profiles = [profile_onnx(a, args.runs, args.warmup, args.threads) for a in args.artifacts]
    except (FileNotFoundError, ValueError) as e:   # DataError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    for key in (("by_stage", "by_op") if args.by == "both" else (f"by_{args.by}",)):
        print(format_table(profiles, key) + "\n")
    print(amdahl_note(profiles[0]))
    if args.json:
        write_json(profiles, outputs[0])
    if args.measured:
        command = ["python", "-m", "benchmarks.op_profile", *(sys.argv[1:] if argv is None else argv)]
        write_json(measured_table(profiles, args.model or profiles[0]["artifact"], command), outputs[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
