"""HDR video frames (HLG or PQ, BT.2020) as the SDR BT.709 frames the clip path renders and writes.

A phone records video in HDR by default: 10-bit HEVC, BT.2020 primaries, the HLG or the PQ transfer. The
renderer works on 8-bit SDR and the clip is written as BT.709, so each frame is converted in linear light, after
ITU-R BT.2408's mapping of HDR to SDR:

1. the signal to display light in cd/m²: PQ by its EOTF (SMPTE ST 2084, absolute); HLG by its inverse OETF and the
   OOTF of a :data:`HLG_PEAK` display (ITU-R BT.2100: the system gamma 1.2 applied on the luminance Y_S);
2. divided by HDR reference white, :data:`REFERENCE_WHITE` (BT.2408: HLG's 75 % signal, PQ's 58 %), which becomes
   SDR's white;
3. BT.2020 primaries to BT.709 (a 3×3 matrix in linear light; colours outside BT.709 are clipped), unless the
   clip is tagged BT.709 primaries already;
4. highlights compressed by a soft shoulder (:func:`tone_map`: the identity up to :data:`TONE_KNEE`, reference
   white to 0.93, everything brighter below 1);
5. encoded for BT.1886's display gamma 2.4, what an SDR BT.709 clip is watched on, to 8 bits.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from runtime.parallel import each, strips

HLG, PQ = 18, 16               # FFmpeg's AVCOL_TRC_ARIB_STD_B67 and AVCOL_TRC_SMPTE2084
TRANSFERS = {HLG: "HLG", PQ: "PQ"}
BT709_PRIMARIES = 1            # FFmpeg's AVCOL_PRI_BT709: an HDR transfer on BT.709 primaries needs no gamut change
REFERENCE_WHITE = 203.0        # cd/m²: HDR reference white, SDR's white after conversion
HLG_PEAK = 1000.0              # cd/m²: the display HLG's OOTF is evaluated for
HLG_GAMMA = 1.2                # its system gamma at that peak
SDR_GAMMA = 2.4                # BT.1886
TONE_KNEE = 0.8                # linear light, 1 at reference white: identity below, a soft shoulder to 1 above
STRIP_ROWS = 32                # frame rows per pass of the conversion
BT2020_LUMA = np.array([[0.2627, 0.6780, 0.0593]], np.float32)
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], np.float32)


def tone_map(x: np.ndarray, knee: float = TONE_KNEE) -> np.ndarray:
    """Identity up to ``knee``, then k + (1−k)(1 − e^(−(x−k)/(1−k))): continuous slope, limit 1."""
    over = np.maximum(x - knee, 0.0)
    return np.where(x > knee, knee + (1.0 - knee) * -np.expm1(-over / (1.0 - knee)), x).astype(np.float32)


def is_hdr(transfer: int | None) -> bool:
    return transfer in TRANSFERS


def hlg_scene_light(signal: np.ndarray) -> np.ndarray:
    """HLG's inverse OETF (BT.2100): the non-linear signal in [0, 1] to scene light in [0, 1]."""
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    e = np.asarray(signal, np.float64)
    high = (np.exp((np.maximum(e, 0.5) - c) / a) + b) / 12.0
    return np.where(e <= 0.5, e * e / 3.0, high)


def pq_display_light(signal: np.ndarray) -> np.ndarray:
    """PQ's EOTF (SMPTE ST 2084): the non-linear signal in [0, 1] to display light in cd/m²."""
    m1, m2 = 2610 / 16384, 2523 / 4096 * 128
    c1, c2, c3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    p = np.asarray(signal, np.float64) ** (1.0 / m2)
    return 10000.0 * (np.maximum(p - c1, 0.0) / (c2 - c3 * p)) ** (1.0 / m1)


@functools.cache
def _linear(transfer: int) -> np.ndarray:
    """The 65536-entry look-up table of a 16-bit signal: HLG's scene light (0..1), PQ's display light relative
    to reference white. Built on the first HDR frame, not when a clip or a photo path is imported."""
    levels = np.arange(65536) / 65535.0
    light = hlg_scene_light(levels) if transfer == HLG else pq_display_light(levels) / REFERENCE_WHITE
    return light.astype(np.float32)


def relative_light(rgb16: np.ndarray, transfer: int) -> np.ndarray:
    """float32 (H, W, 3) BT.2020 display light of 16-bit R'G'B' (full range), 1 at HDR reference white."""
    light = _linear(transfer)[rgb16]
    if transfer == HLG:        # the OOTF: F = peak · Y_S^(γ − 1) · E, then relative to reference white
        ys = cv2.transform(light, BT2020_LUMA)
        gain = cv2.pow(np.maximum(ys, np.float32(1e-12)), HLG_GAMMA - 1.0) * np.float32(HLG_PEAK / REFERENCE_WHITE)
        light = cv2.multiply(light, cv2.cvtColor(gain, cv2.COLOR_GRAY2RGB))
    return light


def to_sdr(rgb16: np.ndarray, transfer: int, primaries: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3) SDR BT.709 R'G'B' of uint16 (H, W, 3) full-range R'G'B' of the HDR ``transfer``
    (:data:`HLG` or :data:`PQ`). ``primaries`` (FFmpeg's code): BT.2020 unless it says BT.709 (some cameras
    record HLG on BT.709 primaries). Strip by strip on :mod:`runtime.parallel`'s threads (every step is per
    pixel, so the result is the same whatever the strips; a strip's temporaries stay in the cache)."""
    out = np.empty(rgb16.shape, np.uint8)

    def convert(rows: slice) -> None:
        out[rows] = _to_sdr(rgb16[rows], transfer, primaries)

    each(convert, strips(rgb16.shape[0], STRIP_ROWS))
    return out


def _to_sdr(rgb16: np.ndarray, transfer: int, primaries: int | None) -> np.ndarray:
    light = relative_light(rgb16, transfer)
    if primaries != BT709_PRIMARIES:
        light = cv2.transform(light, BT2020_TO_BT709)
    light = tone_map(np.maximum(light, 0.0))
    return np.rint(cv2.pow(light, 1.0 / SDR_GAMMA) * 255.0).astype(np.uint8)
