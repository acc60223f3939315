"""ExecuTorch's own benchmark binary on a phone, in the device_bench format: where ExecuTorch's Python runtime
does not install (Android: no wheels), ``executor_runner`` (or ``xnn_executor_runner``) times the ``.pte``.

    python -m benchmarks.runner_log inputs out/export/adamatting_mobile_512x512_executorch_int8.pte --out inputs/
    #   → inputs/image.bin, inputs/trimap.bin: the float32 tensors device_bench times every artifact on
    adb shell /data/local/tmp/executor_runner --model_path=... --inputs=image.bin,trimap.bin \\
        --num_executions=35 --cpu_threads=4 --print_output=none > runner.log 2>&1
    python -m benchmarks.runner_log convert runner.log --artifact out/export/..._executorch_int8.pte \\
        --warmup 5 --threads 4 --out results/latency-phone-executorch.json
    python -m benchmarks.device_bench merge results/*.json --out results/devices.md

``convert`` reads the runner's ``Iteration i of N: X ms`` lines, drops the first ``--warmup`` and writes one
row in the format of :mod:`benchmarks.device_bench`, fingerprinted with the machine it runs on — run it on the
phone itself (Termux) for the phone's fingerprint. UNVERIFIED: no Android device was available; the log format
is that of ExecuTorch 1.5's ``examples/portable/executor_runner``.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

from benchmarks.fingerprint import device_fingerprint, fingerprint_id
from benchmarks.latency import FORMAT, add_ratios, row_id, summarize, synthetic_inputs
from common.outputs import check_folder, inside, write_json
from runtime.artifacts import open_artifact

ITERATION = re.compile(r"Iteration \d+ of \d+: ([0-9.]+) ms")
RUNNER = "executor_runner"


def write_inputs(artifact: str | Path, folder: str | Path) -> list[Path]:
    """``image.bin`` and ``trimap.bin`` in ``folder``: :func:`benchmarks.latency.synthetic_inputs` at the
    artifact's size, raw float32 in NCHW order (what ``--inputs`` reads)."""
    size = open_artifact(artifact).input_size
    check_folder(folder)
    paths = [inside(folder, "image.bin"), inside(folder, "trimap.bin")]
    for path, tensor in zip(paths, synthetic_inputs(size)):
        path.write_bytes(tensor.tobytes())
    return paths


def iteration_ms(log: str) -> list[float]:
    return [float(m) for m in ITERATION.findall(log)]


def convert(log_path: str | Path, artifact: str | Path, warmup: int = 5, threads: int | None = None) -> dict:
    """A device_bench result with the artifact's one row, timed by the runner; ValueError when the log has no
    more iterations than ``warmup``."""
    a = open_artifact(artifact)
    times = iteration_ms(Path(log_path).read_text(errors="replace"))
    if len(times) <= warmup:
        raise ValueError(f"{log_path}: {len(times)} timed iterations ('Iteration i of N: X ms' lines), not more than "
                         f"--warmup {warmup}; run the runner with --num_executions > {warmup}")
    row = {"id": row_id(a), "key": a.key, "label": a.label, "path": str(a.path), "backend": a.backend,
           "run_backend": RUNNER, "precision": a.precision, "note": f"timed by ExecuTorch's {RUNNER}",
           "size_bytes": a.size_bytes, "input_size": a.input_size, "threads": threads, "hint": None,
           "status": "ok", **summarize([t / 1e3 for t in times[warmup:]], warmup), "peak_rss_mb": None, "gmacs": None}
    fp = device_fingerprint()
    return {"format": FORMAT, "fingerprint": fp, "fingerprint_id": fingerprint_id(fp),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "settings": {"artifacts": str(Path(artifact).parent), "checkpoint": None, "input_size": a.input_size,
                         "warmup": warmup, "runs": len(times) - warmup, "threads": threads, "hint": None,
                         "isolation": f"{RUNNER} process"},
            "reference": None, "reference_note": f"{RUNNER} times the program alone: no PyTorch row",
            "rows": add_ratios([row]), "problems": []}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.runner_log", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    i = sub.add_parser("inputs", help="write image.bin and trimap.bin for the runner's --inputs")
    i.add_argument("artifact")
    i.add_argument("--out", default="inputs")
    c = sub.add_parser("convert", help="a runner log as a device_bench JSON")
    c.add_argument("log")
    c.add_argument("--artifact", required=True, help="the .pte the runner timed (with its manifest)")
    c.add_argument("--warmup", type=int, default=5, help="first iterations left out (default 5)")
    c.add_argument("--threads", type=int, default=None, help="the runner's --cpu_threads, to record")
    c.add_argument("--out", required=True)
    args = p.parse_args(argv)
    try:
        if args.command == "inputs":
            print("wrote " + ", ".join(map(str, write_inputs(args.artifact, args.out))))
        else:
            print(f"wrote {write_json(convert(args.log, args.artifact, args.warmup, args.threads), args.out)}")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
