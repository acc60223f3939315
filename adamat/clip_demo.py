"""``make demo``'s video clip: the temporal table of :mod:`evaluation.clip_eval` on short procedural clips, and the
first clip rendered through the clip path into the report (``clip.mp4`` and a sheet of frames, input beside
bokeh)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from calib_data.procedural_clips import encode_clip
from evaluation.clip_eval import ClipSet, clip_methods, evaluate_clips, markdown, phone_masks, write_clip_results
from runtime.bokeh import render_bokeh
from runtime.clip import CLIP_REFINEMENT, ClipMatte
from runtime.matter import Matter

DEMO_CLIPS = ClipSet(size=(1080, 1920), frames=12)   # the size phones record (smaller frames: docs/VIDEO.md)
SHEET_FRAMES = 3        # frames of the first clip shown in the report, spread over it
SHEET_WIDTH = 1920      # px, at most: the sheet of input beside bokeh is scaled down to it


def clip_demo(artifact: str | Path, label: str, clips: ClipSet, out_dir: Path,
              log: Callable[[str], None]) -> str:
    """The report's section (markdown) for ``artifact``; ``clips/eval-clips.json``, ``clip.mp4`` and
    ``clip_frames.png`` in ``out_dir``."""
    matter = Matter.from_artifact(artifact, refinement=CLIP_REFINEMENT)
    result = evaluate_clips(clips, clip_methods(matter), progress=lambda m: log(f"video clip: {m}"))
    write_clip_results(result, out_dir / "clips")
    clip = next(clips.clips())
    matte = ClipMatte(matter)
    rendered = [render_bokeh(f, matte(f, m))[0] for f, m in zip(clip.frames, phone_masks(clip, clips.seed))]
    encode_clip(out_dir / "clip.mp4", rendered, rate=30, tone=False)
    picks = np.linspace(0, len(rendered) - 1, SHEET_FRAMES).round().astype(int)
    sheet = np.vstack([np.hstack([clip.frames[i], rendered[i]]) for i in picks])
    if sheet.shape[1] > SHEET_WIDTH:
        scale = SHEET_WIDTH / sheet.shape[1]
        sheet = cv2.resize(sheet, (SHEET_WIDTH, round(sheet.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out_dir / "clip_frames.png"), sheet[..., ::-1])
    h, w = clips.size
    return (f"Procedural clips ({', '.join(clips.kinds)}), {clips.frames} frames of {w}×{h} each, a "
            f"phone mask drawn afresh for every frame, {label} through the clip path (runtime/clip.py; "
            f"docs/VIDEO.md). Per-frame means of whole-image SAD / MSE / Grad, the clips' dtSSD and MESSDdt:\n\n"
            f"{markdown(result)}\nAt smaller frames the band refiner turns soft strands solid and a guided filter "
            f"scores better (640×360; docs/VIDEO.md, \"Smaller frames\").\n\n"
            f"`clip.mp4`: the {clip.name} clip's bokeh with the state across frames. "
            f"Input (left) and bokeh (right), frames {', '.join(map(str, picks))}:\n\n"
            f"![clip frames](clip_frames.png)\n")
