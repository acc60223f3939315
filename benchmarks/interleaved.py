"""Latency of a few artifacts compared in one interleaved run: the way to say which runtime is faster on a
shared CPU whose speed drifts by 1.15-1.6x between runs minutes apart.

    python -m benchmarks.interleaved out/export/adamatting_mobile_512x512_int8.onnx \\
        out/export/adamatting_mobile_512x512_openvino_int8.xml out/export/adamatting_mobile_512x512_executorch_int8.pte \\
        --rounds 5 --runs 10 --threads 2 [--out out/bench/interleaved.json]

Each round times every artifact once (:func:`benchmarks.latency.bench_artifact`: a fresh process, warm-up,
``runs`` timed calls), in an order rotated by one each round, so a slow minute of the machine lands on each of
them in turn. Per artifact: the median over rounds of the per-round p50, the lowest and highest round, and
the ratio of the medians to the first artifact's. Prints a table; ``--out`` writes the JSON (every round kept).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from benchmarks.device_bench import markdown_table
from benchmarks.fingerprint import device_fingerprint, fingerprint_id
from benchmarks.latency import bench_artifact
from common.arguments import positive_int
from common.outputs import check_writable, write_json
from runtime.artifacts import open_artifact


def interleave(paths: list[str | Path], rounds: int = 5, warmup: int = 3, runs: int = 10,
               threads: int | None = None) -> dict:
    """Every artifact of ``paths`` timed once per round, the order rotated each round; see the module doc."""
    artifacts = [open_artifact(p) for p in paths]
    sizes = {tuple(a.input_size or ()) for a in artifacts}
    if len(sizes) != 1:
        raise ValueError(f"the artifacts have different input sizes ({sorted(sizes)}): compare one size at a time")
    not_here = [f"{a.path}: {a.note}" for a in artifacts if not a.runs_here]
    if not_here:
        raise ValueError("cannot run here: " + "; ".join(not_here))
    size = list(sizes.pop())
    p50s: list[list[float]] = [[] for _ in artifacts]   # by position: two models' artifacts share keys
    order = list(range(len(artifacts)))
    for r in range(rounds):
        for i in order[r % len(order):] + order[:r % len(order)]:
            row = bench_artifact(artifacts[i], size, warmup, runs, threads, hint="LATENCY")
            if row.get("status") != "ok":
                raise RuntimeError(f"{artifacts[i].path}: {row.get('reason', 'failed')}")
            p50s[i].append(row["p50_ms"])
    base = statistics.median(p50s[0])
    fp = device_fingerprint()
    return {"fingerprint": fp, "fingerprint_id": fingerprint_id(fp),
            "settings": {"input_size": size, "rounds": rounds, "warmup": warmup, "runs": runs, "threads": threads,
                         "order": "rotated by one artifact each round; each artifact in a fresh process"},
            "rows": [{"key": a.key, "label": a.label, "path": str(a.path), "p50_ms_rounds": t,
                      "p50_ms": statistics.median(t), "low_ms": min(t), "high_ms": max(t),
                      f"ratio_to_{artifacts[0].key}": statistics.median(t) / base} for a, t in zip(artifacts, p50s)]}


def table(result: dict) -> str:
    ratio = next(k for k in result["rows"][0] if k.startswith("ratio_to_"))
    return markdown_table(["artifact", "p50 ms (median of rounds)", "lowest round", "highest round", ratio.replace("_", " ")],
                          [[r["label"], f"{r['p50_ms']:.1f}", f"{r['low_ms']:.1f}", f"{r['high_ms']:.1f}",
                            f"{r[ratio]:.2f}×"] for r in result["rows"]])


def add_interleave_arguments(p: argparse.ArgumentParser) -> None:
    """The options of :func:`interleave`: --rounds, --warmup, --runs, --threads."""
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--warmup", type=positive_int, default=3)
    p.add_argument("--runs", type=positive_int, default=10)
    p.add_argument("--threads", type=positive_int, default=None, help="threads of every runtime (default: theirs)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.interleaved", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", help="artifacts with manifests (the first is the ratios' base)")
    add_interleave_arguments(p)
    p.add_argument("--out", default=None, help="write the JSON here")
    args = p.parse_args(argv)
    try:
        out = check_writable(args.out) if args.out else None
        result = interleave(args.artifacts, args.rounds, args.warmup, args.runs, args.threads)
    except (ValueError, RuntimeError) as e:   # ManifestError, DataError and ArtifactError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(result))
    if out is not None:
        write_json(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
