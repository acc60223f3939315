"""Temporal coherence of a matte sequence against its ground truth (Erofeev et al., "Perceptually motivated
benchmark for video matting", BMVC 2015; as reported by RobustVideoMatting and Deep Video Matting).

- **dtSSD**: how far the matte's change from one frame to the next is from the ground truth's,
  ``sqrt(mean(((α_t − α_{t−1}) − (g_t − g_{t−1}))²)) × 100``: flicker where the truth is still, and a
  matte that lags or leads a moving edge;
- **MESSDdt**: how the error itself moves, ``mean(|E_t − warp(E_{t−1})|) × 1000`` with E = (α − g)² and the
  warp from t − 1 to t by the optical flow of the ground truth (Farnebäck, as RobustVideoMatting computes it):
  an error that stays on the subject as it moves is not flicker, one that appears and vanishes is.

Both per pair of consecutive frames; a sequence's score is their mean. Lower is better, 0 for the ground truth.
"""

from __future__ import annotations

import cv2
import numpy as np

FARNEBACK = {"pyr_scale": 0.5, "levels": 5, "winsize": 10, "iterations": 2, "poly_n": 7, "poly_sigma": 1.5,
             "flags": 0}


def dtssd(pred: np.ndarray, pred_before: np.ndarray, gt: np.ndarray, gt_before: np.ndarray) -> float:
    change = (pred.astype(np.float64) - pred_before) - (gt.astype(np.float64) - gt_before)
    return float(np.sqrt(np.mean(change ** 2)) * 100)


def messddt(pred: np.ndarray, pred_before: np.ndarray, gt: np.ndarray, gt_before: np.ndarray) -> float:
    error, error_before = ((np.float32(pred) - gt) ** 2 for pred, gt in ((pred, gt), (pred_before, gt_before)))
    return float(np.mean(np.abs(error - backward_warp(error_before, gt, gt_before))) * 1000)


def backward_warp(before: np.ndarray, gt: np.ndarray, gt_before: np.ndarray) -> np.ndarray:
    """``before`` (frame t − 1) carried to frame t by the flow of the ground truth: each pixel of t takes the
    value where its content was at t − 1."""
    to8 = lambda a: np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)  # noqa: E731
    flow = cv2.calcOpticalFlowFarneback(to8(gt), to8(gt_before), None, **FARNEBACK)
    h, w = gt.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(before.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def mean_over_pairs(metric, preds: list[np.ndarray], gts: list[np.ndarray]) -> float:
    """``metric(pred_t, pred_t−1, gt_t, gt_t−1)`` averaged over the consecutive pairs of a sequence."""
    return float(np.mean([metric(*p) for p in zip(preds[1:], preds, gts[1:], gts)]))


def sequence_scores(preds: list[np.ndarray], gts: list[np.ndarray]) -> dict[str, float]:
    """Mean dtSSD and MESSDdt over the consecutive pairs of a sequence."""
    return {"dtSSD": mean_over_pairs(dtssd, preds, gts), "MESSDdt": mean_over_pairs(messddt, preds, gts)}
