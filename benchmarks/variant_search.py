"""Which network shapes INT8 actually speeds up: candidates exported to ONNX FP32/INT8 and OpenVINO FP32/INT8
and timed interleaved in one process, as data.

    python -m benchmarks.variant_search --out benchmarks/measured/variant-search-<date>-<device>.json
    python -m benchmarks.variant_search --candidates shipped mobile-int8 --kind comparison --rounds 15 --out ...

Latency does not depend on the weights: a candidate is a model config (``CANDIDATES``: overrides of the
``mobile-int8`` config, or a registered config's name) with seeded random weights; ``shipped`` is
weights/mobile.pt. INT8 is calibrated on a few composites (``--calib-samples``) with the project's exporters
and precision policy. Every artifact runs ``--runs`` calls per round, ``--rounds`` rounds, the artifacts in a
rotating order (onnxruntime sessions with spinning off: an idle session must not steal the cores), so a
machine shared with other jobs slows every artifact alike; the p50 of all calls and the median of the
per-round INT8/FP32 ratios are recorded: one table row per candidate (MACs, parameters, the four p50s, both
ratios, OpenVINO INT8 against the shipped model's); ``--kind comparison`` adds whether ``TARGETS`` are met.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from adamatting.budget import count_config
from adamatting.checkpoint import load_model
from adamatting.config import DEFAULT_WEIGHTS, get_config
from adamatting.model import build_model
from benchmarks.fingerprint import device_fingerprint, measured_device
from benchmarks.latency import synthetic_inputs
from benchmarks.measurements import FORMAT, load
from benchmarks.model_comparison import TARGETS as COMPARISON_TARGETS
from benchmarks.model_comparison import median_ratio
from calib_data.sets import SetConfig, build_set
from common.outputs import write_json
from export.int8_qdq import quantize_onnx_int8
from export.onnx_graph import export_onnx
from export.openvino_ir import export_openvino

_E1 = (("fused", 1, 32, 1, 1), ("fused", 2, 48, 2, 2), ("fused", 2, 96, 2, 2), ("ir", 4, 160, 2, 2))
_NARROW = (("fused", 1, 24, 1, 1), ("fused", 2, 48, 2, 2), ("ir", 4, 96, 3, 2), ("ir", 4, 160, 2, 2))
_NO_S4 = (("fused", 2, 64, 2, 2), ("fused", 2, 128, 2, 2), ("ir", 4, 192, 2, 2))
# name -> (what it is, a registered config name or overrides of mobile-int8). All are within 3 GMACs, 4 M.
CANDIDATES: dict[str, tuple[str, str | dict]] = {
    "shipped": ("weights/mobile.pt: inverted residuals, separable decoders and ConvLSTM at 3/4", "mobile"),
    "mobile-int8": ("the registered mobile-int8 config", "mobile-int8"),
    "dense-gcn-pu8": ("stride-4 stem, fused stages 32/48/96 + IR 160, dense GCN, dense ConvLSTM 8",
                      {"fused_stages": _E1, "gcn_separable": False, "pu_hidden": 8}),
    "sep-gcn-pu16": ("stride-4 stem, fused stages 32/48/96 + IR 160, separable GCN, dense ConvLSTM 16",
                     {"fused_stages": _E1, "gcn_separable": True, "pu_hidden": 16}),
    "sep-gcn-pu8": ("stride-4 stem, fused stages 32/48/96 + IR 160, separable GCN, dense ConvLSTM 8",
                    {"fused_stages": _E1, "gcn_separable": True, "pu_hidden": 8}),
    "narrow": ("stem 24, fused 24/48 + IR 96/160, decoders 64/32/24, dense GCN, ConvLSTM 8",
               {"stem_channels": 24, "fused_stages": _NARROW, "decoder_channels": (64, 32, 24),
                "gcn_separable": False, "pu_hidden": 8}),
    "no-s4-blocks": ("stride-4 stem only, fused 64/128 + IR 192, decoders 64/48/32, separable GCN, ConvLSTM 16",
                     {"fused_stages": _NO_S4, "decoder_channels": (64, 48, 32), "gcn_separable": True,
                      "pu_hidden": 16}),
}
ARTIFACTS = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")


def candidate_model(name: str, checkpoint: Path = DEFAULT_WEIGHTS):
    """The candidate's network in eval mode: the shipped checkpoint, or seeded random weights."""
    if name not in CANDIDATES:
        raise ValueError(f"unknown candidate {name!r}; known: {', '.join(CANDIDATES)}")
    spec = CANDIDATES[name][1]
    if name == "shipped":
        return load_model(checkpoint)[0]
    cfg = get_config(spec) if isinstance(spec, str) else get_config("mobile-int8", **spec)
    torch.manual_seed(0)
    return build_model(cfg.replace(name=name)).eval()


def small_set(config: str, size: tuple[int, int], count: int, cache: Path):
    cfg = dataclasses.replace(SetConfig.from_toml(config), size=tuple(size), count=count).validated()
    return build_set(cfg, cache, progress=False)


def export_candidate(model, out: Path, size: tuple[int, int], cal, val) -> dict[str, Path]:
    """The four artifacts of one candidate, with the project's exporters (and their checks)."""
    fp32 = out / f"{model.cfg.name}_fp32.onnx"
    export_onnx(model, fp32, size)
    int8 = out / f"{model.cfg.name}_int8.onnx"
    quantize_onnx_int8(fp32, int8, cal)
    ov = {p: export_openvino(fp32, out, p, calib_set=cal, val_set=val)[0] for p in ("fp32", "int8")}
    return dict(zip(ARTIFACTS, (fp32, int8, ov["fp32"], ov["int8"])))


def open_runner(key: str, path: Path, threads: int):
    """A callable (image, trimap) -> outputs; onnxruntime without spinning (sessions share the cores)."""
    if key.startswith("onnxruntime"):
        import onnxruntime as ort

        from runtime.backends.onnxruntime_backend import session_options

        options = session_options(threads)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda i, t: sess.run(None, {"image": i, "trimap": t})
    from runtime.backends.openvino_backend import OpenVinoBackend

    backend = OpenVinoBackend.open(path, {}, threads=threads)
    return backend.run


def interleaved(runners: dict[str, object], inputs, rounds: int, runs: int, warmup: int = 3) -> dict[str, list]:
    """Per runner, per round, the ``runs`` call times (ms); the runners' order rotates every round."""
    keys = list(runners)
    for k in keys:
        for _ in range(warmup):
            runners[k](*inputs)
    times: dict[str, list] = {k: [] for k in keys}
    for r in range(rounds):
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            calls = []
            for _ in range(runs):
                t0 = time.perf_counter()
                runners[k](*inputs)
                calls.append((time.perf_counter() - t0) * 1e3)
            times[k].append(calls)
    return times


def summarize(times: dict[str, list]) -> dict:
    """p50 of all calls per (candidate, artifact) and the median over rounds of each INT8/FP32 ratio."""
    p50 = {k: float(np.median(np.concatenate(v))) for k, v in times.items()}
    out: dict[str, dict] = {}
    for (cand, art), v in p50.items():
        out.setdefault(cand, {})[art] = v
    for cand, rows in out.items():
        for rt in ("onnxruntime", "openvino"):
            int8, fp32 = ([float(np.median(calls)) for calls in times[(cand, f"{rt}/{p}")]] for p in ("int8", "fp32"))
            rows[f"{rt} int8/fp32"] = float(median_ratio(int8, fp32))
    return out


# benchmarks.model_comparison's targets, its "first model" being the shipped one here
TARGETS = {name.replace("first", "shipped"): limit for name, limit in COMPARISON_TARGETS}


def search_table(names, sizes: dict, result: dict, meta: dict, kind: str = "search") -> dict:
    """One row per candidate; ``kind`` "comparison" adds whether each of ``TARGETS`` is met."""
    cols = ["candidate", "what", "GMACs", "params (M)", "ORT FP32 ms", "ORT INT8 ms", "ORT INT8/FP32",
            "OV FP32 ms", "OV INT8 ms", "OV INT8/FP32", "OV INT8 / shipped OV INT8"]
    ship = result.get("shipped", {}).get("openvino/int8")
    rows = []
    for n in names:
        r = result[n]
        row = dict(zip(cols, [n, CANDIDATES[n][0], round(sizes[n]["gmacs"], 3), round(sizes[n]["params"] / 1e6, 3),
                              *(round(r[a], 2) for a in ARTIFACTS[:2]), round(r["onnxruntime int8/fp32"], 2),
                              *(round(r[a], 2) for a in ARTIFACTS[2:]), round(r["openvino int8/fp32"], 2),
                              round(r["openvino/int8"] / ship, 2) if ship else None]))
        if kind == "comparison":
            row["targets"] = "; ".join(f"{k} <= {v}: {'met' if row[k] is not None and row[k] <= v else 'not met'}"
                                       for k, v in TARGETS.items())
        rows.append(row)
    return {**meta, "kind": "variant-search" if kind == "search" else "int8-comparison",
            "model": "candidate networks, seeded random weights (shipped: weights/mobile.pt); MACs and parameters "
                     "at 1x3x512x512", "columns": cols + (["targets"] if kind == "comparison" else []), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.variant_search", description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    p.add_argument("--kind", choices=["search", "comparison"], default="search")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--calib-samples", type=int, default=4)
    p.add_argument("--cache", default="cache/sets")
    p.add_argument("--out", required=True, help="the JSON to write (benchmarks/measured/...)")
    args = p.parse_args(argv)
    size = (args.size, args.size)
    cal = small_set("calib", size, args.calib_samples, Path(args.cache))
    val = small_set("val", size, 2, Path(args.cache))
    work = Path(tempfile.mkdtemp(prefix="variant-search-"))
    runners, sizes = {}, {}
    for name in args.candidates:
        model = candidate_model(name)
        sizes[name] = count_config(model.cfg, size)
        print(f"{name}: {sizes[name]['gmacs']:.3f} GMACs, {sizes[name]['params'] / 1e6:.3f} M; exporting", flush=True)
        for key, path in export_candidate(model, work, size, cal, val).items():
            runners[(name, key)] = open_runner(key, path, args.threads)
    times = interleaved(runners, synthetic_inputs(size), args.rounds, args.runs)
    result = summarize(times)
    fp = device_fingerprint()
    device, runtimes = measured_device(fp), fp["runtimes"]
    meta = {"format": FORMAT, "date": date.today().isoformat(), "device": device, "input_size": list(size),
            "threads": args.threads, "runtimes": {k: v for k, v in runtimes.items() if k in ("onnxruntime", "openvino")},
            "method": f"python -m benchmarks.variant_search --kind {args.kind}: one process, {args.rounds} rounds x "
                      f"{args.runs} calls per artifact, rotating order, onnxruntime without spinning, OpenVINO "
                      f"LATENCY hint, f32 inference precision; p50 of all calls, ratios the median of per-round "
                      f"ratios; INT8 calibrated on {args.calib_samples} composites",
            "note": "Shared 2-core machine: compare values within this file only."}
    data = search_table(args.candidates, sizes, result, meta, args.kind)
    write_json(data, args.out)
    load(args.out)   # the file is a valid measured-results file
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
