"""How fast the training data pipeline makes samples, alone, with 0, 1, 2 … data workers.

    python -m benchmarks.train_data [--workers 0 1 2] [--crop 512] [--batch 8] [--batches 6] [--rounds 2]
                                    [--out benchmarks/measured/train-data-<date>-<device>.json]

The run's recipe is ``adamat train``'s default (:class:`adamatting.train.TrainConfig`: real cut-outs and photo
crops when ``../shared/data`` is there, procedural ones otherwise). For each worker count, in alternating
rounds, one DataLoader stream (:func:`adamatting.train.batches`) is started and its first batch left out (the
workers start, or the first sample warms the caches); samples per second are those of the next ``--batches``
batches. A training step needs ``batch`` samples: the pipeline keeps up with a GPU when samples/s × step time
≥ batch. Writes a ``train-data`` file of ``benchmarks/measured`` and prints its table.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from adamatting.train import TrainConfig, TrainData, batches
from benchmarks.fingerprint import device_fingerprint, measured_device
from benchmarks.measurements import FORMAT, load, new_path, render
from calib_data.splits import alphamatting_dev_dir
from common.arguments import positive_int
from common.outputs import atomic_path


def samples_per_second(data: TrainData, workers: int, n_batches: int) -> float:
    stream = iter(batches(data, 0, n_batches + 1, 0, workers))
    next(stream)   # startup: left out
    t0 = time.perf_counter()
    for _ in range(n_batches):
        next(stream)
    seconds = time.perf_counter() - t0
    del stream
    return n_batches * data.cfg.batch / seconds


def measure(cfg: TrainConfig, workers: list[int], n_batches: int, rounds: int, cache: Path) -> dict[int, list[float]]:
    data = TrainData(cfg, cache, progress=False)
    rates: dict[int, list[float]] = {w: [] for w in workers}
    for _ in range(rounds):
        for w in workers:
            rates[w].append(samples_per_second(data, w, n_batches))
    return rates


def document(cfg: TrainConfig, rates: dict[int, list[float]], n_batches: int) -> dict:
    fp = device_fingerprint()
    real = cfg.real_fraction > 0 and alphamatting_dev_dir().is_dir()
    best0 = max(rates[0]) if 0 in rates else None
    rows = [{"workers": w, "samples/s": round(max(r), 2), "rounds": ", ".join(f"{x:.2f}" for x in r),
             "vs 0 workers": round(max(r) / best0, 2) if best0 else "—"} for w, r in rates.items()]
    return {"format": FORMAT, "kind": "train-data", "date": date.today().isoformat(),
            "device": measured_device(fp),
            "input_size": [cfg.crop, cfg.crop], "threads": 1,
            "model": "none: the data pipeline alone (adamatting.train.batches)",
            "command": f"python -m benchmarks.train_data --workers {' '.join(map(str, rates))} --crop {cfg.crop} "
                       f"--batch {cfg.batch} --batches {n_batches} --rounds {len(next(iter(rates.values())))}",
            "method": f"the default training recipe ({'real cut-outs and photo crops' if real else 'procedural only'}"
                      f"), batches of {cfg.batch}; per worker count and round, the first batch left out, then "
                      f"{n_batches} batches; samples/s is the best round, rounds alternate between worker counts",
            "columns": ["workers", "samples/s", "rounds", "vs 0 workers"], "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_data", description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--crop", type=positive_int, default=512)
    p.add_argument("--batch", type=positive_int, default=8)
    p.add_argument("--batches", type=positive_int, default=6, help="batches timed per worker count and round")
    p.add_argument("--rounds", type=positive_int, default=2)
    p.add_argument("--cache", default="cache", help="cache root (estimated real foregrounds)")
    p.add_argument("--out", default=None, help="the JSON written (default: benchmarks/measured/train-data-<date>-"
                                              "<device>.json)")
    args = p.parse_args(argv)
    if any(w < 0 for w in args.workers):
        p.error(f"--workers: must be >= 0, got {args.workers}")
    cfg = replace(TrainConfig(), crop=args.crop, batch=args.batch)
    rates = measure(cfg, args.workers, args.batches, args.rounds, Path(args.cache))
    doc = document(cfg, rates, args.batches)
    out = Path(args.out) if args.out else new_path("train-data", doc)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    print(render(out, load(out)))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
