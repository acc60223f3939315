"""The bokeh pipeline's stages as they were before the 12-megapixel rewrite, kept as the reference the
rewritten ones are compared with (``benchmarks.pipeline_stages`` and ``tests/test_pipeline_speed.py``): the
trimap from a distance transform of the mask resized to the photo, the guided filter's full-resolution
arrays, the band's refinement tiles each brought to the photo by its own guided filter, the blur-fusion means at
up to 2 megapixels, the lens blur's full-resolution linear light, the composite by ``cv2.blendLinear``. Not used
by the app. One step is today's rather than the old one: the blurred light is clipped to white, where a soft
shoulder dimmed whites (a change of design, not of speed)."""

from __future__ import annotations

import cv2
import numpy as np

from calib_data.trimaps import trimap_from_mask as _trimap_full_resolution
from runtime.foreground import blur_fusion_means, fuse
from runtime.refine import UNSURE, _feather, _tiles
from runtime.lens_blur import (
    DEFAULT_STRENGTH,
    HIGHLIGHT_GAIN,
    HIGHLIGHT_THRESHOLD,
    MAX_RADIUS,
    _lut,
    blur_radius,
    disc_kernel,
    highlight_boost,
    linear_to_srgb,
    srgb_to_linear,
)
from runtime.upsample import GUIDED_EPS, GUIDED_RADIUS, SNAP, box_mean


# --------------------------------------------------------------------------------------------- trimap
def trimap_from_mask(mask: np.ndarray, shape: tuple[int, int], band: int) -> np.ndarray:
    """A float mask at any resolution → bilinear to the photo → distance transforms at full resolution."""
    h, w = shape
    full = mask if mask.shape == (h, w) else cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return _trimap_full_resolution(full, band)


# --------------------------------------------------------------------------------------------- upsampling
def guided_coefficients(guide, p, radius, eps):
    g = guide.reshape(*guide.shape[:2], -1).astype(np.float32)
    c = g.shape[2]
    mean_i = box_mean(g, radius).reshape(*g.shape[:2], c)
    mean_p = box_mean(p, radius)
    cov_ip = box_mean(g * p[..., None], radius).reshape(*g.shape[:2], c) - mean_i * mean_p[..., None]
    if c == 1:
        var_i = box_mean(g[..., 0] * g[..., 0], radius) - mean_i[..., 0] ** 2
        a = (cov_ip[..., 0] / (var_i + eps))[..., None]
    else:
        outer = np.stack([g[..., i] * g[..., j] for i in range(c) for j in range(c)], axis=-1)
        sigma = box_mean(outer, radius).reshape(*g.shape[:2], c, c) - mean_i[..., :, None] * mean_i[..., None, :]
        sigma += eps * np.eye(c, dtype=np.float32)
        a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0].astype(np.float32)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    a_mean = box_mean(a, radius).reshape(a.shape)
    return a_mean, box_mean(b.astype(np.float32), radius)


def local_fit(mean_i: list[np.ndarray], mean_p: np.ndarray, corr_ip: list[np.ndarray], corr_ii: dict,
              eps: float) -> list[np.ndarray]:
    """The numpy form of :func:`runtime.kernels.guided_fit`: each window's least-squares (a, b) of p ≈ aᵀ·I + b
    from its box means: Σ a = cov(I, p) with Σ = E[I Iᵀ] − μμᵀ + eps·1 (symmetric positive definite),
    b = mean(p) − aᵀμ. Returns [a_0, …, b]."""
    cov_ip = [c - m * mean_p for c, m in zip(corr_ip, mean_i)]
    sigma = {}
    for (i, j), c in corr_ii.items():
        sigma[i, j] = c - mean_i[i] * mean_i[j]
        if i == j:
            sigma[i, j] += np.float32(eps)
    a = [cov_ip[0] / sigma[0, 0]] if len(mean_i) == 1 else solve_spd3(sigma, cov_ip)
    b = mean_p.copy()
    for a_c, m in zip(a, mean_i):
        b -= a_c * m
    return [*a, b]


def solve_spd3(s: dict, rhs: list[np.ndarray]) -> list[np.ndarray]:
    """x with S x = rhs per pixel, S symmetric positive definite 3×3 (``s[i, j]``, i ≤ j, each (h, w)): the
    Cholesky factor S = L Lᵀ, then forward and back substitution, all float32 and vectorised, plane by plane."""
    tiny = np.float32(1e-30)
    l00 = np.sqrt(np.maximum(s[0, 0], tiny))
    l10, l20 = s[0, 1] / l00, s[0, 2] / l00
    l11 = np.sqrt(np.maximum(s[1, 1] - l10 * l10, tiny))
    l21 = (s[1, 2] - l20 * l10) / l11
    l22 = np.sqrt(np.maximum(s[2, 2] - l20 * l20 - l21 * l21, tiny))
    y0 = rhs[0] / l00
    y1 = (rhs[1] - l10 * y0) / l11
    y2 = (rhs[2] - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return [x0, x1, x2]


def fast_guided_upsample(alpha_low, guide_low, guide_full, radius=GUIDED_RADIUS, eps=GUIDED_EPS):
    h, w = guide_full.shape[:2]
    a, b = guided_coefficients(guide_low, alpha_low.astype(np.float32), radius, eps)
    a_up = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    b_up = cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
    q = cv2.multiply(a_up, guide_full)
    if q.ndim == 3:
        q = cv2.transform(q, np.ones((1, q.shape[2]), np.float32))
    return cv2.add(q, b_up)


def snap(alpha, tol=SNAP):
    np.clip(alpha, 0.0, 1.0, out=alpha)
    alpha = cv2.threshold(alpha, tol, 0.0, cv2.THRESH_TOZERO)[1]
    return 1.0 - cv2.threshold(1.0 - alpha, tol, 0.0, cv2.THRESH_TOZERO)[1]


def upsample_alpha(alpha_low, guide_full, guide_low=None, method="guided", guide="rgb", radius=GUIDED_RADIUS,
                   eps=GUIDED_EPS):
    size = guide_full.shape[:2]
    if method == "bilinear" or alpha_low.shape == size:
        return snap(cv2.resize(alpha_low.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR))
    if guide_low is None:
        guide_low = cv2.resize(guide_full, alpha_low.shape[::-1], interpolation=cv2.INTER_AREA)
    if guide == "gray":
        guide_full = cv2.cvtColor(guide_full, cv2.COLOR_RGB2GRAY)
        guide_low = cv2.cvtColor(guide_low, cv2.COLOR_RGB2GRAY)
    return snap(fast_guided_upsample(alpha_low, guide_low, guide_full, radius, eps))


# --------------------------------------------------------------------------------------------- refinement
def refine(run, photo, trimap, alpha, input_size, settings):
    h, w = photo.shape[:2]
    th, tw = input_size
    s = min(1.0, settings.zoom * max(th, tw) / max(h, w))
    work = (max(th, round(h * s)), max(tw, round(w * s)))
    if work[0] <= th and work[1] <= tw:
        return alpha
    photo_w = cv2.resize(photo, work[::-1], interpolation=cv2.INTER_AREA)
    trimap_w = cv2.resize(trimap, work[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
    unsure = (trimap_w == 128) & (np.abs(cv2.resize(alpha, work[::-1], interpolation=cv2.INTER_AREA) - 0.5)
                                  < 0.5 - UNSURE)
    out = alpha.copy()
    for y, x in _tiles(unsure, (th, tw), settings.tiles):
        a_tile = run(photo_w[y:y + th, x:x + tw], trimap_w[y:y + th, x:x + tw])
        _paste(out, a_tile, photo, trimap, (y, x), (th, tw), work)
    return out


def _paste(out, a_tile, photo, trimap, corner, size, work):
    h, w = out.shape
    (y, x), (th, tw) = corner, size
    fy, fx = h / work[0], w / work[1]
    y0, y1, x0, x1 = round(y * fy), min(h, round((y + th) * fy)), round(x * fx), min(w, round((x + tw) * fx))
    guide_full = photo[y0:y1, x0:x1]
    guide_low = cv2.resize(guide_full, (tw, th), interpolation=cv2.INTER_AREA)
    a_full = upsample_alpha(a_tile, guide_full, guide_low)
    weight = cv2.resize(_feather((th, tw), corner, work), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    weight *= trimap[y0:y1, x0:x1] == 128
    region = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = snap(region + weight * (a_full - region))


# --------------------------------------------------------------------------------------------- renderer
def _bounding_box(mask, margin):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)))


def estimate_foreground(photo, alpha, max_megapixels=2.0, window_fractions=(0.12, 0.004)):
    h, w = alpha.shape
    mask = (alpha > 0.0) & (alpha < 1.0)
    scale = min(1.0, np.sqrt(max_megapixels * 1e6 / (h * w)))
    diag = np.hypot(h, w) * scale
    sizes = tuple(max(3, int(round(f * diag)) | 1) for f in window_fractions)
    box = _bounding_box(mask, margin=int(np.ceil(sizes[0] / scale)))
    if box is None:
        return mask, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    crop_photo, crop_alpha = photo[box], alpha[box]
    ch, cw = crop_alpha.shape
    small_size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
    image = cv2.resize(crop_photo, small_size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    means = blur_fusion_means(image, cv2.resize(crop_alpha, small_size, interpolation=cv2.INTER_AREA), sizes)
    ys, xs = np.nonzero(mask[box])
    mean_f, mean_b = (_sample(m, ys, xs, (ch, cw)) for m in means)
    i = crop_photo[ys, xs].astype(np.float32) / 255.0
    a = crop_alpha[ys, xs]
    fg = fuse(i, a, mean_f, mean_b)
    bg = np.clip((i - a[:, None] * fg) / (1.0 - a[:, None]), 0.0, 1.0)
    return mask, fg, bg


def _sample(small: np.ndarray, ys: np.ndarray, xs: np.ndarray, full: tuple[int, int]) -> np.ndarray:
    """Bilinear samples of ``small`` (h, w, C) at the full-resolution pixels (ys, xs) of a (H, W) grid, with
    ``cv2.resize``'s pixel-centre mapping: the upsampled image evaluated at those pixels only."""
    (h, w), (fh, fw) = small.shape[:2], full
    n, row = len(ys), 4096                          # cv2.remap takes maps of fewer than 32767 rows
    maps = np.zeros((2, -(-n // row) * row), np.float32)
    maps[0, :n] = (xs + 0.5) * (w / fw) - 0.5
    maps[1, :n] = (ys + 0.5) * (h / fh) - 0.5
    maps = maps.reshape(2, -1, row)
    out = cv2.remap(small, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, small.shape[2])[:n]


def lens_blur(photo, alpha=None, strength=DEFAULT_STRENGTH, *, background=None, threshold=HIGHLIGHT_THRESHOLD,
              gain=HIGHLIGHT_GAIN, max_radius=MAX_RADIUS):
    h, w = photo.shape[:2]
    radius = blur_radius((h, w), strength)
    if radius < 0.5:
        return photo.copy()
    lin = cv2.LUT(photo, _lut(srgb_to_linear(np.arange(256) / 255.0)))
    if background is not None:
        mask, colours = background
        lin[mask] = srgb_to_linear(colours)
    weight = np.ones((h, w), np.float32) if alpha is None else (1.0 - alpha).astype(np.float32)
    window = max(3, int(radius) | 1)
    lin *= (weight * highlight_boost(photo, window, threshold, gain) if gain > 0 else weight)[..., None]
    scale = min(1.0, max_radius / radius)
    if scale < 1.0:
        small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
        lin = cv2.resize(lin, small_size, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, small_size, interpolation=cv2.INTER_AREA)
    kernel = disc_kernel(radius * scale)
    num = cv2.filter2D(lin, -1, kernel, borderType=cv2.BORDER_REFLECT)
    den = cv2.filter2D(weight, -1, kernel, borderType=cv2.BORDER_REFLECT)
    blurred = num / np.maximum(den, 1e-6)[..., None]
    out = np.rint(linear_to_srgb(blurred) * 255.0).astype(np.uint8)
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) if scale < 1.0 else out


def composite(photo, alpha, background, fg_mask, fg):
    out = cv2.blendLinear(photo, background, alpha, 1.0 - alpha)
    a = alpha[fg_mask][:, None]
    out[fg_mask] = np.clip(np.rint(a * fg * 255.0 + (1.0 - a) * background[fg_mask]), 0, 255).astype(np.uint8)
    np.copyto(out, photo, where=(alpha >= 1.0)[..., None])
    return out


def render_bokeh(photo: np.ndarray, alpha: np.ndarray, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """uint8 RGB photo and float32 alpha of its size → the bokeh image, as the renderer made it before."""
    mask, fg, bg = estimate_foreground(photo, alpha)
    background = lens_blur(photo, alpha, strength, background=(mask, bg))
    return composite(photo, alpha, background, mask, fg)
