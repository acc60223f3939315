"""Latency of exported artifacts against the PyTorch FP32 reference: the one timing implementation.

What is measured: one backend ``run(image, trimap)`` call — the network alone, batch 1, on encoded float32
inputs of the artifact's fixed size (:func:`synthetic_inputs`); decoding, resizing and upsampling are the
same for every runtime and are not included. :func:`measure` makes ``warmup`` untimed calls (first-call
allocation, lazy kernel selection, caches), then times ``runs`` calls one at a time with
``time.perf_counter``. p50/p90/p99 are NumPy's (linearly interpolated) percentiles of those per-call
times; throughput is 1 / mean: sequential images per second, not a batched or concurrent throughput.

Isolation: :func:`bench_artifact` times each artifact in a fresh child process
(``python -m benchmarks.latency --one PATH ...``), so its peak RSS is that artifact's alone (runtime, model,
buffers) and no runtime's thread pools or allocator state carry over to the next row.

Imports neither torch nor any runtime at module level: :mod:`benchmarks.device_bench` runs it on targets
that have neither. GMACs are counted only where torch imports.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.fingerprint import device_fingerprint, fingerprint_id
from common.targets import RUNTIMES, export_commands
from runtime.artifacts import (
    REFERENCE_KEY,
    Artifact,
    discover,
    open_artifact,
    open_runner,
    reference,
)
from runtime.backends import BACKENDS

FORMAT = "adamatting-latency/1"
ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 1800   # one artifact's warm-up and runs; a slow device at 512x512 needs minutes, not hours
EXPORT_HINT = f"run {export_commands()}"


def summarize(seconds: Sequence[float], warmup: int = 0) -> dict:
    """Statistics of per-call times in seconds: p50/p90/p99, mean, std (sample), min in ms; images/s = 1/mean."""
    s = np.asarray(seconds, dtype=np.float64)
    if s.size == 0:
        raise ValueError("no timings to summarize")
    p50, p90, p99 = np.percentile(s, [50, 90, 99]) * 1e3
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(s.mean() * 1e3),
            "std_ms": float(s.std(ddof=1) * 1e3) if s.size > 1 else 0.0, "min_ms": float(s.min() * 1e3),
            "throughput_ips": float(1.0 / s.mean()), "runs": int(s.size), "warmup": int(warmup)}


def measure(run: Callable, inputs: Sequence, warmup: int = 5, runs: int = 30,
            clock: Callable[[], float] = time.perf_counter) -> dict:
    """``warmup`` untimed calls of ``run(*inputs)``, then ``runs`` calls each timed alone with ``clock``
    (seconds); their :func:`summarize`."""
    for _ in range(warmup):
        run(*inputs)
    seconds = []
    for _ in range(runs):
        start = clock()
        run(*inputs)
        seconds.append(clock() - start)
    return summarize(seconds, warmup)


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process, in MiB. Linux (and Android): ``VmHWM`` of ``/proc/self/status``,
    the peak of this address space — ``ru_maxrss`` there survives ``execve``, so a child started by a large
    parent would report the parent's peak. Elsewhere ``ru_maxrss`` (bytes on macOS, KiB on other Unixes);
    None on Windows."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


def synthetic_inputs(size: Sequence[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded encoded inputs of ``size`` (H, W): image uniform in [−1, 1] (1, 3, H, W); trimap (1, 1, H, W) a
    portrait's layout — a foreground disc (radius 0.3 of the short side), an unknown ring 0.1 wide, background
    around. Every backend computes the whole graph whatever the values; in-range values keep INT8 artifacts
    on their calibrated ranges."""
    h, w = (int(s) for s in size)
    image = np.random.default_rng(seed).uniform(-1.0, 1.0, (1, 3, h, w)).astype(np.float32)
    yy, xx = np.ogrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) / min(h, w)
    trimap = np.select([r < 0.3, r < 0.4], [1.0, 0.5], 0.0).astype(np.float32)
    return image, trimap[None, None]


def row_id(a: Artifact) -> str:
    """The artifact's gate key, with the file kind where one key has two files (TensorRT's ONNX and engine)."""
    return f"{a.key}:{a.path.suffix.lstrip('.')}" if a.backend == "tensorrt" else a.key


def run_options(run_backend: str | None, threads: int | None = None, hint: str | None = None) -> dict:
    """The backend options to open ``run_backend`` with: ``threads`` for torch, onnxruntime and OpenVINO,
    ``hint`` for OpenVINO; the others take neither, so neither is applied (or recorded) for them."""
    asked = {"threads": threads, "hint": hint}
    takes = RUNTIMES[run_backend].options if run_backend in RUNTIMES else ()
    return {k: asked[k] for k in takes if asked[k] is not None}


@functools.lru_cache(maxsize=None)
def _count_gmacs(config_json: str, size: tuple[int, int]) -> float:
    from adamatting.budget import count_config
    from adamatting.config import ModelConfig

    return count_config(ModelConfig.from_dict(json.loads(config_json)), size)["gmacs"]


def gmacs(a: Artifact, input_size: Sequence[int]) -> float | None:
    """Multiply-accumulates (×10⁹) of one forward pass of ``a``'s model at ``input_size``, counted by
    ``torch.utils.flop_counter`` as :mod:`adamatting.budget` counts them (FLOPs / 2): the model's, the same
    for every precision. Counted once per (model config, size); None without torch or a readable config."""
    if importlib.util.find_spec("torch") is None:
        return None
    if a.manifest is not None:
        config = a.manifest.model_config
    else:
        from adamatting.checkpoint import CheckpointError, read_checkpoint

        try:
            config = read_checkpoint(a.path)["config"]
        except CheckpointError:
            return None
    try:
        return _count_gmacs(json.dumps(config, sort_keys=True), tuple(int(s) for s in input_size))
    except (KeyError, TypeError, ValueError):  # a config this version of the model cannot build: no count
        return None


def time_artifact(a: Artifact, input_size: Sequence[int], warmup: int = 5, runs: int = 30, threads: int | None = None,
                  hint: str | None = None) -> dict:
    """Open ``a`` in this process and :func:`measure` its ``run`` on :func:`synthetic_inputs`; the timing
    statistics plus this process's peak RSS."""
    runner = open_runner(a, input_size, **run_options(a.run_backend, threads, hint))
    return {**measure(runner.run, synthetic_inputs(input_size), warmup, runs), "peak_rss_mb": peak_rss_mb()}


def _time_in_child(a: Artifact, input_size: Sequence[int], warmup: int, runs: int, options: dict) -> dict:
    """:func:`time_artifact` in a fresh Python process (see :func:`main`); a crash or a hang (more than
    :data:`CHILD_TIMEOUT_S`) becomes a failed row."""
    cmd = [sys.executable, "-m", "benchmarks.latency", "--one", str(a.path.resolve()), "--size", *map(str, input_size),
           "--warmup", str(warmup), "--runs", str(runs), *(f"--{k}={v}" for k, v in options.items())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"its benchmark process did not finish in {CHILD_TIMEOUT_S} s (hung?)"}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "failed", "reason": f"its benchmark process exited with code {proc.returncode}: {last}"}


def bench_artifact(a: Artifact, input_size: Sequence[int], warmup: int = 5, runs: int = 30, threads: int | None = None,
                   hint: str | None = None) -> dict:
    """One result row: ``a``'s facts, then its timings and peak RSS from a fresh child process
    (``status: "ok"``), or ``status: "not run"`` / ``"failed"`` with the ``reason``. GMACs are left to the
    caller (:func:`gmacs`): counting them imports torch, and where peak RSS is ``ru_maxrss`` a child inherits
    its parent's, so the parent should stay small until every child has run."""
    options = run_options(a.run_backend, threads, hint)
    row = {"id": row_id(a), "key": a.key, "label": a.label, "path": str(a.path), "backend": a.backend,
           "run_backend": a.run_backend, "precision": a.precision, "note": a.note,
           "size_bytes": a.size_bytes if a.path.exists() else None, "input_size": [int(s) for s in input_size],
           "threads": options.get("threads"), "hint": options.get("hint")}
    if not a.runs_here:
        return {**row, "status": "not run", "reason": a.note}
    return {**row, **_time_in_child(a, input_size, warmup, runs, options)}


def _ratio(p50: float | None, base: float | None) -> float | None:
    return p50 / base if p50 and base else None


def add_ratios(rows: list[dict]) -> list[dict]:
    """Set ``ratio_to_torch_fp32`` (p50 / the PyTorch FP32 row's p50) and ``ratio_to_fp32_same_runtime``
    (p50 / the p50 of the FP32 artifact of the runtime that runs the row: onnxruntime INT8 over onnxruntime
    FP32, OpenVINO INT8 over OpenVINO FP32; TensorRT graphs run by onnxruntime over onnxruntime FP32) on
    every row; None where either p50 is missing."""
    timed = [r for r in rows if r.get("status") == "ok"]
    torch_p50 = next((r["p50_ms"] for r in timed if r["key"] == REFERENCE_KEY), None)
    fp32 = {r["run_backend"]: r["p50_ms"] for r in timed
            if r["precision"] == "fp32" and r["backend"] == r["run_backend"]}
    for r in rows:
        r["ratio_to_torch_fp32"] = _ratio(r.get("p50_ms"), torch_p50)
        r["ratio_to_fp32_same_runtime"] = _ratio(r.get("p50_ms"), fp32.get(r["run_backend"]))
    return rows


def select_artifacts(folder: str | Path, input_size: Sequence[int] | None = None
                     ) -> tuple[list[Artifact], list[str], list[int]]:
    """The artifacts of ``folder`` at ``input_size`` (default: the one size they all share), the problem lines
    of those without a usable manifest, and the size. ValueError / FileNotFoundError saying what is wrong."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder ({EXPORT_HINT})")
    found, problems = discover(folder)
    if not found:
        why = f"; {len(problems)} without a usable manifest, e.g. {problems[0]}" if problems else ""
        raise ValueError(f"no artifacts in {folder}{why} ({EXPORT_HINT})")
    sizes = sorted({tuple(a.input_size) for a in found})
    listed = ", ".join(f"{h}x{w}" for h, w in sizes)
    if input_size is None and len(sizes) > 1:
        raise ValueError(f"{folder} holds artifacts of several input sizes ({listed}): choose one with --size H W")
    input_size = [int(s) for s in (input_size or sizes[0])]
    chosen = [a for a in found if a.input_size == input_size]
    if not chosen:
        raise ValueError(f"no {input_size[0]}x{input_size[1]} artifacts in {folder} (it holds {listed})")
    return chosen, problems, input_size


def _reference_note(ref: Artifact | None, rows: list[dict]) -> str:
    """Why there is no PyTorch FP32 reference timing; "" when there is one (then it is ``rows[0]``)."""
    if ref is None:
        return "no checkpoint given"
    if not ref.runs_here:
        return ref.note
    return "" if rows[0]["status"] == "ok" else f"the reference failed: {rows[0]['reason']}"


def _other_model(checkpoint: str | Path, artifacts: list[Artifact]) -> str:
    """Why ``checkpoint`` cannot time the reference row of these artifacts ("" when it can): it is another
    network than every one they were exported from (their manifests' model config; the number of propagation
    steps aside, an export option), and its latency would make every ratio meaningless. Only asked where
    torch runs the reference. CheckpointError naming the file when it is missing or unreadable."""
    from adamatting.checkpoint import read_checkpoint
    from adamatting.config import ModelConfig

    ours = ModelConfig.from_dict(read_checkpoint(checkpoint)["config"])
    theirs = {ModelConfig.from_dict(a.manifest.model_config).replace(pu_steps=ours.pu_steps)
              for a in artifacts if a.manifest is not None}
    if not theirs or ours in theirs:
        return ""
    return (f"{checkpoint} is another model than the artifacts were exported from ("
            + "; ".join(f"{k} {a} vs {b}" for k, a, b in ours.differences(sorted(theirs, key=str)[0]))
            + "): no reference row")


def bench_all(folder: str | Path, checkpoint: str | Path | None = None, input_size: Sequence[int] | None = None,
              warmup: int = 5, runs: int = 30, threads: int | None = None, hint: str | None = "LATENCY",
              progress: Callable[[dict], None] | None = None) -> dict:
    """Every artifact of ``folder`` at one input size, each in its own process, after the PyTorch FP32 reference
    row from ``checkpoint`` (none without a checkpoint or where torch does not import: ``reference_note`` says
    why and every ``ratio_to_torch_fp32`` is None). ``progress`` is called with each row as it is done."""
    artifacts, problems, input_size = select_artifacts(folder, input_size)
    ref = reference(checkpoint) if checkpoint is not None else None
    mismatch = _other_model(checkpoint, artifacts) if ref is not None and ref.runs_here else ""
    benched = ([ref] if ref is not None and ref.runs_here and not mismatch else []) + artifacts
    rows = []
    for a in benched:
        rows.append(bench_artifact(a, input_size, warmup, runs, threads, hint))
        if progress is not None:
            progress(rows[-1])
    for a, row in zip(benched, rows):
        row["gmacs"] = gmacs(a, input_size)
    reference_note = mismatch or _reference_note(ref, rows)
    fp = device_fingerprint()
    return {"format": FORMAT, "fingerprint": fp, "fingerprint_id": fingerprint_id(fp),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "settings": {"artifacts": str(folder), "checkpoint": None if ref is None else str(checkpoint),
                         "input_size": input_size, "warmup": warmup, "runs": runs, "threads": threads, "hint": hint,
                         "isolation": "one process per artifact"},
            "reference": None if reference_note else REFERENCE_KEY, "reference_note": reference_note,
            "rows": add_ratios(rows), "problems": problems}


def main(argv: list[str] | None = None) -> int:
    """The child process of :func:`bench_artifact`: time one artifact here, print its timings as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.latency", description=main.__doc__)
    p.add_argument("--one", type=Path, required=True, help="artifact, or a .pt checkpoint for the PyTorch reference")
    p.add_argument("--size", type=int, nargs=2, required=True, metavar=("H", "W"))
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--hint", default=None)
    args = p.parse_args(argv)
    try:
        a = reference(args.one) if args.one.suffix in BACKENDS["torch"].suffixes else open_artifact(args.one)
        out = {"status": "ok", **time_artifact(a, args.size, args.warmup, args.runs, args.threads, args.hint)}
    except Exception as e:  # whatever a runtime raises is this row's failure, not the whole benchmark's
        out = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
