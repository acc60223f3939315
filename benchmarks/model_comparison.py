"""What INT8 buys two networks, measured in one interleaved run: the shipped model's onnxruntime and OpenVINO
FP32/INT8 artifacts beside another model's (the INT8-friendly ``mobile-int8``), as a measured-results table.

    python -m benchmarks.model_comparison out/export out/export/mobile-int8 [--size 512 512] \\
        [--rounds 5] [--runs 10] [--threads 2] [--out out/bench/int8-comparison.json]

Each folder holds one model's exports (``adamat export all --checkpoint ... --out FOLDER``); the first is the
reference of the ``OV INT8 / first OV INT8`` column. The eight artifacts are timed by
:func:`benchmarks.interleaved.interleave` (a fresh process per artifact and round, the order rotated every
round), so a slow minute of a shared machine lands on every artifact in turn. A p50 is the median of the
per-round p50s, and an INT8/FP32 ratio is the median of the per-round ratios. ``TARGETS`` are the INT8-speed
targets of the model issue. They are reported as met or not, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import date
from pathlib import Path

from benchmarks.fingerprint import measured_device
from benchmarks.interleaved import interleave
from benchmarks.latency import write_json
from benchmarks.measurements import FORMAT, load, markdown_table
from common.arguments import positive_int
from common.outputs import check_writable
from runtime.artifacts import discover

COMPARED = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")
SHORT = {"onnxruntime": "ORT", "openvino": "OV"}
# (column, limit): a model's INT8/FP32 on each runtime, and its OpenVINO INT8 against the first model's.
TARGETS = (("ORT INT8/FP32", 0.6), ("OV INT8/FP32", 0.6), ("OV INT8 / first OV INT8", 0.5))


def pick(folder: str | Path, size: tuple[int, int]) -> tuple[str, list]:
    """(model config name, the artifacts of ``COMPARED`` in that order) of one export folder; ValueError
    naming what is missing."""
    found, _ = discover(folder, size)
    by_key = {a.key: a for a in found}
    missing = [k for k in COMPARED if k not in by_key]
    if missing:
        raise ValueError(f"{folder}: no {size[0]}x{size[1]} {', '.join(missing)} artifact(s); export them with "
                         f"adamat export all --targets onnx openvino --out {folder}")
    names = {(by_key[k].manifest.model_config or {}).get("name", "?") for k in COMPARED}
    if len(names) != 1:
        raise ValueError(f"{folder}: the artifacts come from different models ({', '.join(sorted(names))})")
    return names.pop(), [by_key[k] for k in COMPARED]


def _ratio(rounds_a: list[float], rounds_b: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(rounds_a, rounds_b))


def model_rows(rows: list[dict], models: list[str], folders: list[str]) -> list[dict]:
    """One table row per model from :func:`interleave`'s rows (``len(COMPARED)`` per model, in order)."""
    out, n = [], len(COMPARED)
    first_ov = rows[COMPARED.index("openvino/int8")]["p50_ms_rounds"]
    for i, (model, folder) in enumerate(zip(models, folders)):
        t = dict(zip(COMPARED, (r["p50_ms_rounds"] for r in rows[i * n:(i + 1) * n])))
        row = {"model": model, "folder": folder}
        for runtime in ("onnxruntime", "openvino"):
            fp32, int8 = t[f"{runtime}/fp32"], t[f"{runtime}/int8"]
            short = SHORT[runtime]
            row |= {f"{short} FP32 ms": round(statistics.median(fp32), 2),
                    f"{short} INT8 ms": round(statistics.median(int8), 2),
                    f"{short} INT8/FP32": round(_ratio(int8, fp32), 3)}
        row["OV INT8 / first OV INT8"] = round(_ratio(t["openvino/int8"], first_ov), 3)
        row["targets"] = "; ".join(f"{name} <= {limit}: {'met' if row[name] <= limit else 'not met'}"
                                   for name, limit in TARGETS if not (i == 0 and name.endswith("first OV INT8")))
        out.append(row)
    return out


def compare(folders: list[str | Path], size: tuple[int, int] = (512, 512), rounds: int = 5, warmup: int = 3,
            runs: int = 10, threads: int | None = None) -> dict:
    """The measured-results table (kind ``int8-comparison``) of the models exported in ``folders``."""
    picked = [pick(f, size) for f in folders]
    result = interleave([a.path for _, arts in picked for a in arts], rounds, warmup, runs, threads)
    rows = model_rows(result["rows"], [m for m, _ in picked], [str(f) for f in folders])
    fp = result["fingerprint"]
    return {"format": FORMAT, "kind": "int8-comparison", "date": date.today().isoformat(),
            "device": measured_device(fp), "input_size": list(size), "threads": threads,
            "runtimes": {k: v for k, v in fp["runtimes"].items() if k in ("onnxruntime", "openvino")},
            "model": ", ".join(m for m, _ in picked) + " (their exported artifacts)",
            "method": f"python -m benchmarks.model_comparison: {rounds} rounds, each artifact in a fresh process "
                      f"per round ({warmup} warm-up + {runs} timed calls), the order rotated every round; p50 the "
                      f"median of per-round p50s, ratios the median of per-round ratios",
            "columns": list(rows[0]), "rows": rows,
            "note": "Compare values within this file only: a shared machine's speed drifts between runs."}


def table(data: dict) -> str:
    cols = [c for c in data["columns"] if c != "folder"]
    return markdown_table(cols, [[str(r[c]) for c in cols] for r in data["rows"]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_comparison", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="export folders, one model each (the first is the reference)")
    p.add_argument("--size", type=positive_int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--warmup", type=positive_int, default=3)
    p.add_argument("--runs", type=positive_int, default=10)
    p.add_argument("--threads", type=positive_int, default=None, help="threads of every runtime (default: theirs)")
    p.add_argument("--out", default=None, help="write the table here (a measured-results JSON)")
    args = p.parse_args(argv)
    try:
        out = check_writable(args.out) if args.out else None
        data = compare(args.folders, tuple(args.size), args.rounds, args.warmup, args.runs, args.threads)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(data))
    if out is not None:
        write_json(data, out)
        load(out)   # a valid measured-results file
    return 0


if __name__ == "__main__":
    sys.exit(main())
