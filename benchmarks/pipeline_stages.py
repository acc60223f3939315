"""The bokeh pipeline's own stages at 12 megapixels, before and after the rewrite, in one interleaved run.

    python -m benchmarks.pipeline_stages [--runs 5] [--model weights/mobile.pt] [--out FILE.json]

On the synthetic 4032×3024 portrait (:mod:`benchmarks.portrait`) with a segmenter's 256-px mask, every stage
this module compares runs in its reference form (:mod:`benchmarks.pipeline_reference`, the code before the
rewrite) and in the runtime's, alternately, ``--runs`` times each: trimap, guided upsampling, foreground, lens
blur, composite, and the renderer as a whole. Quality beside each: the share of trimap pixels that differ,
the largest alpha difference of the upsampling, and the rendered bokeh's PSNR against the reference. With
``--model``, ``Matter.predict`` runs both ways too (the reference trimap and upsampling patched in), for the
mean |Δα| of the whole matting path (its refinement included) and the trimap and upsampling stages there. Writes a measured-results table
(:mod:`benchmarks.measurements`, kind ``pipeline-stages``); no time is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from statistics import median
from typing import Callable, Iterator

import cv2
import numpy as np

import benchmarks.pipeline_reference as ref
import runtime.matter
from benchmarks.fingerprint import measured_header
from benchmarks.measurements import new_path
from benchmarks.portrait import segmenter_mask, synthetic_portrait
from runtime import bokeh, foreground, lens_blur, upsample
from runtime.preprocess import band_for_mask, make_trimap, to_mask

H, W = 3024, 4032
SMALL = (384, 512)       # the model's view of a 4032×3024 photo at 512×512


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def interleaved(before: Callable[[], object], after: Callable[[], object], runs: int) -> tuple[list, list, tuple]:
    """Seconds of ``runs`` calls of each, alternating (one warm-up of each first), and the last results."""
    results = (before(), after())
    times: tuple[list, list] = ([], [])
    for _ in range(runs):
        for k, f in enumerate((before, after)):
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return times[0], times[1], results


def row(stage: str, times: tuple[list, list], quality: str) -> dict:
    before, after = (1000 * median(t) for t in times)
    return {"stage": stage, "before ms": round(before, 1), "after ms": round(after, 1),
            "speed-up": round(before / after, 2), "quality": quality}


def stage_rows(runs: int) -> list[dict]:
    photo, alpha = synthetic_portrait(H, W)
    mask = segmenter_mask(alpha)
    band = band_for_mask((H, W), mask.shape).inside   # one width on both sides, as the reference takes
    rows = []
    t0, t1, (old, new) = interleaved(lambda: ref.trimap_from_mask(to_mask(mask), (H, W), band),
                                     lambda: make_trimap((H, W), mask=mask, band=band), runs)
    rows.append(row("trimap", (t0, t1), f"{np.mean(old != new):.3%} of pixels differ (band {band} px)"))
    photo01 = photo.astype(np.float32) / np.float32(255.0)
    small = cv2.resize(photo01, SMALL[::-1], interpolation=cv2.INTER_AREA)
    alpha_small = cv2.resize(alpha, SMALL[::-1], interpolation=cv2.INTER_AREA)
    t0, t1, (old, new) = interleaved(lambda: ref.upsample_alpha(alpha_small, photo01, small),
                                     lambda: upsample.upsample_alpha(alpha_small, photo01, small), runs)
    rows.append(row("upsample", (t0, t1), f"max |Δα| {np.abs(old - new).max():.1e}"))
    del photo01, small
    t0, t1, (old, new) = interleaved(lambda: ref.estimate_foreground(photo, alpha),
                                     lambda: foreground.estimate_foreground(photo, alpha), runs)
    (mask_fg, fg_old, bg_old), (_, fg_new, bg_new) = old, new
    rows.append(row("foreground", (t0, t1), f"mean |ΔF| {np.abs(fg_old - fg_new).mean():.4f} in the band"))
    index = np.flatnonzero(mask_fg)
    t0, t1, (bg_before, bg_after) = interleaved(
        lambda: ref.lens_blur(photo, alpha, background=(mask_fg, bg_old)),
        lambda: lens_blur.lens_blur(photo, alpha, background=(index, bg_new)), runs)
    seen = alpha < 1.0
    rows.append(row("blur", (t0, t1), f"PSNR {psnr(bg_before[seen], bg_after[seen]):.1f} dB where α < 1"))
    t0, t1, (old, new) = interleaved(lambda: ref.composite(photo, alpha, bg_before, mask_fg, fg_old),
                                     lambda: bokeh.composite(photo, alpha, bg_before, index, fg_old), runs)
    rows.append(row("composite", (t0, t1), "identical" if np.array_equal(old, new) else f"PSNR {psnr(old, new):.1f} dB"))
    t0, t1, (old, (new, _)) = interleaved(lambda: ref.render_bokeh(photo, alpha),
                                          lambda: bokeh.render_bokeh(photo, alpha), runs)
    rows.append(row("render (foreground + blur + composite)", (t0, t1), f"bokeh PSNR {psnr(old, new):.1f} dB"))
    return rows


@contextmanager
def reference_matting() -> Iterator[None]:
    """``Matter.predict`` with the reference trimap, upsampling and refinement patched in."""
    saved = runtime.matter.make_trimap, runtime.matter.upsample_alpha, runtime.matter.refine

    def old_make_trimap(shape, trimap=None, mask=None, band=None):
        return ref.trimap_from_mask(to_mask(np.asarray(mask)), shape, band)

    runtime.matter.make_trimap = old_make_trimap
    runtime.matter.upsample_alpha = ref.upsample_alpha
    runtime.matter.refine = ref.refine
    try:
        yield
    finally:
        runtime.matter.make_trimap, runtime.matter.upsample_alpha, runtime.matter.refine = saved


def matting_rows(model: str, runs: int) -> list[dict]:
    """The matting path's stages (``Matter.predict``) both ways, and the mean |Δα| of the whole path."""
    photo, alpha = synthetic_portrait(H, W)
    mask = segmenter_mask(alpha)
    band = band_for_mask((H, W), mask.shape).inside   # one width on both sides, as the reference takes
    matter = runtime.matter.Matter.from_artifact(model)

    def predict():
        return matter.predict(photo, mask=mask, band=band, with_trimap_prob=False)

    def before():
        with reference_matting():
            return predict()

    delta = float(np.abs(before().alpha - predict().alpha).mean())     # also the warm-up of each
    timings: tuple[list, list] = ([], [])
    for _ in range(runs):
        for k, f in enumerate((before, predict)):
            timings[k].append(f().timings)
    rows = []
    for stage in ("trimap", "upsample", "refine"):
        if stage in timings[0][0]:
            times = tuple([t[stage] for t in timings[k]] for k in (0, 1))
            rows.append(row(f"Matter.predict: {stage}", times, f"mean |Δα| {delta:.1e} (whole matting path)"))
    return rows


# The app's path without the network (its alpha stands in from the mask) in a fresh process: decode, trimap,
# the photo as float, letterbox, guided upsampling, known-region clamp, renderer, encode; prints its peak RSS
# (MiB, VmHWM: ru_maxrss would carry the parent's over fork and exec).
_RSS_CHILD = """
import sys, cv2, numpy as np
from runtime.bokeh import render_bokeh
from runtime.photo_files import encode_photo
from runtime.preprocess import Letterbox, as_uint8_rgb, load_photo, make_trimap, read_image, read_mask, to_mask
from runtime.upsample import upsample_alpha
if sys.argv[3] == "reference":
    import benchmarks.pipeline_reference as ref
    make_trimap = lambda shape, mask: ref.trimap_from_mask(to_mask(mask), shape, 32)
    upsample_alpha, render_bokeh = ref.upsample_alpha, lambda p, a: (ref.render_bokeh(p, a), None)
photo = as_uint8_rgb(read_image(sys.argv[1]))
trimap = make_trimap(photo.shape[:2], mask=read_mask(sys.argv[2], photo.shape[:2]))
photo01, _ = load_photo(photo)
box = Letterbox.fit(photo.shape[:2], (512, 512))
small = box.resize_image(photo01)
alpha_small = cv2.resize(cv2.imread(sys.argv[2], 0), small.shape[1::-1]).astype(np.float32) / 255
alpha = upsample_alpha(alpha_small, photo01, small)
del photo01
alpha[trimap == 0], alpha[trimap == 255] = 0.0, 1.0
image, _ = render_bokeh(photo, alpha)
encode_photo(image, ".jpg")
print(next(int(line.split()[1]) // 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def peak_rss_mib(h: int, w: int, which: str = "runtime") -> int:
    """Peak RSS of :data:`_RSS_CHILD` on an (h, w) synthetic portrait JPEG with its 256-px mask, with the
    runtime's stages or (``which="reference"``) the reference ones (the trimap's band then fixed at 32 px)."""
    photo, alpha = synthetic_portrait(h, w)
    with tempfile.TemporaryDirectory() as tmp:
        cv2.imwrite(f"{tmp}/photo.jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(f"{tmp}/mask.png", segmenter_mask(alpha))
        del photo, alpha
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, f"{tmp}/photo.jpg", f"{tmp}/mask.png", which],
                             capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_stages", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="interleaved runs of each stage (default 5)")
    p.add_argument("--model", default=None, help="also run Matter.predict both ways with this model")
    p.add_argument("--out", default=None, help="measured-results file (default benchmarks/measured/"
                                               "pipeline-stages-<date>-<device>.json)")
    args = p.parse_args(argv)
    rows = stage_rows(args.runs) + (matting_rows(args.model, args.runs) if args.model else [])
    rss = {f"{h * w / 1e6:.0f} MP {which}": peak_rss_mib(h, w, which)
           for h, w in ((H, W), (6000, 8000)) for which in ("reference", "runtime")}
    data = measured_header(
        "pipeline-stages", input_size=list(SMALL), threads=None, runtimes=(),
        model=f"synthetic {W}x{H} portrait, 256-px mask" + (f"; {args.model} for Matter.predict" if args.model else ""),
        method=f"medians of {args.runs} interleaved runs per stage in one process (before: "
               "benchmarks.pipeline_reference; after: the runtime), one warm-up each",
        command=["python", "-m", "benchmarks.pipeline_stages", *(sys.argv[1:] if argv is None else argv)])
    data |= {"columns": ["stage", "before ms", "after ms", "speed-up", "quality"], "rows": rows,
             "note": "peak RSS of the app's path without the network (decode, trimap, photo as float, letterbox, "
                     "upsampling, clamp, renderer, encode; benchmarks.pipeline_stages.peak_rss_mib), MiB: "
                     + ", ".join(f"{k} {v}" for k, v in rss.items())}
    out = Path(args.out) if args.out else new_path("pipeline-stages", data)
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for r in rows:
        print(f"{r['stage']:<42} {r['before ms']:8.1f} {r['after ms']:8.1f}  x{r['speed-up']:<5} {r['quality']}")
    print(data["note"])
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
