"""A given trimap's band solved by the matting Laplacian, pulled toward the network's alpha.

Closed-form matting (Levin et al., PAMI 2008) finds the alpha whose every 3×3 window is an affine function of
the photo's colours there, fixed to 0 / 1 where the trimap is sure. It follows edges the network's 512-px view
has lost, but knows nothing of what a person or a strand of hair is, and propagates a wrong colour model across
a whole band. The network knows the subject and blurs its edges. Here the band's alpha minimises

    αᵀ L α + weight · ‖α − α_network‖²     (L: the matting Laplacian; α fixed where the trimap is sure)

one sparse, symmetric positive-definite system over the band's pixels, solved by conjugate gradients with an
incomplete Cholesky preconditioner (pymatting's, compiled by numba): under ten steps on photos. A photo of fine
repeating detail (a checkerboard, pixel noise) defeats the preconditioner and would take thousands; the solve
stops at :data:`MAX_STEPS`, from the network's alpha toward the solution, and says so. ``weight`` 0 would be
closed-form matting; a large one the network's alpha. :data:`WEIGHT` was chosen on the ten dev photos the
network was trained on and measured on the four held back (docs/PHONE_PATH.md, the trimap protocol).

It runs where a person drew the trimap (:class:`runtime.matter.Matter` given a trimap and no mask), at the
working resolution: about a second for an 800-px photo's band, and once per process 0.7 s to load pymatting's
compiled code. A trimap without both sure regions anchors nothing and is left to the network. A band of more than
:data:`MAX_BAND` pixels (the solve's peak memory grows by about 3 kB a band pixel: 0.6 GB for 200 k) is solved on
the photo scaled down to that many and brought back bilinearly. The phone path (a mask) has the band refiner
instead.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import cv2
import numpy as np

from common.image_files import check_trimap
from common.values import is_real_number

WEIGHT = 1e-3        # the network's pull: chosen on the training photos (docs/PHONE_PATH.md)
MAX_WEIGHT = 1e6     # beyond this the solve is the network's alpha to 8 bits anyway
RTOL = 1e-6          # conjugate gradients' relative residual
MAX_STEPS = 100      # conjugate gradients' steps, at most (the dev photos' bands: 1 to 4)
MAX_BAND = 250_000   # band pixels solved at most (an 800-px photo's widest drawn band here: 202 k)


def check_weight(weight) -> float:
    """``weight`` as a float; ValueError unless it is a finite number above 0 and at most :data:`MAX_WEIGHT`
    (0 leaves the system singular where a window holds no colour change; NaN would solve nothing)."""
    if isinstance(weight, bool) or not is_real_number(weight) or not 0 < float(weight) <= MAX_WEIGHT:
        raise ValueError(f"the matting Laplacian's weight must be a number above 0 and at most {MAX_WEIGHT:g}, "
                         f"got {weight!r}")
    return float(weight)


def _check_inputs(photo, trimap, prior) -> None:
    """ValueError (DataError for the trimap) unless ``photo`` is float (H, W, 3) and ``prior`` float (H, W), both
    finite in [0, 1], and ``trimap`` uint8 (H, W) of 0 / 128 / 255."""
    for name, value in (("photo", photo), ("trimap", trimap), ("prior", prior)):
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    check_trimap(trimap)
    for name, value, shape in (("photo", photo, (*trimap.shape, 3)), ("prior", prior, trimap.shape)):
        if value.shape != shape:
            raise ValueError(f"the {name} must have the shape {shape} for a trimap of {trimap.shape}, got {value.shape}")
        if value.dtype.kind != "f" or not np.isfinite(value).all() or value.min() < 0 or value.max() > 1:
            raise ValueError(f"the {name} must be floats in [0, 1], got {value.dtype} "
                             + ("with NaN or inf" if value.dtype.kind == "f" and not np.isfinite(value).all() else
                                f"from {value.min():g} to {value.max():g}"))


def solve_band(photo: np.ndarray, trimap: np.ndarray, prior: np.ndarray, weight: float = WEIGHT) -> np.ndarray:
    """float32 (H, W) alpha: ``trimap``'s (uint8 0 / 128 / 255) band solved as above from ``photo`` (float RGB in
    [0, 1]) and ``prior`` (the network's alpha), exactly 0 / 1 where the trimap is sure; ``prior`` in the band
    where the trimap has no sure foreground or no sure background."""
    weight = check_weight(weight)
    _check_inputs(photo, trimap, prior)
    band = trimap == 128
    if not ((trimap == 0).any() and (trimap == 255).any()):
        return np.where(band, prior, trimap == 255).astype(np.float32)
    scale = min(1.0, (MAX_BAND / max(int(band.sum()), 1)) ** 0.5)
    if scale == 1.0:
        return _solve(photo, trimap, prior, weight)
    size = (max(1, round(trimap.shape[1] * scale)), max(1, round(trimap.shape[0] * scale)))
    small = _solve(cv2.resize(np.float32(photo), size, interpolation=cv2.INTER_AREA),
                   cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST_EXACT),
                   cv2.resize(np.float32(prior), size, interpolation=cv2.INTER_AREA), weight)
    solved = cv2.resize(small, trimap.shape[::-1], interpolation=cv2.INTER_LINEAR)
    return np.where(band, solved, trimap == 255).astype(np.float32)


def _solve(photo: np.ndarray, trimap: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """:func:`solve_band` of a band within :data:`MAX_BAND`."""
    from pymatting.laplacian.cf_laplacian import cf_laplacian   # numba: imported only when a trimap is given
    from pymatting.preconditioner.ichol import ichol
    from scipy.sparse import identity

    unknown = (trimap == 128).ravel()
    alpha = (trimap == 255).astype(np.float32)
    if not unknown.any():
        return alpha
    known = ~unknown
    laplacian = cf_laplacian(np.ascontiguousarray(photo, np.float64), is_known=known.reshape(trimap.shape))
    rows = laplacian[unknown]
    system = (rows[:, unknown] + weight * identity(int(unknown.sum()), format="csr")).tocsr()
    guess = prior.ravel()[unknown].astype(np.float64)
    rhs = weight * guess - rows[:, known] @ alpha.ravel()[known].astype(np.float64)
    with contextlib.redirect_stdout(io.StringIO()):    # its retries with a diagonal shift are printed, not raised
        preconditioner = ichol(system)
    alpha.ravel()[unknown] = np.clip(_conjugate_gradients(system, rhs, guess, preconditioner), 0.0, 1.0)
    return alpha


def _conjugate_gradients(system, rhs: np.ndarray, guess: np.ndarray, preconditioner) -> np.ndarray:
    """At most :data:`MAX_STEPS` of preconditioned conjugate gradients from ``guess`` (a warning where the
    residual is still above :data:`RTOL` of the right-hand side's then)."""
    from scipy.sparse.linalg import LinearOperator, cg

    inverse = LinearOperator(system.shape, matvec=preconditioner, dtype=np.float64)
    solved, left = cg(system, rhs, x0=guess, rtol=RTOL, maxiter=MAX_STEPS, M=inverse)
    if left:
        warnings.warn(f"the matting Laplacian did not settle in {MAX_STEPS} steps (the photo's fine repeating detail "
                      "defeats its preconditioner): the band is part way from the network's alpha to its solution",
                      stacklevel=3)
    return solved
