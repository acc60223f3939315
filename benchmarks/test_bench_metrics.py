"""Speed of common.metrics.compute_all on an 800x800 Composition-1k-like case.

Run with ``make bench`` (``--benchmark-enable``); in normal test runs the
project's ``--benchmark-disable`` makes this execute once as a smoke test.
No wall-clock time is asserted.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from common.metrics import compute_all

SIZE = 800


@pytest.fixture(scope="module")
def matting_case():
    """Seeded (pred, gt, trimap): a wiggly blob with a soft edge and a ~26 px band.

    gt: the zero set of a low-frequency random field gives a smooth contour;
    alpha ramps linearly from 0 to 1 over 12 px across it (signed distance),
    so it is smooth along a curved, irregular boundary.
    trimap: unknown = the 0 < alpha < 1 region dilated by a 15x15 ellipse, the
    rest 0 / 255 from gt. pred: gt plus smooth noise inside the unknown band,
    clipped, and exactly 0 / 1 in the known regions (Composition-1k protocol).
    """
    rng = np.random.default_rng(20240601)
    coarse = rng.standard_normal((10, 10))
    field = cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    inside = (field > np.median(field)).astype(np.uint8)
    signed_distance = (
        cv2.distanceTransform(inside, cv2.DIST_L2, 5)
        - cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    )
    gt = np.clip(0.5 + signed_distance / 12.0, 0.0, 1.0)

    transition = ((gt > 0) & (gt < 1)).astype(np.uint8)
    band = cv2.dilate(transition, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))) > 0
    trimap = np.where(gt >= 0.5, 255, 0).astype(np.uint8)
    trimap[band] = 128

    noise = cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE)), (0, 0), 2) * 0.3
    pred = np.clip(gt + noise, 0.0, 1.0)
    pred[trimap == 0] = 0.0
    pred[trimap == 255] = 1.0
    return pred, gt, trimap


def test_compute_all_800x800(benchmark, matting_case):
    pred, gt, trimap = matting_case
    unknown = np.count_nonzero(trimap == 128)
    assert 0.02 * trimap.size < unknown < 0.5 * trimap.size  # a realistic band

    result = benchmark(compute_all, pred, gt, trimap)

    assert set(result) == {"SAD", "MSE", "Grad", "Conn"}
    assert all(np.isfinite(v) and v > 0 for v in result.values())
    assert result["MSE"] < 1.0
