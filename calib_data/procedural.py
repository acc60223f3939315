"""Seeded procedural matting subjects with exact fractional alpha.

Every subject is an opaque *body* (a head-and-shoulders portrait or a smooth random blob) plus the
structure that makes matting hard: hair strands, fur, a semi-transparent veil, a glass object, a
defocus-blurred or a motion-blurred edge. Alpha is never painted by hand: it is the coverage of the
rendered geometry, times the material's own opacity for the veil's weave and the glass,

* polygons (bodies, veils, glass, highlights) are filled anti-aliased at ``BODY_SUPERSAMPLE``× the
  output resolution and area-averaged;
* strands (hair, fur) are drawn as binary strokes at ``STRAND_SUPERSAMPLE``× the resolution and
  area-averaged, so a strand a quarter of a pixel wide covers about a quarter of each pixel it
  crosses (widths are realised in steps of about 0.25 px, see ``_STROKE_WIDTH``);
* blurs (defocus, motion) convolve coverage and premultiplied colour with the same normalised kernel.

Layers are composited "over" in premultiplied colour, so ``fg = premultiplied / alpha`` is the colour
of what covers each pixel. After clipping, alpha below ``SNAP`` becomes 0 and above ``1 − SNAP`` becomes
1, so every subject has an exactly opaque core and an exactly transparent background around a real
band of fractional alpha. Where alpha is 0 the foreground holds the subject's own texture, never black.

Everything is a function of the ``np.random.Generator`` passed in: the same generator state gives the
same arrays, bit for bit.

Coordinates are in output pixels with pixel centres at integers (OpenCV's convention); ``m`` below is
``min(H, W)`` and sizes of geometry scale with it, except strand widths, which are in pixels.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("hair", "fur", "veil", "glass", "defocus", "motion")
# Subjects the background shows through (holes down to below a phone mask's pixel): the band refiner's data,
# not drawn by random_foreground, so the network's training stream is unchanged.
SEE_THROUGH_KINDS = ("net", "foliage")

STRAND_SUPERSAMPLE = 8   # strands: 8×8 binary samples per pixel (widths down to ~0.1 px)
BODY_SUPERSAMPLE = 4     # polygons: 4×4 anti-aliased samples per pixel
SNAP = 1e-4              # alpha within SNAP of 0 or 1 is snapped to exactly 0 or 1
MIN_SIZE = 32

_SHIFT = 4               # fixed-point fraction bits for cv2 drawing calls
_ONE16 = 65535           # full coverage / full intensity on the uint16 strand canvas

# Mean width, in canvas pixels and averaged over orientations, of a cv2.LINE_8 stroke of each
# thickness (measured with OpenCV; strokes thicker than 2 only come in steps of 2). At 8× these are
# strands of 0.11, 0.38, 0.60, 0.89, 1.15, 1.40, 1.65 and 1.94 px.
_STROKE_THICKNESS = np.array([1, 2, 3, 5, 7, 9, 11, 13])
_STROKE_WIDTH = np.array([0.91, 3.06, 4.83, 7.08, 9.16, 11.16, 13.22, 15.49])

# Base colours (sRGB in [0, 1]), jittered per subject.
_SKIN = np.array([(0.96, 0.80, 0.69), (0.90, 0.72, 0.60), (0.80, 0.60, 0.47),
                  (0.65, 0.45, 0.33), (0.48, 0.32, 0.22), (0.33, 0.21, 0.15)])
_HAIR = np.array([(0.06, 0.05, 0.045), (0.16, 0.10, 0.07), (0.33, 0.21, 0.13), (0.52, 0.37, 0.24),
                  (0.50, 0.22, 0.10), (0.72, 0.38, 0.17), (0.82, 0.66, 0.42), (0.90, 0.87, 0.78),
                  (0.62, 0.61, 0.60)])
_FUR = np.array([(0.80, 0.48, 0.22), (0.92, 0.90, 0.86), (0.55, 0.55, 0.56), (0.08, 0.07, 0.07),
                 (0.42, 0.29, 0.18), (0.88, 0.78, 0.60), (0.62, 0.50, 0.38)])
_VEIL = np.array([(0.97, 0.97, 0.96), (0.95, 0.91, 0.82), (0.93, 0.84, 0.86), (0.82, 0.88, 0.95),
                  (0.10, 0.09, 0.10)])
_GLASS_TINT = np.array([(0.92, 0.95, 0.96), (0.78, 0.90, 0.80), (0.75, 0.85, 0.95), (0.95, 0.80, 0.55)])

Layer = tuple[np.ndarray, np.ndarray]   # (alpha HxW, premultiplied colour HxWx3), float32


# --------------------------------------------------------------------------------------------- API

def make_foreground(kind: str, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One procedural subject of ``kind`` at ``size`` = (H, W), both at least ``MIN_SIZE``.

    Returns ``(fg, alpha)``: fg float32 HxWx3 in [0, 1], alpha float32 HxW in [0, 1] with exact 0
    (background), exact 1 (opaque core) and fractional values in between.
    """
    if kind not in _BUILDERS:
        raise ValueError(f"unknown foreground kind {kind!r}; known: {', '.join(KINDS + SEE_THROUGH_KINDS)}")
    shape = _check_size(size)
    alpha, premult, fill = _BUILDERS[kind](shape, rng)
    return _finish(alpha, premult, fill)


def random_foreground(size: tuple[int, int], rng: np.random.Generator) -> tuple[str, np.ndarray, np.ndarray]:
    """A subject of a uniformly drawn kind: ``(kind, fg, alpha)``."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    fg, alpha = make_foreground(kind, size, rng)
    return kind, fg, alpha


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}×{MIN_SIZE}, got {h}×{w}")
    return h, w


def _finish(alpha: np.ndarray, premult: np.ndarray, fill: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Un-premultiply, clip, and snap alpha so that exact 0 and exact 1 regions exist."""
    alpha = np.clip(alpha, 0.0, 1.0)
    fg = np.where(alpha[..., None] > SNAP, premult / np.maximum(alpha, SNAP)[..., None], fill)
    alpha[alpha < SNAP] = 0.0
    alpha[alpha > 1.0 - SNAP] = 1.0
    return np.clip(fg, 0.0, 1.0).astype(np.float32), alpha.astype(np.float32)


# ------------------------------------------------------------------------------------------- kinds

def _hair(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Portrait whose hair outline dissolves into thousands of sub-pixel strands.

    Layers, back to front: long hair hanging behind head and shoulders (sometimes), the person, hair
    over the crown with the face cut out, then strands grown from the visible hair outline. Strands
    are combed away from the parting, hug the head and sag under gravity; a share are fly-aways.
    """
    person = _portrait(shape, rng)
    cx, cy, rx, ry = person.head
    hair_rgb = _hair_colour(rng)
    parting = np.array([cx + rng.normal(0, 0.3) * rx, cy - ry * rng.uniform(0.8, 1.0)])
    mass_rgb = _hair_texture(shape, rng, hair_rgb, parting, radius=ry)
    layer, hair_seen, back_cov = _hair_mass(shape, rng, person, mass_rgb)
    layer = _over(_hair_strands(shape, rng, layer[0], hair_seen, person.head, parting, hair_rgb), layer)
    return layer[0], layer[1], _mix(person.colour, mass_rgb, np.maximum(hair_seen, back_cov))


def _hair_colour(rng) -> np.ndarray:
    """A natural hair colour most of the time, a dyed one otherwise, jittered."""
    base = _HAIR[rng.integers(len(_HAIR))] if rng.random() < 0.85 else _random_colour(rng, (0.4, 0.9), (0.35, 0.9))
    return _jitter(base, rng, 0.08)


def _hair_mass(shape, rng, person: _Body, mass_rgb: np.ndarray) -> tuple[Layer, np.ndarray, np.ndarray]:
    """Person with the hair mass behind and over the crown: ``(layer, hair_seen, back_cov)``.

    ``hair_seen`` is where hair is the front surface: the front hair, or back hair the person leaves visible.
    """
    cx, cy, rx, ry = person.head
    crown = _ellipse(cx + rng.normal(0, 0.04) * rx, cy - ry * rng.uniform(0.04, 0.14),
                     rx * rng.uniform(1.1, 1.28), ry * rng.uniform(1.02, 1.12))
    back_cov = _coverage([crown] + _long_hair(rng, person.head), shape)
    front_cov = _front_hair(shape, rng, crown, person.head)
    layer = _over(person.layer, (back_cov, back_cov[..., None] * mass_rgb))
    layer = _over((front_cov, front_cov[..., None] * mass_rgb), layer)
    hair_seen = front_cov + (1.0 - front_cov) * (1.0 - person.layer[0]) * back_cov
    return layer, hair_seen, back_cov


def _long_hair(rng, head) -> list[np.ndarray]:
    """Sometimes an ellipse of long hair falling from the head to below the shoulders; else nothing."""
    cx, cy, rx, ry = head
    if rng.random() >= 0.65:
        return []
    fall = ry * rng.uniform(1.2, 3.0)
    return [_ellipse(cx, cy + fall / 2, rx * rng.uniform(1.15, 1.6), fall / 2 + ry * 0.5)]


def _front_hair(shape, rng, crown: np.ndarray, head) -> np.ndarray:
    """Coverage of hair in front of the head: the crown, face cut out, framing the face down to about ear level."""
    cx, cy, rx, ry = head
    face = _coverage([_ellipse(cx, cy + ry * rng.uniform(0.12, 0.22), rx * rng.uniform(0.8, 0.9),
                               ry * rng.uniform(0.8, 0.88))], shape)
    ys, _ = _coords(shape)
    ear = cy + ry * rng.uniform(-0.1, 0.3)
    return _coverage([crown], shape) * (1.0 - face) * np.clip((ear - ys) / (0.15 * ry) + 0.5, 0.0, 1.0)


def _hair_strands(shape, rng, coverage: np.ndarray, hair_seen: np.ndarray, head, parting: np.ndarray,
                  hair_rgb: np.ndarray) -> Layer:
    """Strands rooted just inside the visible hair outline, combed, grown and rendered; a share are fly-aways."""
    m = min(shape)
    roots, normals = _outline_samples(coverage, rng, density=rng.uniform(4.0, 6.0), where=hair_seen >= 0.5)
    n = len(roots)
    flyaway = rng.random(n) < rng.uniform(0.04, 0.12)
    lengths = m * np.exp(rng.uniform(np.log(0.03), np.log(0.2), n)) * np.where(flyaway, 1.4, 1.0)
    roots = roots - normals * rng.uniform(0.5, 0.05 * m, (n, 1))
    tangent, directions = _comb(rng, roots, normals, flyaway, parting)
    turn = _hug_turn(rng, roots, normals, tangent, flyaway, lengths, head)
    points = _grow_hair(rng, roots, directions, lengths, flyaway, turn, m)
    widths, colours = _hair_strand_looks(rng, n, hair_rgb)
    return _render_strands(points, widths, colours, shape)


def _comb(rng, roots: np.ndarray, normals: np.ndarray, flyaway: np.ndarray,
          parting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit outline tangents pointing away from the parting, and the strands' unit starting directions.

    Strands follow the outline, tilted outwards by a small angle (a large one for fly-aways); where the
    outline faces down (the ends of long hair) they hang instead of curling inwards.
    """
    n = len(roots)
    tangent = np.stack([-normals[:, 1], normals[:, 0]], 1)
    tangent *= np.where(((roots - parting) * tangent).sum(1) < 0, -1.0, 1.0)[:, None]
    tilt = np.where(flyaway, rng.uniform(0.3, 1.4, n), rng.uniform(0.0, 0.45, n))
    directions = np.cos(tilt)[:, None] * tangent + np.sin(tilt)[:, None] * normals
    hang = np.clip(normals[:, 1], 0.0, 1.0)[:, None]
    directions = (1 - hang) * directions + hang * (0.0, 1.0)
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-9)
    return tangent, directions


def _hug_turn(rng, roots: np.ndarray, normals: np.ndarray, tangent: np.ndarray, flyaway: np.ndarray,
              lengths: np.ndarray, head) -> np.ndarray:
    """Per-leg turn (radians) that hugs the head: inwards by the angle its curvature subtends, on the crown only.

    A positive turn rotates a heading towards its perpendicular (-y, x); fly-aways do not turn.
    """
    cx, cy, rx, ry = head
    inward = -np.sign(tangent[:, 0] * normals[:, 1] - tangent[:, 1] * normals[:, 0])
    crown_weight = np.clip((cy - roots[:, 1]) / ry + 0.3, 0.0, 1.0)   # hug on the crown, hang below it
    return np.where(flyaway, 0.0, inward * crown_weight * rng.uniform(0.4, 1.0, len(roots)) * lengths / (3 * ry))


def _grow_hair(rng, roots: np.ndarray, directions: np.ndarray, lengths: np.ndarray, flyaway: np.ndarray,
               turn: np.ndarray, m: int) -> np.ndarray:
    """Hair strand polylines: sagging under gravity, fly-aways bending more, the whole head wavy sometimes."""
    n = len(roots)
    wavy = rng.random() < 0.35
    sag = np.where(flyaway, rng.uniform(0.0, 0.3, n), rng.uniform(0.2, 0.8, n))
    wave = (rng.uniform(0.4, 2.0) * m / 256, rng.uniform(10, 30) * m / 256) if wavy else None
    return _grow_strands(roots, directions, lengths, rng, bend=np.where(flyaway, 0.5, 0.15), turn=turn,
                         sag=sag, wave=wave, n_points=20 if wavy else 12)


def _hair_strand_looks(rng, n: int, hair_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Widths (px) and colours of ``n`` strands around ``hair_rgb``, a few of them lighter."""
    # Single hairs are far below a pixel at portrait scale; a few clumped locks reach ~1.4 px.
    lock = rng.random(n) < 0.1
    widths = np.exp(np.where(lock, rng.uniform(np.log(0.6), np.log(1.4), n),
                             rng.uniform(np.log(0.1), np.log(0.6), n)))
    shade = np.exp(rng.normal(0.0, 0.16, (n, 1))) * np.where(rng.random((n, 1)) < 0.08, 1.4, 1.0)
    colours = np.clip(hair_rgb * shade + rng.normal(0.0, 0.012, (n, 3)), 0.0, 1.0)
    return widths, colours


def _fur(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Animal-like blob silhouette fringed by dense short strands."""
    h, w = shape
    m = min(h, w)
    polygons = [_blob(w * rng.uniform(0.42, 0.58), h * rng.uniform(0.45, 0.58), m * rng.uniform(0.22, 0.3), rng,
                      aspect=rng.uniform(0.75, 1.3), roughness=0.7)]
    if rng.random() < 0.6:   # a head on top of the body
        a = rng.uniform(-2.4, -0.7)
        r = m * rng.uniform(0.1, 0.15)
        polygons.append(_blob(polygons[0][:, 0].mean() + np.cos(a) * m * 0.25,
                              polygons[0][:, 1].mean() + np.sin(a) * m * 0.25, r, rng, roughness=0.5))
    coverage = _coverage(polygons, shape)
    fur_rgb = _jitter(_FUR[rng.integers(len(_FUR))], rng, 0.08)
    colour = _surface(shape, rng, fur_rgb, contrast=0.2, fine=0.12)
    layer = (coverage, coverage[..., None] * colour)

    roots, normals = _outline_samples(coverage, rng, density=rng.uniform(3.5, 5.5))
    n = len(roots)
    lengths = np.maximum(m * rng.uniform(0.012, 0.04) * np.exp(rng.normal(0.0, 0.3, n)), 2.5)
    roots = roots - normals * (lengths * rng.uniform(0.2, 0.6, n))[:, None]
    comb = rng.uniform(-0.6, 0.6) + 0.5 * _sample(fractal_noise(shape, rng, cells=3, octaves=2), roots)
    points = _grow_strands(roots, _rotate(normals, comb + rng.normal(0.0, 0.3, n)), lengths, rng,
                           bend=0.25, sag=rng.uniform(0.0, 0.3, n), n_points=6)
    widths = np.exp(rng.uniform(np.log(0.12), np.log(0.9), n))
    tip = rng.uniform(0.9, 1.25)   # fur often lightens (or darkens) towards the tips
    colours = np.clip(_sample(colour, roots) * tip * np.exp(rng.normal(0.0, 0.12, (n, 1))), 0.0, 1.0)
    layer = _over(_render_strands(points, widths, colours, shape), layer)
    return layer[0], layer[1], colour


def _veil(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opaque body under a draped, woven, semi-transparent veil (alpha ~0.1–0.85)."""
    body = _portrait(shape, rng) if rng.random() < 0.7 else _blob_body(shape, rng)
    cx, cy, rx, ry = body.head
    veil_cov = _coverage([_drape(shape, rng, cx, cy, rx, ry)], shape)
    folds = _folds(shape, rng, cx)
    weave = _weave(shape, rng)
    mesh = rng.uniform(0.2, 0.6)
    thickness = 1 + 0.3 * folds + 0.15 * fractal_noise(shape, rng, cells=4)
    density = rng.uniform(0.25, 0.55) * thickness * (1 - mesh + mesh * weave)
    veil_alpha = veil_cov * np.clip(density, 0.05, 0.85)

    veil_rgb = _jitter(_VEIL[rng.integers(len(_VEIL))], rng, 0.04)
    veil_colour = np.clip(veil_rgb * (1 + 0.12 * folds)[..., None], 0, 1)
    veil = (veil_alpha, veil_alpha[..., None] * veil_colour)
    alpha, premult = _over(veil, body.layer)
    return alpha, premult, _mix(body.colour, veil_colour, veil_cov)


def _folds(shape, rng, cx: float) -> np.ndarray:
    """Fabric folds in [-1, 1]: vertical sinusoidal pleats about ``cx`` warped by noise; they shade and thicken it."""
    _, xs = _coords(shape)
    pleat = min(shape) * rng.uniform(0.05, 0.12)
    return np.sin(2 * np.pi * (xs - cx) / pleat + 2.0 * fractal_noise(shape, rng, cells=3, octaves=2))


def _weave(shape, rng) -> np.ndarray:
    """Cover in [0, 1] of two crossing sets of threads, box-filtered analytically over each pixel (no aliasing)."""
    ys, xs = _coords(shape)
    period, angle = rng.uniform(3.0, 6.0), rng.uniform(0, np.pi)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    damp = float(np.sinc(1.0 / period))   # mean of a cosine of this period over a 1-px box
    threads_u = 0.5 + 0.5 * damp * np.cos(2 * np.pi * u / period)
    threads_v = 0.5 + 0.5 * damp * np.cos(2 * np.pi * v / period)
    return 1.0 - (1.0 - threads_u) * (1.0 - threads_v)


def _drape(shape, rng, cx, cy, rx, ry) -> np.ndarray:
    """Bell-shaped outline of cloth hanging over a head: a cap hugging the crown, flaring sides, wavy hem."""
    w = shape[1]
    top_rx, top_ry = rx * rng.uniform(1.1, 1.3), ry * rng.uniform(1.08, 1.2)
    top_y = cy - ry * rng.uniform(0.0, 0.1)
    hem = cy + ry * rng.uniform(1.6, 3.2)
    spread = min(rx * rng.uniform(1.8, 2.8), 0.47 * w)
    a = np.linspace(np.pi, 2 * np.pi, 48)
    cap = np.stack([cx + top_rx * np.cos(a), top_y + top_ry * np.sin(a)], 1)          # left → top → right
    t = np.linspace(0.0, 1.0, 32)[:, None]
    start, bulge, end = (cx + top_rx, top_y), (cx + top_rx * 1.2, (top_y + hem) / 2), (cx + spread, hem)
    right = (1 - t) ** 2 * start + 2 * (1 - t) * t * bulge + t ** 2 * end               # quadratic Bézier
    left = right[::-1] * (-1, 1) + (2 * cx, 0)
    x = np.linspace(cx + spread, cx - spread, 64)[1:-1]
    phase = 2 * np.pi * (x - cx) / (rx * rng.uniform(0.5, 1.2)) + rng.uniform(0, 2 * np.pi)
    wave = ry * rng.uniform(0.03, 0.12) * np.sin(phase)
    return np.concatenate([cap, right[1:], np.stack([x, hem + wave], 1), left[:-1]])


def _glass(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Opaque body holding a glass object: nearly clear inside, denser rim, specular streaks."""
    m = min(shape)
    body = _portrait(shape, rng) if rng.random() < 0.5 else _blob_body(shape, rng)
    gh = m * rng.uniform(0.3, 0.5)
    gw = gh * rng.uniform(0.45, 0.8)
    gx, gy = _glass_spot(shape, rng, body.layer[0], gw, gh)
    tilt = rng.normal(0.0, 0.15)
    parts, streaks = _glass_parts(rng, gw, gh), _glass_streaks(rng, gw, gh)
    cov = _coverage([_place(p, gx, gy, tilt) for p in parts], shape)
    glass, glass_colour = _glass_pane(shape, rng, cov)
    spec = _glass_speculars(shape, rng, [_place(p, gx, gy, tilt) for p in streaks], cov)
    glass = _over((spec, spec[..., None] * np.ones(3, np.float32)), glass)
    alpha, premult = _over(glass, body.layer)
    return alpha, premult, _mix(body.colour, glass_colour, cov)


def _glass_spot(shape, rng, body_alpha: np.ndarray, gw: float, gh: float) -> tuple[float, float]:
    """Centre of a ``gw``×``gh`` glass held at the side of the body, mostly in front of the background.

    Candidates lie just outside the outline at mid height; the first at least 0.3 ``gw`` clear of the
    body wins, else the clearest.
    """
    h, w = shape
    band = np.zeros(shape, bool)
    band[int(h * 0.3):int(h * 0.85)] = True
    roots, normals = _outline_samples(body_alpha, rng, count=16, where=band)
    if len(roots) == 0:
        roots, normals = np.array([(w / 2, h / 2)]), np.zeros((1, 2))
    centres = np.clip(roots + normals * gw * rng.uniform(0.1, 0.6, (len(roots), 1)),
                      (gw / 2 + 2, gh / 2 + 2), (w - gw / 2 - 2, h - gh / 2 - 2))
    clearance = cv2.distanceTransform((body_alpha < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    gx, gy = (float(v) for v in centres[np.argmax(np.minimum(_sample(clearance, centres), 0.3 * gw))])
    return gx, gy


def _glass_parts(rng, gw: float, gh: float) -> list[np.ndarray]:
    """Outline polygons of a tumbler, a bowl or bottle, or a goblet, centred at the origin."""
    style = rng.integers(3)
    if style == 0:       # tumbler
        return [_rounded_rect(0, 0, gw / 2, gh / 2, gw * 0.12)]
    if style == 1:       # bowl / bottle
        return [_ellipse(0, 0, gw / 2, gh / 2)]
    # goblet: bowl, stem, foot
    return [_ellipse(0, -gh * 0.2, gw / 2, gh * 0.3), _rounded_rect(0, gh * 0.15, gw * 0.05, gh * 0.22, gw * 0.02),
            _ellipse(0, gh * 0.38, gw * 0.3, gh * 0.05)]


def _glass_streaks(rng, gw: float, gh: float) -> list[np.ndarray]:
    """One to three thin ellipses along the glass's long axis, centred at the origin: its specular streaks."""
    return [_ellipse(rng.uniform(-0.35, 0.35) * gw, rng.normal(0, 0.1) * gh, gw * rng.uniform(0.025, 0.07),
                     gh * rng.uniform(0.12, 0.3)) for _ in range(rng.integers(1, 4))]


def _glass_pane(shape, rng, cov: np.ndarray) -> tuple[Layer, np.ndarray]:
    """The glass over coverage ``cov`` and its colour: nearly clear inside, denser and toned at the rim, rippled."""
    m = min(shape)
    depth = cv2.distanceTransform((cov >= 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    rim = np.exp(-depth / (rng.uniform(1.0, 3.0) * max(m / 256, 1.0)))
    inner, outer = rng.uniform(0.03, 0.18), rng.uniform(0.45, 0.85)
    ripple = 1 + 0.25 * fractal_noise(shape, rng, cells=3)
    glass_alpha = cov * np.clip((inner + (outer - inner) * rim) * ripple, 0, 1)
    tint = _jitter(_GLASS_TINT[rng.integers(len(_GLASS_TINT))], rng, 0.04)
    rim_tone = rng.uniform(0.35, 1.1)
    glass_colour = np.clip(tint * (1 + (rim_tone - 1) * rim)[..., None], 0, 1)
    return (glass_alpha, glass_alpha[..., None] * glass_colour), glass_colour


def _glass_speculars(shape, rng, streaks: Sequence[np.ndarray], cov: np.ndarray) -> np.ndarray:
    """Coverage of the specular streaks: softly blurred, dimmed a little, kept on the glass."""
    return cv2.GaussianBlur(_coverage(streaks, shape), (0, 0), rng.uniform(0.4, 1.2)) * rng.uniform(0.7, 1.0) * cov


def _defocus(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subject whose edge is blurred by a disc (circle of confusion) of a few pixels."""
    m = min(shape)
    radius = max(rng.uniform(1.5, 5.0) * m / 256, 1.2)
    size = 2 * int(np.ceil(radius)) + 1
    kernel = _coverage([_ellipse(size // 2, size // 2, radius, radius)], (size, size), supersample=8)
    return _blurred(shape, rng, kernel)


def _motion(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Subject smeared along a random direction by a box motion blur of a few to ~20 px."""
    m = min(shape)
    length = max(rng.uniform(4.0, 20.0) * m / 256, 3.0)
    angle = rng.uniform(0, np.pi)
    size = 2 * int(np.ceil(length / 2)) + 3
    c = size // 2
    kernel = _coverage([_rounded_rect(c, c, length / 2, 0.5, 0.0, angle)], (size, size), supersample=8)
    return _blurred(shape, rng, kernel)


def _blurred(shape, rng, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random body with coverage and premultiplied colour convolved by ``kernel`` (normalised here)."""
    body = _portrait(shape, rng) if rng.random() < 0.5 else _blob_body(shape, rng)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    # Replicate at the border: a body cut by the frame continues beyond it.
    alpha = cv2.filter2D(body.layer[0], -1, kernel, borderType=cv2.BORDER_REPLICATE)
    premult = cv2.filter2D(body.layer[1], -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return alpha, premult, body.colour


def _net(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A knotted net, lace or fence: two families of threads, cells 4–24 px, up to 60 % of a cell wide, inside a
    blob or a drape, in front of a body or alone; the background shows through every cell."""
    h, w = shape
    m = min(h, w)
    body = _portrait(shape, rng) if rng.random() < 0.5 else None
    if body is not None:
        cx, cy, rx, ry = body.head
        region = _coverage([_drape(shape, rng, cx, cy, rx, ry)], shape)
    else:
        region = _coverage([_blob(w / 2, h * rng.uniform(0.45, 0.6), m * rng.uniform(0.25, 0.4), rng,
                                  aspect=rng.uniform(0.6, 1.5))], shape)
    ys, xs = _coords(shape)
    cell = rng.uniform(4, 24)
    width = rng.uniform(0.5, 0.6 * cell)
    warp = m * 0.02 * fractal_noise(shape, rng, cells=3, octaves=2)
    threads = np.zeros(shape, np.float32)
    for angle in rng.uniform(0, np.pi) + np.array([0.0, rng.uniform(np.pi / 4, 3 * np.pi / 4)]):
        u = xs * math.cos(angle) + ys * math.sin(angle) + warp
        d = np.abs((u / cell + 0.5) % 1.0 - 0.5) * cell          # distance to the nearest thread's centre
        threads = np.maximum(threads, np.clip(width / 2 + 0.5 - d, 0, 1))   # box-filtered edge
    colour = np.broadcast_to(_jitter(_random_colour(rng), rng, 0.05), (h, w, 3)).astype(np.float32)
    net = (region * threads, (region * threads)[..., None] * colour)
    if body is None:
        return net[0], net[1], colour
    alpha, premult = _over(net, body.layer)
    return alpha, premult, _mix(body.colour, colour, region)


def _foliage(shape, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A plant: a crown of 150–900 leaves 2–30 px long with gaps between them, on a stem or two."""
    h, w = shape
    m = min(h, w)
    cx, cy, r = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.35, 0.5), m * rng.uniform(0.22, 0.38)
    size = m * rng.uniform(0.005, 0.04)
    leaves = []
    for _ in range(int(rng.integers(150, 900))):
        rr, a = r * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        length = size * rng.uniform(0.5, 1.5)
        leaves.append(_ellipse(cx + rr * np.cos(a), cy + rr * np.sin(a) * rng.uniform(0.7, 1.0), length,
                               length * rng.uniform(0.25, 0.6), rng.uniform(0, np.pi), n=16))
    stem_w = max(1.0, size * 0.3)
    leaves.append(_rounded_rect(cx, (cy + h) / 2 + r * 0.2, stem_w, (h - cy) / 2, stem_w * 0.5))
    coverage = _coverage(leaves, shape)
    green = np.array([0.18, 0.42, 0.12]) * rng.uniform(0.6, 1.4) + rng.normal(0, 0.04, 3)
    colour = _surface(shape, rng, np.clip(green, 0, 1), contrast=0.3, fine=0.1)
    return coverage, coverage[..., None] * colour, colour


_BUILDERS: dict[str, Callable] = {"hair": _hair, "fur": _fur, "veil": _veil, "glass": _glass,
                                  "defocus": _defocus, "motion": _motion,
                                  "net": _net, "foliage": _foliage}


# ------------------------------------------------------------------------------------------ bodies

@dataclass
class _Body:
    layer: Layer                              # opaque body: coverage and premultiplied colour
    colour: np.ndarray                        # HxWx3 colour defined everywhere (the fill)
    head: tuple[float, float, float, float]   # (cx, cy, rx, ry): head ellipse, or the blob's top part


def _portrait(shape, rng) -> _Body:
    """Head, neck and shoulders running off the bottom of the frame; skin over textured clothes."""
    h, w = shape
    m = min(h, w)
    ry = m * rng.uniform(0.16, 0.21)
    rx = ry * rng.uniform(0.72, 0.84)
    cx = w * rng.uniform(0.42, 0.58)
    cy = max(h * rng.uniform(0.3, 0.38), 1.4 * ry)
    head = _ellipse(cx, cy, rx, ry, rng.normal(0.0, 0.08))
    neck_w = rx * rng.uniform(0.45, 0.58)
    neck_base = cy + ry * rng.uniform(1.3, 1.5)
    neck = _rounded_rect(cx, (cy + neck_base) / 2 + 0.25 * ry, neck_w, (neck_base - cy) / 2, neck_w * 0.3)
    # Shoulders: a control polygon sloping from the neck, rounded by corner cutting, off the bottom.
    sx = min(m * rng.uniform(0.3, 0.42), w * 0.45)
    drop = ry * rng.uniform(0.25, 0.5)
    sc = cx + rng.normal(0.0, 0.02) * m

    def side(s: float) -> list[tuple[float, float]]:
        return [(sc + s * sx * rng.uniform(0.95, 1.05), h * 1.4), (sc + s * sx, neck_base + drop + 0.6 * ry),
                (sc + s * sx * 0.88, neck_base + drop), (sc + s * sx * 0.5, neck_base + 0.35 * drop),
                (cx + s * neck_w * 1.2, neck_base - 0.1 * ry)]

    torso = _chaikin(np.array(side(-1.0) + side(1.0)[::-1]), iterations=4)
    skin_cov = _coverage([head, neck], shape)
    coverage = _coverage([head, neck, torso], shape)
    skin = _surface(shape, rng, _jitter(_SKIN[rng.integers(len(_SKIN))], rng, 0.05), contrast=0.06)
    clothes = _surface(shape, rng, _random_colour(rng), contrast=0.15, pattern=True)
    colour = _mix(clothes, skin, skin_cov)
    return _Body((coverage, coverage[..., None] * colour), colour, (cx, cy, rx, ry))


def _blob_body(shape, rng) -> _Body:
    """One to three overlapping smooth blobs: an object, a plush toy, a plant pot."""
    h, w = shape
    m = min(h, w)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.45, 0.6)
    r = m * rng.uniform(0.2, 0.28)
    polygons = [_blob(cx, cy, r, rng, aspect=rng.uniform(0.7, 1.4))]
    for _ in range(rng.integers(0, 3)):
        a = rng.uniform(0, 2 * np.pi)
        polygons.append(_blob(cx + np.cos(a) * r * 0.8, cy + np.sin(a) * r * 0.8, r * rng.uniform(0.35, 0.6), rng))
    coverage = _coverage(polygons, shape)
    colour = _surface(shape, rng, _random_colour(rng), contrast=0.2, pattern=rng.random() < 0.5)
    top = min(float(p[:, 1].min()) for p in polygons)
    return _Body((coverage, coverage[..., None] * colour), colour, (cx, top + r * 0.6, r * 0.7, r * 0.6))


# ---------------------------------------------------------------------------------------- geometry

def _ellipse(cx, cy, rx, ry, angle=0.0, n=128) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return _place(np.stack([rx * np.cos(t), ry * np.sin(t)], 1), cx, cy, angle)


def _blob(cx, cy, radius, rng, n=192, aspect=1.0, angle=None, roughness=1.0) -> np.ndarray:
    """Star-shaped smooth random outline: radius modulated by a few low Fourier harmonics."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k = np.arange(2, 7)[:, None]
    amp = roughness * rng.uniform(0, 0.45, (5, 1)) / k ** 1.3
    r = radius * (1 + (amp * np.cos(k * t + rng.uniform(0, 2 * np.pi, (5, 1)))).sum(0))
    angle = rng.uniform(0, np.pi) if angle is None else angle
    xy = np.stack([r * np.cos(t) * np.sqrt(aspect), r * np.sin(t) / np.sqrt(aspect)], 1)
    return _place(xy, cx, cy, angle)


def _rounded_rect(cx, cy, half_w, half_h, radius, angle=0.0, n_corner=10) -> np.ndarray:
    radius = min(radius, half_w, half_h)
    corners = [(half_w - radius, half_h - radius, 0.0), (-(half_w - radius), half_h - radius, 0.5 * np.pi),
               (-(half_w - radius), -(half_h - radius), np.pi), (half_w - radius, -(half_h - radius), 1.5 * np.pi)]
    t = np.linspace(0, 0.5 * np.pi, n_corner)
    xy = np.concatenate([np.stack([x + radius * np.cos(a + t), y + radius * np.sin(a + t)], 1) for x, y, a in corners])
    return _place(xy, cx, cy, angle)


def _chaikin(points: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Smooth a closed control polygon by Chaikin corner cutting (converges to a quadratic B-spline)."""
    for _ in range(iterations):
        following = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * following, 0.25 * points + 0.75 * following], 1).reshape(-1, 2)
    return points


def _place(xy: np.ndarray, cx, cy, angle) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return xy @ np.array([[c, s], [-s, c]]) + (cx, cy)


def _rotate(vectors: np.ndarray, angles) -> np.ndarray:
    c, s = np.cos(angles), np.sin(angles)
    x, y = vectors[:, 0], vectors[:, 1]
    return np.stack([c * x - s * y, s * x + c * y], 1)


def _coverage(polygons: Sequence[np.ndarray], shape, supersample: int = BODY_SUPERSAMPLE) -> np.ndarray:
    """Area coverage (float32 HxW in [0, 1]) of the union of polygons, by anti-aliased supersampling.

    Only the polygons' bounding box is rendered at the supersampled resolution.
    """
    h, w = shape
    out = np.zeros(shape, np.float32)
    allpts = np.concatenate(polygons)
    x0, y0 = np.maximum(np.floor(allpts.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(allpts.max(0)).astype(int) + 2, (w, h))
    if x0 >= x1 or y0 >= y1:
        return out
    canvas = np.zeros(((y1 - y0) * supersample, (x1 - x0) * supersample), np.uint8)
    for poly in polygons:   # one call each: the union, whatever the polygons' overlap
        cv2.fillPoly(canvas, [_fixed_point(poly - (x0, y0), supersample)], 255, cv2.LINE_AA, shift=_SHIFT)
    out[y0:y1, x0:x1] = cv2.resize(canvas.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    return out / 255.0


def _fixed_point(xy: np.ndarray, supersample: int) -> np.ndarray:
    """Pixel coordinates → cv2 fixed-point coordinates on a canvas ``supersample`` times finer."""
    return np.round(((xy + 0.5) * supersample - 0.5) * (1 << _SHIFT)).astype(np.int32)


def _outline_samples(coverage: np.ndarray, rng, density: float | None = None, count: int | None = None,
                     where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random points on the outline of ``coverage >= 0.5`` (frame edges excluded) and outward unit normals.

    ``density`` draws that many points per outline pixel, ``count`` a fixed number; ``where`` restricts
    the outline to a mask.
    """
    inside = (coverage >= 0.5).astype(np.uint8)
    edge = inside & ~cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)   # border counts as inside
    if where is not None:
        edge &= where
    ys, xs = np.nonzero(edge)
    if len(xs) == 0:
        return np.zeros((0, 2)), np.zeros((0, 2))
    n = count if count is not None else int(round(density * len(xs)))
    pick = rng.integers(len(xs), size=n)
    ys, xs = ys[pick], xs[pick]
    smooth = cv2.GaussianBlur(coverage, (0, 0), 2.0)
    gy, gx = np.gradient(smooth)
    normals = -np.stack([gx[ys, xs], gy[ys, xs]], 1).astype(np.float64)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
    points = np.stack([xs, ys], 1) + rng.uniform(-0.5, 0.5, (n, 2))
    return points, normals


# ----------------------------------------------------------------------------------------- strands

def _grow_strands(roots: np.ndarray, directions: np.ndarray, lengths: np.ndarray, rng, *, bend, sag,
                  turn=0.0, wave: tuple[float, float] | None = None, n_points: int = 16) -> np.ndarray:
    """Cubic Bézier strands, (n, n_points, 2).

    Each strand leaves its root along ``directions`` and is built from three legs of a third of its
    length; each leg turns by ``turn`` plus a random angle (std ``bend``), in radians, and sags down
    the frame by ``sag`` (a fraction of a leg, growing leg by leg). ``wave=(amplitude, period)`` in pixels adds a
    sinusoidal sideways wave that grows from the root (wavy hair).
    """
    n = len(roots)
    leg = lengths / 3
    turns = rng.normal(0.0, 1.0, (n, 2)) * np.reshape(bend, (-1, 1)) + np.reshape(turn, (-1, 1))
    heading = np.arctan2(directions[:, 1], directions[:, 0])[:, None] + np.concatenate(
        [np.zeros((n, 1)), turns.cumsum(1)], 1)
    steps = np.stack([np.cos(heading), np.sin(heading)], -1) * leg[:, None, None]
    steps[..., 1] += np.reshape(sag, (-1, 1)) * leg[:, None] * np.arange(3)
    control = roots[:, None, :] + np.concatenate([np.zeros((n, 1, 2)), steps.cumsum(1)], 1)
    t = np.linspace(0.0, 1.0, n_points)
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], 1)
    points = basis @ control                                    # (n, n_points, 2)
    if wave is not None:
        amplitude, period = wave
        tangent = np.gradient(points, axis=1)
        tangent /= np.maximum(np.linalg.norm(tangent, axis=2, keepdims=True), 1e-9)
        arc = lengths[:, None] * t
        offset = amplitude * t * np.sin(2 * np.pi * arc / period + rng.uniform(0, 2 * np.pi, (n, 1)))
        points += np.stack([-tangent[..., 1], tangent[..., 0]], -1) * offset[..., None]
    return points


def _render_strands(points: np.ndarray, widths: np.ndarray, colours: np.ndarray, shape) -> Layer:
    """Coverage and premultiplied colour of polyline strands (n, m, 2) of given widths (px) and colours.

    Strokes are binary at ``STRAND_SUPERSAMPLE``× on a uint16 RGBA canvas covering only the strands'
    bounding box, each strand over the ones before it; area-averaging gives exact coverage (a count
    of covered samples) and the premultiplied colour of whatever strand covers each sample.
    """
    h, w = shape
    ss = STRAND_SUPERSAMPLE
    alpha, premult = np.zeros(shape, np.float32), np.zeros((h, w, 3), np.float32)
    if len(points) == 0:
        return alpha, premult
    nearest = np.abs(np.log(_STROKE_WIDTH)[None, :] - np.log(widths * ss)[:, None]).argmin(1)
    thickness = _STROKE_THICKNESS[nearest]
    margin = _STROKE_WIDTH[nearest].max() / ss + 2
    x0, y0 = np.maximum(np.floor(points.reshape(-1, 2).min(0) - margin).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(points.reshape(-1, 2).max(0) + margin).astype(int), (w, h))
    if x0 >= x1 or y0 >= y1:
        return alpha, premult
    canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss, 4), np.uint16)
    fixed = _fixed_point(points - (x0, y0), ss)
    rgba = np.concatenate([np.round(colours * _ONE16), np.full((len(colours), 1), _ONE16)], 1).astype(int).tolist()
    for pts, t, c in zip(fixed, thickness.tolist(), rgba):
        cv2.polylines(canvas, [pts], False, c, t, cv2.LINE_8, shift=_SHIFT)
    small = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / _ONE16
    alpha[y0:y1, x0:x1] = small[..., 3]
    premult[y0:y1, x0:x1] = small[..., :3]
    return alpha, premult


# ---------------------------------------------------------------------------------------- textures

def fractal_noise(shape: tuple[int, int], rng: np.random.Generator, cells: float = 4, octaves: int = 4,
                  gain: float = 0.5) -> np.ndarray:
    """Fractal (fBm-like) noise, float32 HxW with zero mean and unit std.

    Random grids of doubling resolution, the coarsest ``cells`` across the longer side, each octave
    weighted by ``gain`` to the octave. Octaves are summed on the grids themselves (the running sum
    bicubically upsampled to the next grid), so only one full-size resize is paid.
    """
    h, w = shape
    out = None
    for octave in range(octaves):
        c = cells * 2 ** octave
        size = (max(2, int(round(c * w / max(h, w)))), max(2, int(round(c * h / max(h, w)))))   # (w, h)
        noise = gain ** octave * rng.standard_normal(size[::-1]).astype(np.float32)
        out = noise if out is None else cv2.resize(out, size, interpolation=cv2.INTER_CUBIC) + noise
    out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def _surface(shape, rng, rgb: np.ndarray, contrast: float = 0.15, fine: float = 0.0,
             pattern: bool = False) -> np.ndarray:
    """A plausible material colour field around ``rgb``: lit gradient, tinted fractal noise, optional fabric print."""
    h, w = shape
    ys, xs = _coords(shape)
    a = rng.uniform(0, 2 * np.pi)
    ramp = (xs * math.cos(a) + ys * math.sin(a)) / max(h, w)
    light = 1 + rng.uniform(0.1, 0.45) * (ramp - ramp.mean())
    light += contrast * fractal_noise(shape, rng, cells=rng.uniform(2, 6))
    if fine:
        light += fine * fractal_noise(shape, rng, cells=max(h, w) / 6, octaves=2)
    colour = np.asarray(rgb, np.float32) * light[..., None]
    hue = rng.normal(0.0, 1.0, 3).astype(np.float32)
    colour += 0.03 * fractal_noise(shape, rng, cells=3, octaves=2)[..., None] * (hue / np.linalg.norm(hue))
    if pattern:
        second = _random_colour(rng)
        period = rng.uniform(0.03, 0.12) * max(h, w)
        b = rng.uniform(0, np.pi)
        u = (xs * math.cos(b) + ys * math.sin(b)) / period
        style = rng.integers(3)
        if style == 0:    # stripes
            print_ = 0.5 + 0.5 * np.sin(2 * np.pi * u)
        elif style == 1:  # check
            v = (-xs * math.sin(b) + ys * math.cos(b)) / period
            print_ = (0.5 + 0.5 * np.sin(2 * np.pi * u)) * (0.5 + 0.5 * np.sin(2 * np.pi * v))
        else:             # blotches
            print_ = np.clip(fractal_noise(shape, rng, cells=6, octaves=2), 0, 1)
        colour = _mix(colour, second * light[..., None], rng.uniform(0.2, 0.7) * print_)
    return np.clip(colour, 0.0, 1.0).astype(np.float32)


def _hair_texture(shape, rng, rgb: np.ndarray, parting: tuple[float, float], radius: float) -> np.ndarray:
    """Hair mass colour: fine streaks radiating from the parting and a sheen band around the head."""
    ys, xs = _coords(shape)
    dx, dy = xs - parting[0], ys - parting[1]
    theta = np.arctan2(dy, dx)
    r = np.hypot(dx, dy)
    streaks = np.zeros(shape, np.float32)
    for n in (90, 240, 600):   # periodic 1-D noise in angle: strands run along rays from the parting
        grid = np.linspace(-np.pi, np.pi, n + 1)
        values = rng.normal(0.0, 1.0, n + 1)
        values[-1] = values[0]
        streaks += np.interp(theta, grid, values).astype(np.float32) * (150 / n) ** 0.5
    streaks /= max(float(streaks.std()), 1e-6)
    sheen = np.exp(-((r - radius * rng.uniform(0.5, 0.9)) / (0.15 * radius)) ** 2)
    light = 1 + 0.14 * streaks + rng.uniform(0.2, 0.5) * sheen + 0.08 * fractal_noise(shape, rng, cells=4)
    return np.clip(rgb * light[..., None], 0, 1).astype(np.float32)


def _random_colour(rng, saturation=(0.1, 0.9), value=(0.15, 0.95)) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return np.array(rgb, np.float32)


def _jitter(rgb: np.ndarray, rng, amount: float) -> np.ndarray:
    return np.clip(rgb * rng.uniform(1 - amount, 1 + amount, 3), 0, 1).astype(np.float32)


# --------------------------------------------------------------------------------------- utilities

def _over(top: Layer, bottom: Layer) -> Layer:
    """Porter–Duff "over" in premultiplied colour."""
    keep = 1.0 - top[0]
    return top[0] + keep * bottom[0], top[1] + keep[..., None] * bottom[1]


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-pixel blend from colour field ``a`` (t = 0) to ``b`` (t = 1)."""
    t = np.asarray(t, np.float32)
    return a + (b - a) * (t[..., None] if t.ndim == 2 else t)


def _coords(shape) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates as broadcastable float32 arrays: ys (H, 1) and xs (1, W)."""
    h, w = shape
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Nearest-pixel lookup at (x, y) points, clamped to the frame."""
    h, w = image.shape[:2]
    x = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
    return image[y, x]
