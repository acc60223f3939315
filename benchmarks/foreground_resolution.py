"""The resolution of blur fusion's box means at 12 megapixels: time, foreground error, bokeh.

    python -m benchmarks.foreground_resolution [--megapixels 1 0.5 0.25] [--runs 7] [--out FILE.json]

For each ``max_megapixels`` of :func:`runtime.foreground.foreground_at`: its median time on the synthetic
4032×3024 portrait (:mod:`benchmarks.portrait`), the bokeh's PSNR against the first value's (whole image and
partly transparent pixels), and the α-weighted mean |F − F_true| on procedural hair, fur and veil composited at
4032×3024 (:mod:`calib_data.procedural`: exact foreground colours), beside the photo's own colours. Writes a
measured-results table (:mod:`benchmarks.measurements`, kind ``foreground-resolution``); no time is asserted.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from statistics import median

import numpy as np

import runtime.bokeh as bokeh
from benchmarks.fingerprint import measured_header
from benchmarks.measurements import new_path
from benchmarks.pipeline_stages import psnr
from benchmarks.portrait import synthetic_portrait
from calib_data.backgrounds import random_background
from calib_data.procedural import make_foreground
from runtime.foreground import foreground_at, partly_transparent

H, W = 3024, 4032
KINDS = ("hair", "fur", "veil")


def foreground_errors(megapixels: list[float], seed: int = 0) -> dict[str, dict]:
    """Per kind: α-weighted mean |F − F_true| per value of ``megapixels``, and of the photo's own colours."""
    rng, out = np.random.default_rng(seed), {}
    for kind in KINDS:
        fg, alpha = make_foreground(kind, (H, W), rng)
        bg = random_background((H, W), rng).astype(np.float32)
        photo = np.clip(np.rint((alpha[..., None] * fg + (1 - alpha[..., None]) * bg) * 255), 0, 255).astype(np.uint8)
        index = np.flatnonzero(partly_transparent(alpha))
        a, truth = alpha.reshape(-1)[index][:, None], fg.reshape(-1, 3)[index]
        error = lambda f: float((a * np.abs(f - truth)).sum() / a.sum() / 3)  # noqa: E731
        out[kind] = {mp: error(foreground_at(photo, alpha, index, max_megapixels=mp)[0]) for mp in megapixels}
        out[kind]["photo"] = error(photo.reshape(-1, 3)[index] / 255.0)
    return out


def timings_and_bokeh(megapixels: list[float], runs: int) -> dict[float, dict]:
    photo, alpha = synthetic_portrait(H, W)
    index = np.flatnonzero(partly_transparent(alpha))
    times: dict[float, list] = {mp: [] for mp in megapixels}
    for _ in range(runs):
        for mp in megapixels:
            start = time.perf_counter()
            foreground_at(photo, alpha, index, max_megapixels=mp)
            times[mp].append(time.perf_counter() - start)
    renders = {}
    for mp in megapixels:
        bokeh.foreground_at = functools.partial(foreground_at, max_megapixels=mp)
        renders[mp] = bokeh.render_bokeh(photo, alpha)[0]
    bokeh.foreground_at = foreground_at
    band = (alpha > 0) & (alpha < 1)
    first = renders[megapixels[0]]
    return {mp: {"ms": 1000 * median(times[mp]), "psnr": psnr(first, renders[mp]),
                 "psnr_band": psnr(first[band], renders[mp][band])} for mp in megapixels}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    speed, errors = timings_and_bokeh(args.megapixels, args.runs), foreground_errors(args.megapixels)
    rows = [{"max megapixels": mp, "foreground ms": round(speed[mp]["ms"], 1),
             **{f"F error, {k}": round(errors[k][mp], 4) for k in KINDS},
             "bokeh PSNR dB (whole / band)": f"{speed[mp]['psnr']:.1f} / {speed[mp]['psnr_band']:.1f}"}
            for mp in args.megapixels]
    rows.append({"max megapixels": "the photo's colours", "foreground ms": "—",
                 **{f"F error, {k}": round(errors[k]["photo"], 4) for k in KINDS},
                 "bokeh PSNR dB (whole / band)": "—"})
    data = measured_header(
        "foreground-resolution", input_size=(H, W), threads=None, model="none (the renderer's blur fusion)",
        method=f"runtime.foreground.foreground_at at {W}x{H}: median of {args.runs} interleaved runs on the synthetic "
               f"portrait; bokeh PSNR against max_megapixels {args.megapixels[0]}; F error: the alpha-weighted mean |F - F_true| "
               f"over the partly transparent pixels of procedural {', '.join(KINDS)} composited at {W}x{H}",
        command=["python", "-m", "benchmarks.foreground_resolution", *argv], runtimes=())
    data |= {"columns": list(rows[0]), "rows": rows}
    out = args.out or new_path("foreground-resolution", data)
    with open(out, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
    print(json.dumps(rows, indent=1))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
