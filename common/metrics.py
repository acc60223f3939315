"""Alpha-matting error metrics: SAD, MSE, Grad and Conn (Composition-1k).

This is a vectorised NumPy/SciPy/OpenCV port of the MATLAB evaluation code
released with *Deep Image Matting* (Xu et al., CVPR 2017): ``evaluate.m``,
``compute_sad_loss.m``, ``compute_mse_loss.m``, ``compute_gradient_loss.m``
(with ``gaussgradient.m``) and ``compute_connectivity_error.m``. These are the
numbers that matting papers report for Composition-1k.

Inputs
------
``pred`` and ``gt`` are 2-D alpha mattes of the same shape, either floating
point with values in [0, 1] or ``uint8`` (0..255, divided by 255 here, which is
what the MATLAB code does with the PNGs it reads). Other dtypes, NaN/inf and
values outside [0, 1] are rejected with ``ValueError``. ``trimap`` is a 2-D
array of the same shape whose values are in {0, 128, 255}, or ``None``.

Region
------
``region="unknown"`` (default, the MATLAB convention): errors are summed over
the unknown region U = {trimap == 128}. ``region="all"``: over the whole image
(portrait use, where there is no trimap). ``trimap=None`` always means the whole
image. Note that only the *summation* is restricted to U: Grad filters the whole
image and Conn finds connected components in the whole image, exactly as the
MATLAB code does, so pixels outside U still influence those two metrics. The
metrics never modify ``pred``; under the Composition-1k protocol the caller is
expected to have set ``pred`` to 0 / 1 where the trimap is 0 / 255 beforehand.
An empty region gives 0.0 for every metric (MATLAB would return NaN for MSE).

Definitions (all sums over the region R, |R| its pixel count)
-------------------------------------------------------------
* SAD  = sum |pred - gt| / 1000
* MSE  = sum (pred - gt)^2 / |R|          (no x1000 or x1e3 scaling)
* Grad = sum (|grad pred| - |grad gt|)^2 / 1000, where BOTH mattes are first
  min-max normalised with MATLAB's ``mat2gray`` (so Grad is invariant to a
  positive affine change of either matte), and the gradients come from
  ``gaussgradient(im, 1.4)``: a 9x9 first-derivative-of-Gaussian kernel
  ``hx(i, j) = gauss(i - c) * dgauss(j - c)`` (rows Gaussian, columns
  derivative), divided by its Frobenius norm, ``hy = hx.T``, applied as a true
  convolution with replicated borders (``imfilter(.., 'replicate', 'conv')``;
  computed through the kernel's exact rank-1 factorisation, see
  :func:`gaussgradient`).
  The two gradient magnitudes are rounded to float32 before differencing, as
  the MATLAB code does with ``single(...)``.
* Conn = sum |phi(pred) - phi(gt)| / 1000 with ``phi(a) = 1 - d * [d >= 0.15]``,
  ``d = a - l``, where ``l`` is, per pixel, the last threshold of ``0:0.1:1`` at
  which the pixel still belonged to the largest 4-connected component of
  ``(pred >= t) & (gt >= t)`` (1 if it always did).

Fidelity details
----------------
* Thresholds reproduce MATLAB's colon operator, which builds ``0:0.1:1``
  symmetrically from both ends: ``[0, .1, .2, .30000000000000004, .4, .5, .6,
  .7, .8, .9, 1]``. ``np.arange(11) * 0.1`` is *not* equivalent: it yields
  0.6000000000000001 and 0.7000000000000001, so an alpha of exactly
  153/255 == 0.6 would fail the 0.6 threshold although MATLAB passes it.
* When the largest component is not unique, MATLAB's ``max`` picks the first
  component of ``bwconncomp``, whose components are ordered by their first
  pixel in column-major scan order. We reproduce that tie-break by labelling
  the transposed mask (SciPy numbers components in row-major scan order).
* If the intersection is empty at some threshold, omega is taken as empty:
  every pixel not yet assigned gets the previous threshold. (The MATLAB code
  indexes ``cc.PixelIdxList{max_id}`` with an empty ``max_id`` there; an empty
  omega is the natural reading and what mmagic does.)
* ``mat2gray`` of a constant image returns the image clipped to [0, 1]; its
  gradient is zero either way.
* Everything is computed in float64 except the float32 rounding of the
  gradient magnitudes noted above. MATLAB evaluates Conn in single precision;
  for 8-bit mattes no comparison depends on that: every ``k/255`` compares
  the same way against each threshold in float32 and in float64, and
  ``k/255 - t`` is never within 1e-3 of 0.15, so results agree to ~1e-7.
* The ``dist_maps`` computed by the MATLAB Conn code never enter the loss and
  are not computed here.

Differences from common Python ports
------------------------------------
* mmagic (``mmagic.evaluation.metrics``) expects 0..255 arrays and refuses a
  ``pred`` that is not already clamped to the trimap's known regions; it uses
  ``cv2.filter2D`` (correlation, which only flips the sign of the gradient, so
  the magnitude is unchanged), ``np.arange(0, 1 + step, step)`` thresholds
  (harmless there only because it compares float32 alphas) and row-major
  component labels (a different choice when two largest components tie).
  Otherwise its SAD/MSE/Grad/Conn agree with this module; its unit-test case
  (SAD 0.256, MSE 1.0, Grad 0.0028887, Conn 0.256) is reproduced here.
* Some ports report MSE and SAD scaled by 1e3 or averaged over the whole
  image, compute Grad with ``scipy.ndimage.gaussian_filter`` (a different,
  unnormalised kernel) or skip ``mat2gray``, or use 8-connectivity for Conn.
  None of those conventions is used here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from scipy import ndimage

__all__ = [
    "sad",
    "mse",
    "gradient_error",
    "connectivity_error",
    "compute_all",
    "compute_regions",
    "gauss_gradient_kernels",
    "gaussgradient",
    "mat2gray",
    "matlab_colon",
]

Region = Literal["unknown", "all"]

#: Trimap value of the unknown region.
UNKNOWN = 128
#: sigma of the derivative-of-Gaussian filter in ``compute_gradient_loss.m``.
GRAD_SIGMA = 1.4
#: threshold step of ``evaluate.m``'s call to ``compute_connectivity_error``.
CONN_STEP = 0.1
#: differences below this are ignored by the Conn metric's phi function.
_CONN_MIN_DIFF = 0.15
# 4-connectivity structuring element (``bwconncomp(.., 4)``).
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """Validated float64 mattes plus the summation region."""

    pred: np.ndarray
    gt: np.ndarray
    mask: np.ndarray | None  # boolean region mask, None for the whole image
    count: int  # number of pixels in the region

    def total(self, error_map: np.ndarray) -> float:
        """Sum of ``error_map`` over the region, in float64."""
        if self.mask is None:
            return float(error_map.sum(dtype=np.float64))
        return float(error_map[self.mask].sum(dtype=np.float64))


def _as_alpha(name: str, a) -> np.ndarray:
    """Return ``a`` as a float64 2-D alpha in [0, 1], or raise ValueError."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(
            f"{name} has dtype {a.dtype}; expected a float array in [0, 1] "
            "or a uint8 array in [0, 255]"
        )
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int(np.isinf(a).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf)")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} has values outside [0, 1] (min {lo:g}, max {hi:g}); clip it, "
            "or pass 0..255 data as uint8"
        )
    return a


def _validate(pred, gt, trimap, region: str) -> _Inputs:
    if region not in ("unknown", "all"):
        raise ValueError(f"region must be 'unknown' or 'all', got {region!r}")
    pred_a = _as_alpha("pred", pred)
    gt_a = _as_alpha("gt", gt)
    if pred_a.shape != gt_a.shape:
        raise ValueError(f"pred has shape {pred_a.shape} but gt has {gt_a.shape}")

    mask = None
    if trimap is not None:
        tri = np.asarray(trimap)
        if tri.shape != pred_a.shape:
            raise ValueError(f"trimap has shape {tri.shape} but pred and gt have {pred_a.shape}")
        is_unknown = tri == UNKNOWN
        valid = is_unknown | (tri == 0) | (tri == 255)
        if not valid.all():
            bad = np.unique(tri[~valid])
            shown = ", ".join(f"{v:g}" for v in bad[:5].tolist())
            more = ", ..." if bad.size > 5 else ""
            raise ValueError(
                f"trimap values must be in {{0, 128, 255}}, found {shown}{more} "
                f"at {int((~valid).sum())} pixel(s)"
            )
        if region == "unknown":
            mask = is_unknown

    count = pred_a.size if mask is None else int(np.count_nonzero(mask))
    return _Inputs(pred_a, gt_a, mask, count)


# --------------------------------------------------------------------------
# MATLAB building blocks
# --------------------------------------------------------------------------


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop`` for ``step > 0``, bit for bit in the usual cases.

    MATLAB computes the first half as ``start + k*step`` and the second half
    as ``stop - k*step`` (the midpoint of an even number of steps as
    ``(start + stop) / 2``), so the vector is symmetric and both end points are
    exact. ``np.arange`` (``start + k*step`` throughout) drifts in the second
    half: ``np.arange(11) * 0.1`` has 0.6000000000000001 where MATLAB has 0.6.
    """
    if not step > 0:
        raise ValueError(f"step must be positive, got {step}")
    span = (stop - start) / step
    n = math.floor(span + 1e-10 * max(1.0, abs(span)))  # number of steps
    if n < 0:
        return np.empty(0)
    end = start + n * step
    # MATLAB snaps the end point to ``stop`` when it is within rounding of it.
    if abs(end - stop) <= 1e-10 * max(abs(start), abs(stop), step):
        end = stop
    out = np.empty(n + 1)
    k = np.arange(n // 2 + 1)
    out[k] = start + k * step
    out[n - k] = end - k * step
    if n % 2 == 0:
        out[n // 2] = (start + end) / 2
    return out


def mat2gray(image: np.ndarray) -> np.ndarray:
    """MATLAB ``mat2gray(A)``: ``(A - min) / (max - min)``, float64, clipped to [0, 1].

    A constant image is returned unscaled (clipped to [0, 1]), as in MATLAB.
    """
    a = np.asarray(image, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi == lo:
        return np.clip(a, 0.0, 1.0)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _gauss_taps(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """1-D ``gauss(u)`` and ``dgauss(u)`` of ``gaussgradient.m``, u = -halfsize..halfsize.

    ``halfsize = ceil(sigma * sqrt(-2 * log(sqrt(2*pi) * sigma * 0.01)))``,
    4 for sigma = 1.4; ``dgauss(u) = -u * gauss(u) / sigma**2``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * 1e-2)))
    u = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-(u**2) / (2.0 * sigma**2)) / (sigma * math.sqrt(2.0 * math.pi))
    dgauss = -u * gauss / sigma**2
    return gauss, dgauss


def gauss_gradient_kernels(sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The 2-D ``(hx, hy)`` kernels of MATLAB's ``gaussgradient.m`` (9x9 for sigma = 1.4).

    ``hx[i, j] = gauss(i - halfsize) * dgauss(j - halfsize)``, divided by
    ``sqrt(sum(hx**2))``; ``hy = hx.T``. ``hx`` differentiates along axis 1
    (x, columns) and ``hy`` along axis 0 (y, rows).
    """
    gauss, dgauss = _gauss_taps(sigma)
    hx = np.outer(gauss, dgauss)
    hx /= math.sqrt(float((hx * hx).sum()))
    return hx, hx.T.copy()


def gaussgradient(image: np.ndarray, sigma: float = GRAD_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``[gx, gy] = gaussgradient(IM, sigma)`` on a 2-D image (float64 out).

    That is ``imfilter(IM, hx, 'replicate', 'conv')`` and the same with ``hy``
    (see :func:`gauss_gradient_kernels`). ``hx = outer(gauss, dgauss) / norm``
    has rank one and ``norm = |gauss| * |dgauss|``, so it is applied exactly as
    a separable filter with the unit-length taps ``dgauss / |dgauss|`` along
    the derivative axis and ``gauss / |gauss|`` along the other; this equals
    the 2-D convolution up to float64 rounding and is ~4x faster.
    ``cv2.sepFilter2D`` correlates, so the (odd) derivative taps are reversed
    to make it a convolution. Signs therefore follow MATLAB: for an image
    that increases to the right, ``gx > 0``.
    """
    gauss, dgauss = _gauss_taps(sigma)
    smooth = gauss / math.sqrt(float(gauss @ gauss))
    deriv = np.ascontiguousarray(dgauss[::-1]) / math.sqrt(float(dgauss @ dgauss))
    im = np.ascontiguousarray(image, dtype=np.float64)
    # sepFilter2D(src, ddepth, kernelX (along axis 1), kernelY (along axis 0))
    gx = cv2.sepFilter2D(im, cv2.CV_64F, deriv, smooth, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(im, cv2.CV_64F, smooth, deriv, borderType=cv2.BORDER_REPLICATE)
    return gx, gy


def _gradient_magnitude_f32(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """``single(sqrt(gx.^2 + gy.^2))`` of ``mat2gray(alpha)``."""
    gx, gy = gaussgradient(mat2gray(alpha), sigma)
    return np.sqrt(gx * gx + gy * gy).astype(np.float32)


def _largest_component_colmajor(mask_t: np.ndarray) -> np.ndarray:
    """Largest 4-connected component of ``mask_t.T``, returned transposed.

    ``mask_t`` is the *transposed* mask: a row-major scan of it is a
    column-major scan of the image, so SciPy's label numbers follow the order
    in which ``bwconncomp`` lists components, and ``argmax`` (first maximum)
    breaks ties the way MATLAB's ``max`` does. Empty if there is no component.
    """
    labels, n = ndimage.label(mask_t, structure=_FOUR_CONNECTED)
    if n == 0:
        return np.zeros_like(mask_t)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    return labels == int(np.argmax(sizes))


# --------------------------------------------------------------------------
# Metric kernels on validated inputs
# --------------------------------------------------------------------------


def _sad(x: _Inputs) -> float:
    if x.count == 0:
        return 0.0
    return x.total(np.abs(x.pred - x.gt)) / 1000.0


def _mse(x: _Inputs) -> float:
    if x.count == 0:
        return 0.0
    diff = x.pred - x.gt
    return x.total(diff * diff) / x.count


def _grad(x: _Inputs, sigma: float, error_map: np.ndarray | None = None) -> float:
    if x.count == 0:
        return 0.0
    return x.total(_grad_map(x, sigma) if error_map is None else error_map) / 1000.0


def _grad_map(x: _Inputs, sigma: float) -> np.ndarray:
    """Per-pixel squared difference of the gradient magnitudes (the whole image: the region only sums it)."""
    diff = _gradient_magnitude_f32(x.pred, sigma) - _gradient_magnitude_f32(x.gt, sigma)
    return diff * diff


def _conn(x: _Inputs, step: float, error_map: np.ndarray | None = None) -> float:
    if x.count == 0:
        return 0.0
    return x.total(_conn_map(x, step) if error_map is None else error_map) / 1000.0


def _conn_map(x: _Inputs, step: float) -> np.ndarray:
    """Per-pixel |phi(pred) − phi(gt)| (the whole image: the region only sums it)."""
    thresholds = matlab_colon(0.0, step, 1.0)
    # Work on transposed (column-major) copies so that component labels come
    # out in MATLAB order without transposing every mask.
    pred_t = np.ascontiguousarray(x.pred.T)
    gt_t = np.ascontiguousarray(x.gt.T)
    # MATLAB's l_map is thresholds[ii - 1] for the first ii whose omega misses
    # the pixel, and 1 if none does. omega only matters while the pixel is
    # still unassigned, so l_map = levels[k], k = the number of consecutive
    # thresholds (from the second one up) whose omega contained the pixel.
    levels = np.append(thresholds[:-1], 1.0)
    survived = np.zeros(pred_t.shape, dtype=np.intp)
    pending = np.ones(pred_t.shape, dtype=bool)
    for t in thresholds[1:]:
        pending &= _largest_component_colmajor((pred_t >= t) & (gt_t >= t))
        if not pending.any():  # every pixel is assigned; later omegas are irrelevant
            break
        survived += pending
    level = levels[survived].T

    def phi(alpha: np.ndarray) -> np.ndarray:
        d = alpha - level
        return 1.0 - d * (d >= _CONN_MIN_DIFF)

    return np.abs(phi(x.pred) - phi(x.gt))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def sad(pred, gt, trimap=None, region: Region = "unknown") -> float:
    """Sum of absolute differences over the region, divided by 1000."""
    return _sad(_validate(pred, gt, trimap, region))


def mse(pred, gt, trimap=None, region: Region = "unknown") -> float:
    """Mean squared error over the region (not scaled; 0.0 for an empty region)."""
    return _mse(_validate(pred, gt, trimap, region))


def gradient_error(
    pred, gt, trimap=None, region: Region = "unknown", *, sigma: float = GRAD_SIGMA
) -> float:
    """Gradient error (``compute_gradient_loss.m`` / 1000); see the module docstring."""
    return _grad(_validate(pred, gt, trimap, region), sigma)


def connectivity_error(
    pred, gt, trimap=None, region: Region = "unknown", *, step: float = CONN_STEP
) -> float:
    """Connectivity error (``compute_connectivity_error.m`` / 1000); see the module docstring."""
    return _conn(_validate(pred, gt, trimap, region), step)


def compute_regions(pred, gt, trimap) -> dict[str, dict[str, float]]:
    """``compute_all`` over the whole image (``"all"``) and over the trimap's unknown region (``"unknown"``),
    the Grad and Conn maps computed once (at 12 megapixels they are most of the time)."""
    whole = _validate(pred, gt, trimap, "all")
    band = _validate(whole.pred, whole.gt, trimap, "unknown")
    grad, conn = _grad_map(whole, GRAD_SIGMA), _conn_map(whole, CONN_STEP)
    return {name: {"SAD": _sad(x), "MSE": _mse(x), "Grad": _grad(x, GRAD_SIGMA, grad), "Conn": _conn(x, CONN_STEP, conn)}
            for name, x in (("all", whole), ("unknown", band))}


def compute_all(pred, gt, trimap=None, region: Region = "unknown") -> dict[str, float]:
    """All four metrics with a single validation: keys ``SAD``, ``MSE``, ``Grad``, ``Conn``."""
    x = _validate(pred, gt, trimap, region)
    return {
        "SAD": _sad(x),
        "MSE": _mse(x),
        "Grad": _grad(x, GRAD_SIGMA),
        "Conn": _conn(x, CONN_STEP),
    }
