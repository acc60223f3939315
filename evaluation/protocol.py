"""Quality on the held-back real alphamatting.com images, at native resolution, with both trimaps.

Metrics are the Composition-1k ones (common.metrics, unknown region of the given trimap). As in
the reference protocol, the prediction's known regions are set to 0 / 1 and it is read as 8-bit. The model is
scored through :class:`runtime.matter.Matter`, the path the app runs (letterboxed to the model's input size,
guided upsampling back to the photo, known regions clamped): :func:`matter_predictor`, :func:`model_predictor`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from calib_data.readers import AlphaMattingReader, estimate_alpha_closed_form
from calib_data.splits import REAL_VALIDATION, alphamatting_dev_dir
from common.encoding import encode_inputs
from common.errors import DataError
from common.metrics import compute_all
from runtime.matter import Matter

TRIMAPS = ("trimap1", "trimap2")
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]   # (image01 HxWx3, trimap uint8) -> alpha HxW


def protocol_alpha(alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Composition-1k protocol: known trimap regions set to 0 / 1, then read as 8-bit."""
    a = np.clip(alpha, 0, 1).astype(np.float32)
    a[trimap == 0], a[trimap == 255] = 0.0, 1.0
    return np.rint(a * 255.0) / np.float32(255.0)


def evaluate_real(predict: Predictor, names=REAL_VALIDATION, trimaps=TRIMAPS, root: Path | None = None,
                  keep: bool = False) -> tuple[dict[str, float], list[dict]]:
    """Mean metrics over images × trimaps, and one row per (image, trimap) with its time in seconds."""
    reader = AlphaMattingReader(root or alphamatting_dev_dir(), list(names))
    missing = (["gt"] if reader.gt_dir is None else []) + [t for t in trimaps if t not in reader.trimap_dirs]
    if missing:      # a KeyError from the first image, or "gt must be a 2-D array" naming nothing
        raise DataError(f"has no {', '.join(m + '/' for m in missing)} folder: the images are scored against their "
                        f"ground truth on each of {', '.join(trimaps)}", reader.root)
    rows = []
    for sample in reader:
        for t in trimaps:
            if t not in sample.trimaps:
                raise DataError(f"no {t} for {sample.name}", reader.trimap_dirs[t])
            trimap = sample.trimaps[t]
            t0 = time.perf_counter()
            alpha = predict(sample.image, trimap)
            dt = time.perf_counter() - t0
            row = {"image": sample.name, "trimap": t, "seconds": dt,
                   **compute_all(protocol_alpha(alpha, trimap), sample.alpha, trimap)}
            if keep:
                row["alpha"] = alpha
            rows.append(row)
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("SAD", "MSE", "Grad", "Conn")}
    return means, rows


def evaluate_set(run_alpha: Callable[[np.ndarray, np.ndarray], np.ndarray], cset, limit: int | None = None,
                 keep: bool = False) -> tuple[dict[str, float], list]:
    """Mean metrics of a model on a composited set (calib_data.sets.CompositedSet) at the set's size.

    ``run_alpha(image_nchw, trimap_nchw) -> alpha_nchw`` takes the model's encoded inputs (1×3×H×W, 1×1×H×W);
    returns the means and the per-sample alphas when ``keep`` (for comparisons between backends).
    """

    n = len(cset) if limit is None else min(limit, len(cset))
    rows, alphas = [], []
    for i in range(n):
        item = cset[i]
        img, tri = encode_inputs(item["image"], item["trimap"])
        alpha = np.asarray(run_alpha(img[None], tri[None]), np.float32).reshape(item["alpha"].shape)
        if keep:
            alphas.append(alpha)
        rows.append(compute_all(protocol_alpha(alpha, item["trimap"]), quantize_gt(item["alpha"]), item["trimap"]))
    means = {k: float(np.mean([r[k] for r in rows])) for k in ("SAD", "MSE", "Grad", "Conn")}
    return means, alphas


def quantize_gt(alpha: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(alpha, 0, 1) * 255.0) / np.float32(255.0)


def matter_predictor(matter: Matter) -> Predictor:
    """The app's path: ``matter.predict(photo, trimap=...)`` (any artifact or checkpoint)."""
    return lambda image, trimap: matter.predict(image, trimap=trimap, with_trimap_prob=False).alpha


def model_predictor(model, input_size: tuple[int, int] | None = None) -> Predictor:
    """An in-memory PyTorch model through the app's path without the matting Laplacian's solve of the band
    (training's validation scores the network, not the photo's colours)."""
    return matter_predictor(Matter.from_model(model, input_size, laplacian=None))


def closed_form_predictor() -> Predictor:
    """Classical closed-form matting (Levin et al.), pymatting's implementation."""
    return estimate_alpha_closed_form
