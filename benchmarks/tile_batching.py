"""The refinement's four tiles: one network call each (what the runtime does), or together where the runtime can.

    python -m benchmarks.tile_batching ARTIFACT [ARTIFACT ...] [--rounds 8] [--tiles 4] [--out FILE]

An OpenVINO IR (``.xml``) is timed three ways: ``--tiles`` calls of one tile on one request (the runtime's way),
one call of all of them (the IR reshaped to that batch), and two requests in flight on two streams of one thread
each (OpenVINO's THROUGHPUT hint). An ONNX graph under onnxruntime two ways: one call per tile, and two calls at a
time from two threads on a session of one thread each. The tiles are seeded random photos and trimaps of the
artifact's input size; the ways alternate, round after round, and their medians (ms for all the tiles) go to a
``tile-batching`` table. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

import numpy as np

from benchmarks.fingerprint import measured_header
from benchmarks.measurements import save
from common.arguments import whole_number

INPUTS = ("image", "trimap")


def tiles(shape: tuple[int, int], count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``count`` seeded network inputs of ``shape`` = (H, W): an image encoded as the model takes it (2I − 1) and
    a trimap of 0 / 0.5 / 1."""
    rng = np.random.default_rng(seed)
    return [{"image": rng.random((1, 3, *shape), dtype=np.float32) * 2 - 1,
             "trimap": np.round(rng.random((1, 1, *shape), dtype=np.float32) * 2) / 2} for _ in range(count)]


def openvino_ways(path: Path, count: int) -> tuple[tuple[int, int], dict]:
    import openvino as ov

    core = ov.Core()
    latency = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    one = core.compile_model(str(path), "CPU", latency)
    shape = tuple(one.input("image").get_shape())[2:]
    batched = core.read_model(str(path))
    batched.reshape({"image": [count, 3, *shape], "trimap": [count, 1, *shape]})
    together = core.compile_model(batched, "CPU", latency)
    streams = core.compile_model(str(path), "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2",
                                                    "INFERENCE_NUM_THREADS": "2", "INFERENCE_PRECISION_HINT": "f32"})
    request, batch_request, queue = one.create_infer_request(), together.create_infer_request(), ov.AsyncInferQueue(
        streams, 2)

    def in_flight(inputs):
        for each in inputs:
            queue.start_async(each)
        queue.wait_all()

    return shape, {"one call per tile": lambda inputs: [request.infer(x) for x in inputs],
                   f"one call of {count}": lambda inputs: batch_request.infer(stacked(inputs)),
                   "two streams, two in flight": in_flight}


def onnxruntime_ways(path: Path, count: int) -> tuple[tuple[int, int], dict]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    single = ort.SessionOptions()
    single.intra_op_num_threads = 1
    one_thread = ort.InferenceSession(str(path), single, providers=["CPUExecutionProvider"])
    pool = ThreadPoolExecutor(2)
    shape = tuple(session.get_inputs()[0].shape[2:])
    return shape, {"one call per tile": lambda inputs: [session.run(None, x) for x in inputs],
                   "two threads, two in flight": lambda inputs: list(pool.map(lambda x: one_thread.run(None, x),
                                                                               inputs))}


def stacked(inputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([x[name] for x in inputs]) for name in INPUTS}


WAYS = {".xml": ("OpenVINO", openvino_ways), ".onnx": ("onnxruntime", onnxruntime_ways)}


def measure(path: Path, count: int, rounds: int) -> tuple[tuple[int, int], list[dict]]:
    """The network's input size, and a row per way of running ``count`` tiles through ``path``: the median ms
    over ``rounds`` alternating rounds (after one round of warm-up)."""
    runtime, open_ways = WAYS[path.suffix]
    shape, ways = open_ways(path, count)
    inputs = tiles(shape, count)
    times: dict[str, list[float]] = {name: [] for name in ways}
    for done in range(rounds + 1):
        for name, run in ways.items():
            start = time.perf_counter()
            run(inputs)
            if done:
                times[name].append(1000 * (time.perf_counter() - start))
    return shape, [{"model": f"{runtime} {path.name}", "way": name, "tiles": count, "ms": round(median(t), 1),
                    "ms per tile": round(median(t) / count, 1)} for name, t in times.items()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tile_batching", description=__doc__.split("\n\n")[0])
    p.add_argument("artifacts", nargs="+", type=Path, help="OpenVINO IRs (.xml) and ONNX graphs (.onnx)")
    p.add_argument("--tiles", type=whole_number(1, 64), default=4, help="tiles per photo (default 4: the runtime's)")
    p.add_argument("--rounds", type=whole_number(1, 1000), default=8, help="rounds of every way (default 8)")
    p.add_argument("--out", default=None, help="measured-results file (default benchmarks/measured/"
                                               "tile-batching-<date>-<device>.json)")
    args = p.parse_args(argv)
    for path in args.artifacts:
        if path.suffix not in WAYS or not path.is_file():
            p.error(f"{path}: not an OpenVINO IR (.xml) or ONNX graph (.onnx) file")
    measured = [measure(path, args.tiles, args.rounds) for path in args.artifacts]
    rows = [row for _, table in measured for row in table]
    data = measured_header(
        "tile-batching", input_size=measured[0][0], threads=None, runtimes=("onnxruntime", "openvino"),
        model=", ".join(str(a) for a in args.artifacts),
        method=f"{args.tiles} seeded random tiles of the artifact's input size through the network: one call per "
               f"tile, together in one call (OpenVINO, the IR reshaped to batch {args.tiles}), or two in flight "
               f"(OpenVINO's two streams of one thread, onnxruntime's two threads on a one-thread session); "
               f"{args.rounds} alternating rounds after one of warm-up, medians of the time for all the tiles",
        command=["python", "-m", "benchmarks.tile_batching", *(sys.argv[1:] if argv is None else argv)])
    save(data | {"columns": list(rows[0]), "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
