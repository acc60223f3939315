"""Latency of the PyTorch FP32 reference and of every exported artifact that runs here, with pytest-benchmark.

Run with ``make bench`` (``--benchmark-enable``); under the project's default ``--benchmark-disable`` each
benchmark executes once as a smoke test. No wall-clock time is asserted.

Each round is one backend ``run(image, trimap)`` call on :func:`benchmarks.latency.synthetic_inputs` of the
artifact's size, opened with :func:`benchmarks.latency.run_options` — what ``python -m
benchmarks.device_bench`` times, here in one process (peak RSS per artifact is the device bench's job).
``extra_info`` carries p50/p90/p99 (:func:`benchmarks.latency.summarize` of the rounds), the input size,
GMACs, threads, hint, and ``ratio_to_torch_fp32``: p50 over the PyTorch FP32 p50 of the same session
(:class:`Reference`).

Environment: ``ADAMAT_ARTIFACTS`` (default ``out/export``), ``ADAMAT_BENCH_SIZE`` (``512x512``),
``ADAMAT_BENCH_ROUNDS`` (30), ``ADAMAT_BENCH_WARMUP`` (5), ``ADAMAT_BENCH_THREADS`` (the runtimes' default),
``ADAMAT_BENCH_HINT`` (OpenVINO's ``LATENCY``), ``ADAMAT_CHECKPOINT`` (``weights/mobile.pt``).
Benchmark names (``test_reference_latency``, ``test_artifact_latency[<key>]``) do not change between runs,
so ``--benchmark-compare`` matches a saved baseline.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.latency import (
    EXPORT_HINT,
    gmacs,
    measure,
    row_id,
    run_options,
    summarize,
    synthetic_inputs,
)
from runtime.artifacts import REFERENCE_KEY, Artifact, discover, open_runner, reference

ARTIFACTS = Path(os.environ.get("ADAMAT_ARTIFACTS", "out/export"))
SIZE = tuple(int(s) for s in os.environ.get("ADAMAT_BENCH_SIZE", "512x512").split("x"))
ROUNDS = int(os.environ.get("ADAMAT_BENCH_ROUNDS", "30"))
WARMUP = int(os.environ.get("ADAMAT_BENCH_WARMUP", "5"))
THREADS = int(os.environ["ADAMAT_BENCH_THREADS"]) if os.environ.get("ADAMAT_BENCH_THREADS") else None
HINT = os.environ.get("ADAMAT_BENCH_HINT", "LATENCY")
CHECKPOINT = Path(os.environ.get("ADAMAT_CHECKPOINT", DEFAULT_WEIGHTS))

pytestmark = pytest.mark.benchmark(group=f"model latency {SIZE[0]}x{SIZE[1]}")


def _artifact_params() -> list:
    """One param per artifact of SIZE (skipped with the reason where it cannot run here), or one skip."""
    found, _ = discover(ARTIFACTS, SIZE)
    if not found:
        reason = f"no {SIZE[0]}x{SIZE[1]} artifacts in {ARTIFACTS}: {EXPORT_HINT}"
        return [pytest.param(None, id="none", marks=pytest.mark.skip(reason=reason))]
    return [pytest.param(a, id=row_id(a), marks=() if a.runs_here else
                         pytest.mark.skip(reason=f"{a.label} does not run here: {a.note}")) for a in found]


class Reference:
    """The PyTorch FP32 reference: its runner, and its p50 — test_reference_latency's own (collected first, it
    runs before every artifact), or, where it was deselected, timed with :func:`benchmarks.latency.measure`
    when a ratio first needs it."""

    def __init__(self, checkpoint: Path):
        self.artifact = reference(checkpoint)
        self.runner = open_runner(self.artifact, SIZE, **run_options("torch", THREADS))
        self.p50_ms: float | None = None

    def p50(self) -> float:
        if self.p50_ms is None:
            self.p50_ms = measure(self.runner.run, synthetic_inputs(SIZE), WARMUP, ROUNDS)["p50_ms"]
        return self.p50_ms


@pytest.fixture(scope="session")
def torch_reference() -> Reference:
    if not CHECKPOINT.is_file():
        pytest.fail(f"{CHECKPOINT} is missing: the PyTorch FP32 reference needs the checkpoint "
                    f"(set ADAMAT_CHECKPOINT to use another)")
    return Reference(CHECKPOINT)


def _time(benchmark, artifact: Artifact, runner, torch_reference: Reference) -> None:
    """Benchmark ``runner.run`` (WARMUP + ROUNDS rounds of one call) and fill ``extra_info``; under
    --benchmark-disable one untimed call, and no timings in ``extra_info``."""
    alpha, _ = benchmark.pedantic(runner.run, synthetic_inputs(SIZE), rounds=ROUNDS, warmup_rounds=WARMUP)
    options = run_options(artifact.run_backend, THREADS, HINT)
    benchmark.extra_info.update({"key": artifact.key, "input_size": list(SIZE), "gmacs": gmacs(artifact, SIZE),
                                 "threads": options.get("threads"), "hint": options.get("hint")})
    if benchmark.enabled:
        stats = summarize(benchmark.stats.stats.data, WARMUP)
        if artifact.key == REFERENCE_KEY:
            torch_reference.p50_ms = stats["p50_ms"]
        benchmark.extra_info.update({k: stats[k] for k in ("p50_ms", "p90_ms", "p99_ms")})
        benchmark.extra_info["ratio_to_torch_fp32"] = stats["p50_ms"] / torch_reference.p50()
    assert alpha.shape == (1, 1, *SIZE)


def test_reference_latency(benchmark, torch_reference):
    _time(benchmark, torch_reference.artifact, torch_reference.runner, torch_reference)


@pytest.mark.parametrize("artifact", _artifact_params())
def test_artifact_latency(benchmark, artifact, torch_reference):
    runner = open_runner(artifact, SIZE, **run_options(artifact.run_backend, THREADS, HINT))
    _time(benchmark, artifact, runner, torch_reference)
