"""What INT8 buys several networks, measured in one interleaved run: each model's onnxruntime and OpenVINO
FP32/INT8 artifacts (the default model beside the second, ``mobile``), as a measured-results table.

    python -m benchmarks.model_comparison out/export out/export/mobile [--size 512 512] \\
        [--rounds 5] [--runs 10] [--threads 2] [--out out/bench/model-comparison.json]

Each folder holds one model's exports (``adamat export all --checkpoint ... --out FOLDER``); the first model
is the reference of the ``OV INT8 / first OV INT8`` column. The four artifacts of every model are timed by
:func:`benchmarks.interleaved.interleave` (a fresh process per artifact and round, the order rotated every
round), so a slow minute of a shared machine lands on every artifact in turn. A p50 is the median of the
per-round p50s, and an INT8/FP32 ratio is the median of the per-round ratios (:func:`median_ratio`).
``TARGETS`` are the project's INT8-speed targets, reported as met or not, never asserted.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

from benchmarks.fingerprint import measured_header
from benchmarks.interleaved import add_interleave_arguments, interleave
from benchmarks.measurements import load, markdown_table
from common.arguments import positive_int
from common.outputs import check_writable, write_json
from runtime.artifacts import current, discover

COMPARED = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/int8")
SHORT = {"onnxruntime": "ORT", "openvino": "OV"}
# (column, limit): a model's INT8/FP32 on each runtime, and its OpenVINO INT8 against the first model's.
TARGETS = (("ORT INT8/FP32", 0.6), ("OV INT8/FP32", 0.6), ("OV INT8 / first OV INT8", 0.5))


def pick(folder: str | Path, size: tuple[int, int], checkpoint: str | Path | None = None) -> tuple[str, list]:
    """(model config name, the artifacts of ``COMPARED`` in that order) of one export folder (with a
    ``checkpoint``: only those exported from it); ValueError naming what is missing or ambiguous."""
    found = current(folder, size, checkpoint)[0] if checkpoint is not None else discover(folder, size)[0]
    keys = [a.key for a in found if a.key in COMPARED]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{folder}: more than one {size[0]}x{size[1]} {', '.join(twice)} artifact (several models "
                         f"in one folder?); give each model its own folder")
    by_key = {a.key: a for a in found}
    missing = [k for k in COMPARED if k not in by_key]
    if missing:
        raise ValueError(f"{folder}: no {size[0]}x{size[1]} {', '.join(missing)} artifact(s); export them with "
                         f"adamat export all --targets onnx openvino --out {folder}")
    names = {(by_key[k].manifest.model_config or {}).get("name", "?") for k in COMPARED}
    if len(names) != 1:
        raise ValueError(f"{folder}: the artifacts come from different models ({', '.join(sorted(names))})")
    return names.pop(), [by_key[k] for k in COMPARED]


def median_ratio(rounds_a: list[float], rounds_b: list[float]) -> float:
    """The median over rounds of a_i / b_i: a ratio measured interleaved, robust to a slow round."""
    return statistics.median(a / b for a, b in zip(rounds_a, rounds_b))


def model_rows(rows: list[dict], models: list[str]) -> list[dict]:
    """One table row per model from :func:`interleave`'s rows (``len(COMPARED)`` per model, in order)."""
    out, n = [], len(COMPARED)
    first_ov = rows[COMPARED.index("openvino/int8")]["p50_ms_rounds"]
    for i, model in enumerate(models):
        t = dict(zip(COMPARED, (r["p50_ms_rounds"] for r in rows[i * n:(i + 1) * n])))
        row = {"model": model}
        for runtime in ("onnxruntime", "openvino"):
            fp32, int8 = t[f"{runtime}/fp32"], t[f"{runtime}/int8"]
            short = SHORT[runtime]
            row |= {f"{short} FP32 ms": round(statistics.median(fp32), 2),
                    f"{short} INT8 ms": round(statistics.median(int8), 2),
                    f"{short} INT8/FP32": round(median_ratio(int8, fp32), 3)}
        row["OV INT8 / first OV INT8"] = round(median_ratio(t["openvino/int8"], first_ov), 3)
        row["targets"] = "; ".join(f"{name} <= {limit}: {'met' if row[name] <= limit else 'not met'}"
                                   for name, limit in TARGETS if not (i == 0 and name.endswith("first OV INT8")))
        out.append(row)
    return out


def compare(folders: list[str | Path], size: tuple[int, int] = (512, 512), rounds: int = 5, warmup: int = 3,
            runs: int = 10, threads: int | None = None, checkpoints: list | None = None) -> dict:
    """The measured-results table (kind ``model-comparison``) of the models exported in ``folders`` (with
    ``checkpoints``, one per folder: only the artifacts exported from it)."""
    picked = [pick(f, size, c) for f, c in zip(folders, checkpoints or [None] * len(folders))]
    result = interleave([a.path for _, arts in picked for a in arts], rounds, warmup, runs, threads)
    rows = model_rows(result["rows"], [m for m, _ in picked])
    head = measured_header("model-comparison", input_size=size, threads=threads, runtimes=("onnxruntime", "openvino"),
                           model=", ".join(m for m, _ in picked) + " (their exported artifacts)",
                           fp=result["fingerprint"],
                           method=f"{rounds} rounds, each artifact in a fresh process per round ({warmup} warm-up + "
                                  f"{runs} timed calls), the order rotated every round; p50 the median of per-round "
                                  f"p50s, ratios the median of per-round ratios")
    return head | {"columns": list(rows[0]), "rows": rows,
                   "note": "Compare values within this file only: a shared machine's speed drifts between runs."}


def table(data: dict) -> str:
    return markdown_table(data["columns"], [[str(r[c]) for c in data["columns"]] for r in data["rows"]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_comparison", description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="export folders, one model each (the first is the reference)")
    p.add_argument("--size", type=positive_int, nargs=2, default=(512, 512), metavar=("H", "W"))
    add_interleave_arguments(p)
    p.add_argument("--out", default=None, help="write the table here (a measured-results JSON)")
    args = p.parse_args(argv)
    try:
        out = check_writable(args.out) if args.out else None
        data = compare(args.folders, tuple(args.size), args.rounds, args.warmup, args.runs, args.threads)
        if out is not None:
            write_json({**data, "command": shlex.join(["python", "-m", "benchmarks.model_comparison",
                                                       *(sys.argv[1:] if argv is None else argv)])}, out)
            load(out)   # a valid measured-results file
    except (ValueError, RuntimeError, OSError) as e:   # DataError and MeasuredError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
