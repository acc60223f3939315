"""Tests for common.metrics (Composition-1k SAD / MSE / Grad / Conn)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.metrics import (
    compute_all,
    connectivity_error,
    gauss_gradient_kernels,
    gaussgradient,
    gradient_error,
    mat2gray,
    matlab_colon,
    mse,
    sad,
)

SIGMA = 1.4


# --------------------------------------------------------------------------
# Fixtures / helpers
# --------------------------------------------------------------------------


@pytest.fixture
def reference_case():
    """The 32x32 case of mmagic's unit tests (in [0, 1] units).

    gt = 1 everywhere; trimap: top-left 16x16 unknown, bottom-right 16x16
    foreground, rest background; pred = 1 on the foreground, 0 elsewhere.
    """
    trimap = np.zeros((32, 32), np.uint8)
    trimap[:16, :16] = 128
    trimap[16:, 16:] = 255
    gt = np.ones((32, 32))
    pred = (trimap == 255).astype(np.float64)
    return pred, gt, trimap


def _smooth_random(shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    # cheap smoothing so that the gradients are not pure noise
    a = (a + np.roll(a, 1, 0) + np.roll(a, 1, 1) + np.roll(a, (1, 1), (0, 1))) / 4
    return a


def _naive_gaussgradient(image: np.ndarray, sigma: float):
    """Loop-for-loop transcription of gaussgradient.m: returns (gx, gy, hx).

    Uses MATLAB's 1-based indices, builds hx element by element, and evaluates
    imfilter(IM, h, 'replicate', 'conv') straight from the definition of a
    convolution: out(y, x) = sum_{a,b} h(a, b) * IM(y - (a - c), x - (b - c)),
    with out-of-range indices clamped to the border (replicate).
    """

    def gauss(x):
        return math.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))

    def dgauss(x):
        return -x * gauss(x) / sigma**2

    epsilon = 1e-2
    halfsize = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    size = 2 * halfsize + 1
    hx = [[0.0] * size for _ in range(size)]
    for i in range(1, size + 1):
        for j in range(1, size + 1):
            u = (i - halfsize - 1, j - halfsize - 1)
            hx[i - 1][j - 1] = gauss(u[0]) * dgauss(u[1])
    norm = math.sqrt(sum(abs(v) * abs(v) for row in hx for v in row))
    hx = [[v / norm for v in row] for row in hx]
    hy = [[hx[j][i] for j in range(size)] for i in range(size)]  # hx'

    rows, cols = image.shape
    c = halfsize  # 0-based centre index

    def conv(h):
        out = np.zeros((rows, cols))
        for y in range(rows):
            for x in range(cols):
                acc = 0.0
                for a in range(size):
                    for b in range(size):
                        yy = min(max(y - (a - c), 0), rows - 1)
                        xx = min(max(x - (b - c), 0), cols - 1)
                        acc += h[a][b] * image[yy, xx]
                out[y, x] = acc
        return out

    return conv(hx), conv(hy), np.array(hx)


def _naive_gradient_error(pred, gt, trimap, sigma=SIGMA):
    """compute_gradient_loss.m / 1000, written out naively."""

    def m2g(a):
        lo, hi = a.min(), a.max()
        return a.astype(np.float64) if hi == lo else (a - lo) / (hi - lo)

    def amp(image):
        gx, gy, _ = _naive_gaussgradient(image, sigma)
        return np.sqrt(gx**2 + gy**2)

    pa, ta = amp(m2g(pred)), amp(m2g(gt))
    err = (pa.astype(np.float32) - ta.astype(np.float32)) ** 2
    return float(np.sum(err.astype(np.float64) * (trimap == 128))) / 1000


# --------------------------------------------------------------------------
# The reference case
# --------------------------------------------------------------------------


def test_reference_case_unknown_region(reference_case):
    pred, gt, trimap = reference_case
    assert sad(pred, gt, trimap) == pytest.approx(0.256, rel=1e-12)
    assert mse(pred, gt, trimap) == pytest.approx(1.0, rel=1e-12)
    # 0.0028887 is given to 5 significant digits: allow half a unit in the last one.
    assert gradient_error(pred, gt, trimap) == pytest.approx(0.0028887, abs=5e-8)
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.256, rel=1e-12)


def test_reference_case_grad_matches_naive_matlab(reference_case):
    pred, gt, trimap = reference_case
    expected = _naive_gradient_error(pred, gt, trimap)
    assert expected == pytest.approx(0.00288874504, rel=1e-8)
    assert gradient_error(pred, gt, trimap) == pytest.approx(expected, rel=1e-9)


def test_compute_all_matches_individual_metrics(reference_case):
    pred, gt, trimap = reference_case
    result = compute_all(pred, gt, trimap)
    assert set(result) == {"SAD", "MSE", "Grad", "Conn"}
    assert all(isinstance(v, float) for v in result.values())
    assert result["SAD"] == sad(pred, gt, trimap)
    assert result["MSE"] == mse(pred, gt, trimap)
    assert result["Grad"] == gradient_error(pred, gt, trimap)
    assert result["Conn"] == connectivity_error(pred, gt, trimap)


def test_reference_case_whole_image(reference_case):
    pred, gt, trimap = reference_case
    # 768 of the 1024 pixels have |pred - gt| = 1.
    expected = {"SAD": 0.768, "MSE": 0.75, "Conn": 0.768}
    for tri, region in ((trimap, "all"), (None, "unknown"), (None, "all")):
        result = compute_all(pred, gt, tri, region=region)
        for key, value in expected.items():
            assert result[key] == pytest.approx(value, rel=1e-12), (key, region)
    whole_grad = gradient_error(pred, gt, None)
    assert whole_grad == pytest.approx(gradient_error(pred, gt, trimap, region="all"))
    assert whole_grad > gradient_error(pred, gt, trimap)


# --------------------------------------------------------------------------
# SAD / MSE
# --------------------------------------------------------------------------


def test_sad_mse_by_hand():
    pred = np.array([[0.0, 0.5], [1.0, 0.25]])
    gt = np.array([[1.0, 0.5], [0.5, 0.75]])
    trimap = np.array([[128, 128], [0, 128]], np.uint8)
    # unknown pixels: |diff| = 1, 0, 0.5
    assert sad(pred, gt, trimap) == pytest.approx(1.5 / 1000)
    assert mse(pred, gt, trimap) == pytest.approx((1 + 0 + 0.25) / 3)
    # whole image adds the background pixel with |diff| = 0.5
    assert sad(pred, gt, trimap, region="all") == pytest.approx(2.0 / 1000)
    assert mse(pred, gt, trimap, region="all") == pytest.approx((1 + 0 + 0.25 + 0.25) / 4)
    assert sad(pred, gt) == sad(pred, gt, trimap, region="all")
    assert mse(pred, gt) == mse(pred, gt, trimap, region="all")


def test_empty_region_gives_zero(reference_case):
    pred, gt, _ = reference_case
    trimap = np.zeros(pred.shape, np.uint8)
    trimap[:, 10:] = 255
    assert compute_all(pred, gt, trimap) == {"SAD": 0.0, "MSE": 0.0, "Grad": 0.0, "Conn": 0.0}


def test_uint8_inputs_are_divided_by_255():
    rng = np.random.default_rng(1)
    pred8 = rng.integers(0, 256, (24, 20), dtype=np.uint8)
    gt8 = rng.integers(0, 256, (24, 20), dtype=np.uint8)
    trimap = np.where(rng.random((24, 20)) < 0.5, 128, 255).astype(np.uint8)
    as_uint8 = compute_all(pred8, gt8, trimap)
    as_float = compute_all(pred8 / 255.0, gt8 / 255.0, trimap)
    assert as_uint8 == as_float
    mixed = compute_all(pred8, gt8 / 255.0, trimap)
    assert mixed == as_float
    assert sad(np.full((2, 2), 255, np.uint8), np.zeros((2, 2))) == pytest.approx(4 / 1000)


def test_float32_inputs_accepted():
    pred = _smooth_random((16, 16), 2)
    gt = _smooth_random((16, 16), 3)
    r64 = compute_all(pred, gt)
    r32 = compute_all(pred.astype(np.float32), gt.astype(np.float32))
    for key in r64:
        assert r32[key] == pytest.approx(r64[key], rel=1e-5, abs=1e-9)


# --------------------------------------------------------------------------
# Grad
# --------------------------------------------------------------------------


def test_gauss_gradient_kernel_construction():
    hx, hy = gauss_gradient_kernels(SIGMA)
    # halfsize = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) * 1.4 * 0.01))) = ceil(3.63...) = 4
    assert hx.shape == (9, 9)
    assert np.array_equal(hy, hx.T)
    assert np.sum(hx**2) == pytest.approx(1.0)
    # rows: Gaussian (symmetric, positive); columns: -x * Gaussian (odd in x)
    assert np.allclose(hx, hx[::-1, :])
    assert np.allclose(hx, -hx[:, ::-1])
    assert np.all(hx[:, :4] > 0) and np.all(hx[:, 5:] < 0) and np.all(hx[:, 4] == 0)


def test_gaussgradient_matches_naive_matlab_transcription():
    image = np.random.default_rng(9).random((6, 10))
    gx_ref, gy_ref, hx_ref = _naive_gaussgradient(image, SIGMA)
    hx, _ = gauss_gradient_kernels(SIGMA)
    assert np.allclose(hx, hx_ref, rtol=1e-13, atol=0)
    gx, gy = gaussgradient(image, SIGMA)
    assert np.allclose(gx, gx_ref, rtol=0, atol=1e-13)  # signed: orientation and axis
    assert np.allclose(gy, gy_ref, rtol=0, atol=1e-13)


def test_grad_zero_when_pred_equals_gt():
    gt = _smooth_random((30, 28), 4)
    trimap = np.full(gt.shape, 128, np.uint8)
    assert gradient_error(gt.copy(), gt, trimap) == 0.0
    assert gradient_error(gt.copy(), gt) == 0.0


def test_grad_invariant_to_positive_affine_change():
    pred = _smooth_random((30, 28), 5)
    gt = _smooth_random((30, 28), 6)
    trimap = np.full(pred.shape, 128, np.uint8)
    trimap[:5] = 0
    base = gradient_error(pred, gt, trimap)
    assert base > 0
    assert gradient_error(0.5 * pred + 0.25, gt, trimap) == pytest.approx(base, rel=1e-6)
    assert gradient_error(pred, 0.2 * gt + 0.1, trimap) == pytest.approx(base, rel=1e-6)


def test_grad_linear_ramp_closed_form():
    """For a ramp in x the interior gradient is a ratio of 1-D Gaussian sums.

    With I(y, x) = x / s and h(a, b) = G(a) D(b) / n (D(b) = -b G(b) / sigma^2,
    n the Frobenius norm), the convolution away from the borders is
    sum_a G(a) * sum_b D(b) (x - b) / s / n = sum G * sum b^2 G(b) / (sigma^2 s n),
    and gy = 0 because sum_a D(a) = 0. mat2gray leaves the ramp unchanged and
    maps the constant-zero gt to zero.
    """
    rows, cols = 14, 24
    s = cols - 1
    pred = np.tile(np.arange(cols) / s, (rows, 1))
    gt = np.zeros_like(pred)
    trimap = np.zeros((rows, cols), np.uint8)
    trimap[4:-4, 4:-4] = 128  # kernel half size 4: filters never touch the border

    b = np.arange(-4, 5, dtype=np.float64)
    g = np.exp(-(b**2) / (2 * SIGMA**2)) / (SIGMA * math.sqrt(2 * math.pi))
    d = -b * g / SIGMA**2
    n = math.sqrt(np.sum(g**2) * np.sum(d**2))
    gx_expected = np.sum(g) * np.sum(b**2 * g) / (SIGMA**2 * s * n)

    gx, gy = gaussgradient(pred, SIGMA)
    assert np.allclose(gx[4:-4, 4:-4], gx_expected, rtol=1e-12)  # positive: convolution
    assert np.allclose(gy[4:-4, 4:-4], 0.0, atol=1e-15)

    n_unknown = (rows - 8) * (cols - 8)
    expected = n_unknown * gx_expected**2 / 1000
    assert gradient_error(pred, gt, trimap) == pytest.approx(expected, rel=1e-6)


def test_grad_matches_naive_loop_implementation():
    pred = np.random.default_rng(7).random((7, 11))
    gt = _smooth_random((7, 11), 8)
    trimap = np.full(pred.shape, 128, np.uint8)
    trimap[0, :] = 0
    trimap[:, -2:] = 255
    expected = _naive_gradient_error(pred, gt, trimap)
    assert expected > 0
    assert gradient_error(pred, gt, trimap) == pytest.approx(expected, rel=1e-9)


def test_mat2gray_semantics():
    a = np.array([[2.0, 4.0], [3.0, 6.0]])
    assert np.allclose(mat2gray(a), [[0.0, 0.5], [0.25, 1.0]])
    assert np.array_equal(mat2gray(np.full((2, 2), 0.3)), np.full((2, 2), 0.3))
    assert np.array_equal(mat2gray(np.full((2, 2), 7.0)), np.ones((2, 2)))


# --------------------------------------------------------------------------
# Conn
# --------------------------------------------------------------------------


def test_matlab_colon_thresholds():
    expected = [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert matlab_colon(0, 0.1, 1).tolist() == expected
    # np.arange drifts at 0.6 and 0.7; MATLAB's colon does not.
    assert (np.arange(11) * 0.1).tolist() != expected
    assert matlab_colon(0, 0.25, 1).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_conn_single_threshold_crossing_1d():
    """1x5 row, gt = 1, pred = [1, 1, 1, 0.5, 0.6].

    t <= 0.5: all five pixels form one component, nothing is assigned.
    t = 0.6: the intersection is {0, 1, 2} and {4}; the largest is {0, 1, 2},
    so pixels 3 and 4 get l = 0.5; pixels 0-2 stay in omega up to t = 1 -> l = 1.
    pred_d = [0, 0, 0, 0, 0.1] -> phi_pred = [1, 1, 1, 1, 1] (0.1 < 0.15)
    gt_d   = [0, 0, 0, .5, .5] -> phi_gt   = [1, 1, 1, .5, .5]
    sum |phi_pred - phi_gt| = 1.0 -> Conn = 0.001
    """
    pred = np.array([[1.0, 1.0, 1.0, 0.5, 0.6]])
    gt = np.ones_like(pred)
    assert connectivity_error(pred, gt) == pytest.approx(0.001, rel=1e-12)
    trimap = np.array([[0, 0, 0, 128, 0]], np.uint8)
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.0005, rel=1e-12)


def test_conn_threshold_exactly_point_six():
    """alpha = 0.6 (= 153/255) must pass MATLAB's 0.6 threshold.

    pred = 0.6, gt = 1 on a 1x3 row: the single component survives up to t = 0.6,
    so l = 0.6, phi_pred = 1, phi_gt = 1 - 0.4 -> 3 * 0.4 / 1000. With
    np.arange thresholds (0.6000000000000001) l would be 0.5 and the result
    3 * 0.5 / 1000.
    """
    pred = np.full((1, 3), 0.6)
    gt = np.ones((1, 3))
    assert connectivity_error(pred, gt) == pytest.approx(0.0012, rel=1e-9)
    pred8 = np.full((1, 3), 153, np.uint8)
    assert connectivity_error(pred8, gt) == pytest.approx(0.0012, rel=1e-9)


def test_conn_step_not_reaching_one():
    """A pixel never dropped from omega gets l = 1, even if the last threshold is < 1.

    step = 0.4: thresholds are 0:0.4:1 = [0, 0.4, 0.8]. A single pixel with
    pred = 1, gt = 0.85 is in omega at t = 0.4 and t = 0.8, so MATLAB leaves
    l_map = -1 and then sets it to 1:
      pred_d = 0 -> phi 1;  gt_d = -0.15 -> phi 1      => Conn = 0.
    (Using the last threshold, l = 0.8, would give pred_d = 0.2 -> phi 0.8 and
    Conn = 0.2 / 1000.) A second pixel dropped at t = 0.8 gets l = 0.4.
    """
    assert matlab_colon(0, 0.4, 1).tolist() == [0.0, 0.4, 0.8]
    assert connectivity_error(np.array([[1.0]]), np.array([[0.85]]), step=0.4) == 0.0
    # pixel 1: pred 0.7, gt 0.7 -> survives t = 0.4 only -> l = 0.4, d = 0.3 both -> 0
    # pixel 0 as above; pixel 2: pred 0.7, gt 1 -> l = 0.4:
    #   pred_d = 0.3 -> phi 0.7, gt_d = 0.6 -> phi 0.4  => 0.3
    pred = np.array([[1.0, 0.7, 0.7]])
    gt = np.array([[0.85, 0.7, 1.0]])
    assert connectivity_error(pred, gt, step=0.4) == pytest.approx(0.0003, rel=1e-9)


def test_conn_no_component():
    """pred = 0, gt = 1: the intersection is empty from t = 0.1 on, so l = 0,
    phi_pred = 1, phi_gt = 0 and every pixel contributes 1."""
    pred = np.zeros((4, 4))
    gt = np.ones((4, 4))
    assert connectivity_error(pred, gt) == pytest.approx(16 / 1000, rel=1e-12)
    assert connectivity_error(np.zeros((4, 4)), np.zeros((4, 4))) == 0.0


def test_conn_tie_break_follows_matlab_column_major_order():
    """Two single-pixel components tie; MATLAB keeps the column-major first one.

        A at (0, 2): pred 0.55, gt 0.9       B at (1, 0): pred 0.55, gt 0.55

    For t = 0.1 .. 0.5 both pixels are components of size 1. bwconncomp scans
    columns first, so B is listed first and max() keeps it: A (and the zero
    pixels) get l = 0 at t = 0.1, B gets l = 0.5 when the intersection empties
    at t = 0.6.
      A: pred_d = 0.55 -> phi 0.45, gt_d = 0.9 -> phi 0.1  => 0.35
      B: pred_d = gt_d = 0.05 < 0.15 -> phi 1 and 1          => 0
    Conn = 0.35 / 1000. (Row-major labelling would keep A and give 0.4 / 1000.)
    """
    pred = np.zeros((3, 3))
    gt = np.zeros((3, 3))
    pred[0, 2], gt[0, 2] = 0.55, 0.9
    pred[1, 0], gt[1, 0] = 0.55, 0.55
    assert connectivity_error(pred, gt) == pytest.approx(0.00035, rel=1e-9)


def test_conn_uses_four_connectivity():
    """A diagonal neighbour is a separate component under 4-connectivity.

        pred = 1 0 0     gt = .55 1 1     trimap: only (0, 0) unknown
               0 1 1            1  1 1
               0 1 1            1  1 1

    For t <= 0.5 the intersection is {(0, 0)} plus the bottom-right 2x2 block,
    which touches (0, 0) only diagonally. With 4-connectivity the block (size
    4) is the largest component, so (0, 0) gets l = 0 at t = 0.1:
      pred_d = 1 -> phi 0, gt_d = 0.55 -> phi 0.45  => Conn = 0.45 / 1000.
    (8-connectivity would keep (0, 0) until t = 0.6, l = 0.5, giving 0.5 / 1000.)
    """
    pred = np.zeros((3, 3))
    pred[0, 0] = 1.0
    pred[1:, 1:] = 1.0
    gt = np.ones((3, 3))
    gt[0, 0] = 0.55
    trimap = np.full((3, 3), 255, np.uint8)
    trimap[0, 0] = 128
    assert connectivity_error(pred, gt, trimap) == pytest.approx(0.00045, rel=1e-9)
    # Whole image: the four zero pixels (l = 0, phi_pred 1, phi_gt 0) add 1 each.
    assert connectivity_error(pred, gt) == pytest.approx(0.00445, rel=1e-9)


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def test_shape_mismatch_message():
    with pytest.raises(ValueError, match=r"pred has shape \(10, 12\) but gt has \(10, 10\)"):
        sad(np.zeros((10, 12)), np.zeros((10, 10)))


def test_trimap_shape_mismatch():
    with pytest.raises(ValueError, match="trimap has shape"):
        compute_all(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 5), np.uint8))


def test_bad_trimap_value_is_named():
    trimap = np.full((4, 4), 128, np.uint8)
    trimap[1, 2] = 7
    with pytest.raises(ValueError, match=r"trimap values must be in \{0, 128, 255\}, found 7"):
        compute_all(np.zeros((4, 4)), np.zeros((4, 4)), trimap)


def test_nan_in_pred_is_named():
    pred = np.zeros((4, 4))
    pred[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"pred contains non-finite values \(1 NaN"):
        mse(pred, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="gt contains non-finite"):
        mse(np.zeros((4, 4)), np.full((4, 4), np.inf))


@pytest.mark.parametrize(
    ("pred", "gt", "kwargs", "pattern"),
    [
        (np.zeros((4, 4, 1)), np.zeros((4, 4, 1)), {}, r"pred must be a 2-D"),
        (np.zeros((4, 4)), np.full((4, 4), 255.0), {}, r"gt has values outside \[0, 1\]"),
        (np.zeros((4, 4), np.int64), np.zeros((4, 4)), {}, r"pred has dtype int64"),
        (np.zeros((4, 4)), np.zeros((4, 4)), {"region": "band"}, r"region must be"),
    ],
)
def test_other_bad_inputs(pred, gt, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        compute_all(pred, gt, **kwargs)


# --------------------------------------------------------------------------
# Every constant of the four metrics, pinned by a hand-computed case it changes
# --------------------------------------------------------------------------


def test_conn_ignores_differences_below_0_15_exactly():
    """Single pixels with gt = 0: the intersection is empty from t = 0.1, so l = 0 and d = alpha.
    phi(d) = 1 - d·[d >= 0.15]: pred 0.149 -> phi 1 (= phi_gt, Conn 0); pred 0.15 -> phi 0.85 (Conn 0.15 / 1000).
    A threshold of 0.1 (or 0.149) would count the first pixel too; 0.16 would drop the second."""
    gt = np.zeros((1, 1))
    assert connectivity_error(np.full((1, 1), 0.149), gt) == 0.0
    assert connectivity_error(np.full((1, 1), 0.15), gt) == pytest.approx(0.15 / 1000, rel=1e-12)
    assert connectivity_error(np.full((1, 1), 0.12), gt) == 0.0


def test_conn_threshold_step_is_0_1():
    """pred 1, gt 0.35 on one pixel: with 0:0.1:1 it leaves the intersection at t = 0.4, so l = 0.3;
    pred_d = 0.7 -> phi 0.3, gt_d = 0.05 -> phi 1 => Conn = 0.7 / 1000. (Step 0.2 gives l = 0.2 and 0.65;
    step 0.05 gives l = 0.35 and 0.65.)"""
    assert connectivity_error(np.ones((1, 1)), np.full((1, 1), 0.35)) == pytest.approx(0.7 / 1000, rel=1e-12)


def test_sad_grad_conn_are_divided_by_1000_and_mse_is_not():
    """A vertical step edge predicted as nothing: every unknown pixel off by 1."""
    gt = np.zeros((12, 12))
    gt[:, 6:] = 1.0
    pred = np.zeros((12, 12))
    trimap = np.full((12, 12), 128, np.uint8)
    assert sad(pred, gt, trimap) == pytest.approx(72 / 1000, rel=1e-12)       # 72 pixels off by 1
    assert mse(pred, gt, trimap) == pytest.approx(72 / 144, rel=1e-12)        # mean, not divided by 1000
    gx, gy = gaussgradient(mat2gray(gt), SIGMA)
    mag = np.sqrt(gx**2 + gy**2).astype(np.float32)                           # pred is flat: zero gradient
    assert gradient_error(pred, gt, trimap) == pytest.approx(float((mag.astype(np.float64) ** 2).sum()) / 1000,
                                                             rel=1e-6)
    # Conn: gt's pixels of 1 form the only component up to t = 1 (l = 1) but pred has none: l = 0 everywhere.
    # phi_pred = 1 - 0 = 1; phi_gt = 1 - 1 = 0 on the 72 ones, 1 on the zeros => 72 / 1000
    assert connectivity_error(pred, gt, trimap) == pytest.approx(72 / 1000, rel=1e-12)


def test_only_the_trimap_value_128_is_unknown():
    """The unknown region is trimap == 128 and nothing else: 0 and 255 pixels are never summed."""
    pred, gt = np.array([[1.0, 1.0, 1.0]]), np.zeros((1, 3))
    assert sad(pred, gt, np.array([[0, 128, 255]], np.uint8)) == pytest.approx(1 / 1000)
    with pytest.raises(ValueError):
        sad(pred, gt, np.array([[0, 127, 255]], np.uint8))
