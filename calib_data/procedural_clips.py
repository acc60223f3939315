"""Procedural video clips with the exact alpha of every frame: what temporal coherence is measured on.

    clip = make_clip(ClipSpec(size=(1080, 1920), frames=90), seed=0)
    clip.frames[t]   # uint8 (H, W, 3) RGB        clip.alphas[t]   # float32 (H, W) in [0, 1]

One procedural subject (:mod:`calib_data.procedural`: hair, fur, ... with exact alpha) over a background twice the
frame, as a handheld portrait clip moves:

- the subject **sways** (a slow translation and a rotation of a degree or two about its lower centre);
- the **camera shakes** (the whole frame, subject and background, moves by a pixel or two, smoothly);
- the **background pans** (behind the subject, as with a walking camera or moving scenery);
- the **light drifts** (a global gain of ±6 %);
- with ``motion_blur`` each frame is the mean of sub-frames over the shutter, its alpha the mean of theirs.

The subject's premultiplied colour and alpha are warped by one affine transform per sub-frame (bilinear), so the
frame is composited from exactly the alpha returned. Seeded: the same spec and seed give the same clip.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from calib_data.backgrounds import random_background
from calib_data.procedural import make_foreground


@dataclass(frozen=True)
class ClipSpec:
    size: tuple[int, int] = (1080, 1920)   # (H, W) of the frames
    frames: int = 90
    kind: str = "hair"                     # calib_data.procedural's subject kind
    sway: float = 0.01                     # subject translation amplitude, a fraction of the frame's height
    sway_period: float = 60.0              # frames
    tilt: float = 1.5                      # rotation amplitude, degrees
    shake: float = 1.5                     # camera shake amplitude, pixels
    pan: float = 0.004                     # background speed, a fraction of the frame's width per frame
    light: float = 0.06                    # light drift amplitude (gain)
    motion_blur: int = 1                   # sub-frames per frame (1: none)


@dataclass
class ProceduralClip:
    name: str
    frames: list[np.ndarray]               # uint8 (H, W, 3) RGB
    alphas: list[np.ndarray]               # float32 (H, W)


def make_clip(spec: ClipSpec, seed: int = 0) -> ProceduralClip:
    """The clip of ``spec`` drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    h, w = spec.size
    fg, alpha = make_foreground(spec.kind, (h, w), rng)
    premult = fg * alpha[..., None]
    background = random_background((2 * h, 2 * w), rng).astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi, 6)
    frames, alphas = [], []
    for t in range(spec.frames):
        shots = [_shot(spec, premult, alpha, background, phase, t + (k + 0.5) / spec.motion_blur - 0.5)
                 for k in range(spec.motion_blur)]
        colour = np.mean([c for c, _ in shots], axis=0)
        frames.append(np.clip(np.rint(colour * 255), 0, 255).astype(np.uint8))
        alphas.append(np.mean([a for _, a in shots], axis=0).astype(np.float32))
    return ProceduralClip(f"{spec.kind}-{seed}", frames, alphas)


def _shot(spec: ClipSpec, premult: np.ndarray, alpha: np.ndarray, background: np.ndarray, phase: np.ndarray,
          t: float) -> tuple[np.ndarray, np.ndarray]:
    """(colour float32 (H, W, 3), alpha) of the scene at time ``t`` (frames)."""
    h, w = spec.size
    wave = lambda k, period: math.sin(2 * math.pi * t / period + phase[k])  # noqa: E731
    shake = (spec.shake * wave(0, 23.0), spec.shake * wave(1, 31.0))
    sway = (spec.sway * h * wave(2, spec.sway_period), 0.5 * spec.sway * h * wave(3, 1.7 * spec.sway_period))
    subject = cv2.getRotationMatrix2D((w / 2, h), spec.tilt * wave(4, 1.3 * spec.sway_period), 1.0)
    subject[:, 2] += (sway[0] + shake[0], sway[1] + shake[1])
    warp = {"dsize": (w, h), "flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT}
    a = cv2.warpAffine(alpha, subject, **warp)
    p = cv2.warpAffine(premult, subject, **warp)
    x0, y0 = (w / 2 + spec.pan * w * t) % w + shake[0], h / 2 + shake[1]
    camera = np.float32([[1, 0, -x0], [0, 1, -y0]])
    bg = cv2.warpAffine(background, camera, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    gain = 1.0 + spec.light * wave(5, 97.0)
    return (p + (1.0 - a[..., None]) * bg) * np.float32(gain), a


def encode_clip(path: str | Path, frames: Iterable[np.ndarray], rate: int = 30, rotation: int = 0,
                tone: bool = True) -> Path:
    """An H.264 clip of uint8 RGB ``frames`` (stored as given, with a display ``rotation`` in degrees
    counter-clockwise; tagged BT.601 limited range, the conversion PyAV applies), with a mono 48 kHz AAC 440 Hz
    tone as long as the frames when ``tone``: the input of the clip path's tests and benchmark."""
    import av

    frames = iter(frames)
    first = next(frames)
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=rate)
    video.height, video.width = first.shape[:2]
    video.pix_fmt = "yuv420p"
    context = video.codec_context             # PyAV converts RGB with BT.601, limited range: say so
    context.colorspace, context.color_primaries, context.color_trc, context.color_range = 6, 6, 6, 1
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=48000) if tone else None
    if sound is not None:
        sound.layout = "mono"
    count = 0
    for frame in (first, *frames):
        for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            out.mux(packet)
        count += 1
    for packet in video.encode(None):
        out.mux(packet)
    if sound is not None:
        t = np.arange(48000 * count // rate) / 48000
        wave = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                          format="fltp", layout="mono")
        wave.sample_rate, wave.pts = 48000, 0
        for packet in [*sound.encode(wave), *sound.encode(None)]:
            out.mux(packet)
    out.close()
    return Path(path)


HLG, PQ = 18, 16   # FFmpeg's transfer characteristics of the two HDR transfers


def encode_hdr_clip(path: str | Path, frames16: Iterable[np.ndarray], transfer: int = HLG, rate: int = 30) -> Path:
    """A 10-bit HEVC clip tagged BT.2020 with the HDR ``transfer`` (:data:`HLG` or :data:`PQ`) of uint16
    full-range R'G'B' ``frames16``, no audio: what a phone records by default."""
    import av

    frames16 = iter(frames16)
    first = next(frames16, None)
    if first is None:
        raise ValueError("an HDR clip needs at least one frame")
    out = av.open(str(path), "w")
    video = out.add_stream("libx265", rate=rate)
    video.height, video.width = first.shape[:2]
    video.pix_fmt = "yuv420p10le"
    context = video.codec_context
    context.colorspace, context.color_primaries, context.color_trc, context.color_range = 9, 9, transfer, 1
    video.options = {"x265-params": "log-level=error"}
    for rgb in itertools.chain([first], frames16):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb48le").reformat(
            format="yuv420p10le", dst_colorspace=9, dst_color_range="MPEG")
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    out.close()
    return Path(path)
