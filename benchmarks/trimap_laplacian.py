"""The matting Laplacian's weight for a drawn trimap's band: candidates on every dev photo, both trimaps.

    python -m benchmarks.trimap_laplacian [--checkpoint weights/mobile-int8.pt] [--weights 1e-4 1e-3 ...]
    python -m benchmarks.trimap_laplacian --phone       # the shipped weight on the 12-megapixel set

For each of the 14 alphamatting.com dev photos and both trimaps: the app's path without the solve
(``Matter(laplacian=None)``: the network, its tiles), that alpha's band solved by
:func:`runtime.matting_laplacian.solve_band` at each candidate weight (the photos are under the working
resolution, so this is ``Matter``'s own solve), and closed-form matting alone, scored by the Composition-1k
protocol (:mod:`evaluation.protocol`). The weight chosen is the one with the lowest mean SAD over the ten photos the
network was trained on (both trimaps); the four held back (``calib_data.splits.REAL_VALIDATION``) only measure it.
Writes a measured-results table (:mod:`benchmarks.measurements`, kind ``trimap-laplacian``).

``--phone``: the shipped weight on the 12-megapixel procedural set (:mod:`calib_data.phone_set`), each image with a
trimap drawn from its ground truth (:func:`calib_data.trimaps.validation_trimap`: unknown within :data:`PHONE_BAND`
px of a partly transparent pixel): Composition-1k scores, seconds and the process's peak RSS with and without the
solve, which runs on the working resolution's band scaled to :data:`runtime.matting_laplacian.MAX_BAND` pixels (kind
``trimap-laplacian-12mp``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from adamatting.config import DEFAULT_WEIGHTS
from benchmarks.fingerprint import measured_header
from benchmarks.measurements import new_path
from calib_data.phone_set import PhoneSetConfig, build_phone_set
from calib_data.readers import AlphaMattingReader, estimate_alpha_closed_form
from calib_data.splits import REAL_TRAIN, REAL_VALIDATION, alphamatting_dev_dir
from calib_data.trimaps import validation_trimap
from common.metrics import compute_all
from evaluation.datasets import EvalFolder
from evaluation.protocol import TRIMAPS, protocol_alpha, quantize_gt
from runtime.matter import Matter
from runtime.matting_laplacian import MAX_BAND, WEIGHT, solve_band

WEIGHTS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)
METRICS = ("SAD", "MSE", "Grad", "Conn")
PHONE_BAND = 24     # px: the 12-megapixel set's drawn band, each side of the partly transparent pixels


def score_rows(checkpoint: Path, weights: tuple[float, ...]) -> list[dict]:
    """One row per photo, trimap and method (the network, each weight, closed-form)."""
    matter = Matter.from_artifact(checkpoint, laplacian=None)
    rows = []
    for sample in AlphaMattingReader(alphamatting_dev_dir(), [*REAL_VALIDATION, *REAL_TRAIN]):
        for name in TRIMAPS:
            trimap = sample.trimaps[name]
            network = matter.predict(sample.image, trimap=trimap, with_trimap_prob=False).alpha
            methods = [("network", None, lambda: network), ("closed-form", None,
                                                            lambda: estimate_alpha_closed_form(sample.image, trimap))]
            methods += [("laplacian", w, lambda w=w: solve_band(sample.image, trimap, network, w)) for w in weights]
            for method, weight, run in methods:
                start = time.perf_counter()
                alpha = run()
                seconds = time.perf_counter() - start
                scores = compute_all(protocol_alpha(alpha, trimap), sample.alpha, trimap)
                rows.append({"image": sample.name, "trimap": name, "held_back": sample.name in REAL_VALIDATION,
                             "method": method, "weight": weight, **{k: round(scores[k], 4) for k in METRICS},
                             "seconds": round(seconds, 3)})
            print(sample.name, name, flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean SAD / Grad per method and weight on the training and the held-back photos, per trimap; the chosen
    weight (the lowest mean SAD on the training photos)."""
    means: dict[str, dict] = {}
    for r in rows:
        key = r["method"] if r["weight"] is None else f"laplacian {r['weight']:g}"
        split = f"{'held-back' if r['held_back'] else 'training'} {r['trimap']}"
        means.setdefault(key, {}).setdefault(split, []).append((r["SAD"], r["Grad"]))
    table = {k: {s: [round(float(x), 3) for x in np.mean(v, axis=0)] for s, v in splits.items()}
             for k, splits in means.items()}
    train = [r for r in rows if r["method"] == "laplacian" and not r["held_back"]]
    sad = {w: np.mean([r["SAD"] for r in train if r["weight"] == w]) for w in {r["weight"] for r in train}}
    return {"chosen_weight": min(sad, key=sad.get), "mean SAD / Grad": table}


def phone_rows(checkpoint: Path) -> list[dict]:
    """The 12-megapixel set with drawn trimaps, the app's path without and with the solve."""
    folder = EvalFolder(build_phone_set(PhoneSetConfig.load("phone"), "cache/phone"))
    matters = {"network": Matter.from_artifact(checkpoint, laplacian=None),
               "laplacian": Matter.from_artifact(checkpoint)}
    rows = []
    for item in folder:
        trimap = validation_trimap(item.alpha, 2 * PHONE_BAND + 1)   # sure regions eroded by PHONE_BAND px
        for method, matter in matters.items():
            start = time.perf_counter()
            result = matter.predict(item.image, trimap=trimap, with_trimap_prob=False)
            seconds = time.perf_counter() - start
            scores = compute_all(protocol_alpha(result.alpha, trimap), quantize_gt(item.alpha), trimap)
            rows.append({"image": item.name, "band_pixels": int((trimap == 128).sum()), "method": method,
                         "weight": WEIGHT if method == "laplacian" else None,
                         **{k: round(scores[k], 3) for k in METRICS}, "seconds": round(seconds, 2),
                         "laplacian_seconds": round(result.timings.get("laplacian", 0.0), 2),
                         "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
        print(item.name, flush=True)
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_WEIGHTS)
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    p.add_argument("--phone", action="store_true", help="the shipped weight on the 12-megapixel set instead")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.phone:
        return _write_phone(args, argv)
    rows = score_rows(args.checkpoint, tuple(args.weights))
    data = measured_header(
        "trimap-laplacian", input_size=(512, 512), threads=None, model=args.checkpoint.name,
        method="Composition-1k protocol on the 14 dev photos x trimap1/trimap2: the app's path without the "
               "matting Laplacian (PyTorch FP32, tiles on), its band solved at each weight, closed-form matting; "
               f"weight chosen by the lowest mean SAD on the training photos {', '.join(REAL_TRAIN)}",
        command=["python", "-m", "benchmarks.trimap_laplacian", *argv], runtimes=())
    data |= {"columns": list(rows[0]), "rows": rows, "details": summary(rows)}
    out = args.out or new_path("trimap-laplacian", data)
    Path(out).write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data["details"], indent=1))
    print(out)
    return 0


def _write_phone(args, argv) -> int:
    rows = phone_rows(args.checkpoint)
    data = measured_header(
        "trimap-laplacian-12mp", input_size=(512, 512), threads=None, model=args.checkpoint.name,
        method=f"Composition-1k protocol on the 12-megapixel procedural set, each image with a trimap drawn from its "
               f"ground truth (unknown within {PHONE_BAND} px of a partly transparent pixel): the app's path (PyTorch "
               f"FP32, tiles on) without and with the matting Laplacian (weight {WEIGHT:g}, its band at most "
               f"{MAX_BAND} pixels at the working resolution); peak RSS of the process so far",
        command=["python", "-m", "benchmarks.trimap_laplacian", *argv], runtimes=())
    data |= {"columns": list(rows[0]), "rows": rows}
    out = args.out or new_path("trimap-laplacian-12mp", data)
    Path(out).write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(rows, indent=1))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
