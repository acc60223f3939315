"""Alpha upsampling on the real alphamatting.com images: fast guided filter vs bilinear.

The runtime runs the network at ~512 px and upsamples its alpha to the photo. To measure the upsampler
alone, the ground-truth alpha is downsampled by ``factor`` (area averaging, as the runtime downsamples
the photo), upsampled back with each method — the guided ones guided by the full-resolution photo — and
compared with the ground truth: SAD, MSE and Grad (:mod:`common.metrics`) over the whole image
(``region="all"``) and over the unknown band of ``trimap2`` (where the hair is), means over the images.

    python -m benchmarks.upsampling [--factor 4] [--root ../shared/data/alphamatting_lowres_dev]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from calib_data.readers import AlphaMattingReader
from calib_data.splits import alphamatting_dev_dir
from common.metrics import gradient_error, mse, sad
from runtime.upsample import upsample_alpha

# (label, upsample_alpha keyword arguments)
METHODS: tuple[tuple[str, dict], ...] = (
    ("bilinear", {"method": "bilinear"}),
    ("guided gray", {"method": "guided", "guide": "gray"}),
    ("guided rgb", {"method": "guided", "guide": "rgb"}),
)


def downsample(x: np.ndarray, factor: int) -> np.ndarray:
    h, w = x.shape[:2]
    return cv2.resize(x, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)


def scores(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray) -> dict[str, float]:
    out = {}
    for region, tri in (("all", None), ("band", trimap)):
        kw = {"region": "all"} if tri is None else {"trimap": tri, "region": "unknown"}
        out[f"SAD {region}"] = sad(pred, gt, **kw)
        out[f"MSE {region}"] = mse(pred, gt, **kw)
        out[f"Grad {region}"] = gradient_error(pred, gt, **kw)
    return out


def compare_upsamplers(root: str | Path | None = None, factor: int = 4, methods=METHODS,
                       trimap: str = "trimap2") -> list[dict]:
    """One row per method: mean SAD / MSE / Grad over the images (whole image and unknown band), and the
    mean upsampling time in ms (informative only)."""
    reader = AlphaMattingReader(root or alphamatting_dev_dir())
    per_method: dict[str, list[dict]] = {label: [] for label, _ in methods}
    for sample in reader:
        photo_low = downsample(sample.image, factor)
        alpha_low = downsample(sample.alpha, factor)
        for label, kwargs in methods:
            t0 = time.perf_counter()
            pred = upsample_alpha(alpha_low, sample.image, photo_low, **kwargs)
            ms = (time.perf_counter() - t0) * 1000
            per_method[label].append({**scores(pred, sample.alpha, sample.trimaps[trimap]), "ms": ms})
    return [{"method": label, "images": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}
            for label, rows in per_method.items()]


def format_table(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    widths = {k: max(len(k), *(len(fmt(r[k])) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys), "  ".join("-" * widths[k] for k in keys)]
    lines += ["  ".join(fmt(r[k]).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=None, help="alphamatting.com dev folder (default: ../shared/data/...)")
    p.add_argument("--factor", type=int, default=4, help="downsampling factor of the GT alpha")
    args = p.parse_args(argv)
    print(f"GT alpha downsampled {args.factor}x and upsampled back; means over images")
    print(format_table(compare_upsamplers(args.root, args.factor)))


if __name__ == "__main__":
    main()
